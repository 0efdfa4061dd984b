/**
 * A command line that may be written where others read it (`view`'s @PG header line, `CL:`): the
 * words the user typed, as samtools writes its own (`samtools view -o x.sam in.bam chr1`: argv
 * joined by spaces, tabs made spaces), but built from an allow-list, so that no credential lands
 * in a SAM or BAM file that is then shared.
 *
 * Each word is read as yargs reads it (`--name value`, `--name=value`, `-q value`, `-q=value`,
 * `--no-name`, camelCase spellings, several values after an array option) and written as:
 *   - an option of `shown`: its name and its values, each through `safeArg` (every URL in it, in
 *     whatever form, through the one redaction, src/util/redact.ts);
 *   - an option of `hidden` (a token, a key file, a config file): its name and `…` for its value;
 *   - a boolean (`flags`), or `--no-name` of a shown option or boolean: as given;
 *   - a word that belongs to no option (a positional file name, a further value of an array
 *     option): through `safeArg`;
 *   - anything else (an option not listed, a cluster of short options): `…`, with the value that
 *     may follow it. An option missing from the lists is therefore never written.
 * Control characters (a tab or newline would break the header line) become spaces.
 */

import { safeArg } from '../util/redact.js';

export interface CommandLineSpec {
  /** Options whose values are shown (through the URL redaction). */
  shown: readonly string[];
  /** Options whose values are never shown (`--token …`). */
  hidden: readonly string[];
  /** Boolean options (no value, or `true`/`false` right after them). */
  flags: readonly string[];
  /** Short or other names of the options above: alias → name. */
  aliases: Readonly<Record<string, string>>;
}

const HIDDEN_VALUE = '…';

/** `outputFormat` → `output-format` (yargs accepts both spellings). */
const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** No tab or line break inside a header field. */
// eslint-disable-next-line no-control-regex
const oneLine = (s: string) => s.replace(/[\u0000-\u001f\u007f]/g, ' ');

/**
 * The safe command line of `program` (e.g. `slicefs`) run with `argv` (process.argv without node
 * and the script: the command's name first).
 */
export function safeCommandLine(program: string, argv: readonly string[], spec: CommandLineSpec): string {
  const shown = new Set(spec.shown);
  const hidden = new Set(spec.hidden);
  const flags = new Set(spec.flags);
  const canonical = (raw: string): string | undefined => {
    for (const n of [raw, kebab(raw)]) {
      const name = spec.aliases[n] ?? n;
      if (shown.has(name) || hidden.has(name) || flags.has(name)) return name;
    }
    return undefined;
  };
  const out = [program];
  const safe = (w: string) => oneLine(safeArg(w));
  let endOfOptions = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    const next = argv[i + 1];
    const nextIsValue = next !== undefined && !next.startsWith('-');
    if (endOfOptions || !word.startsWith('-') || word === '-') {
      out.push(safe(word));
      continue;
    }
    if (word === '--') {
      endOfOptions = true;
      out.push(word);
      continue;
    }
    const m = /^(--?)([^=]+)(?:=(.*))?$/s.exec(word);
    const dashes = m?.[1] ?? '';
    const rawName = m?.[2] ?? '';
    const inline = m?.[3];
    // A short option is one letter (`-q`); `-qchr1` or `-vq` clusters are not read apart.
    const name = dashes === '-' && rawName.length !== 1 ? undefined : canonical(rawName);
    const negated = name === undefined && dashes === '--' && rawName.startsWith('no-') ? canonical(rawName.slice(3)) : undefined;
    if (negated !== undefined && !hidden.has(negated) && inline === undefined) {
      out.push(safe(word));
    } else if (name !== undefined && flags.has(name)) {
      out.push(safe(word));
      if (inline === undefined && (next === 'true' || next === 'false')) out.push(argv[++i]);
    } else if (name !== undefined && shown.has(name)) {
      out.push(safe(word));
    } else if (name !== undefined && hidden.has(name)) {
      out.push(inline !== undefined ? `${dashes}${rawName}=${HIDDEN_VALUE}` : `${dashes}${rawName}`);
      if (inline === undefined && nextIsValue) {
        out.push(HIDDEN_VALUE);
        i++;
      }
    } else {
      // Not on any list: neither the word nor a value it may take is written.
      out.push(HIDDEN_VALUE);
      if (inline === undefined && nextIsValue) i++;
    }
  }
  return out.join(' ');
}
