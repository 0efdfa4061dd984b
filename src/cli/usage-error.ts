/**
 * yargs' usage messages as slicefs's one line: yargs reports an unknown option under every name
 * it knows it by (`Unknown arguments: bogus-option, bogusOption`), an unknown command as an
 * "argument", a bad choice on three lines, and required options without their dashes. This turns
 * each into one line that names the thing once, as the user typed it.
 */

/** The names yargs lists, kebab-case and camelCase forms of one option counted once. */
function distinct(names: string[]): string[] {
  const kebab = (n: string) => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const seen = new Set<string>();
  const out: string[] = [];
  for (const n of names) {
    const key = kebab(n);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(n);
  }
  // The kebab form is the one on the command line (yargs adds the camelCase alias).
  return out.map((n) => (names.includes(kebab(n)) ? kebab(n) : n));
}

/** `--name` / `-n` as written on the command line (a name never written as an option is a stray word). */
function asOption(name: string, argv: string[]): string | undefined {
  const forms = name.length === 1 ? [`-${name}`] : [`--${name}`, `--no-${name}`];
  for (const a of argv) {
    const flag = a.split('=')[0];
    if (forms.includes(flag)) return flag;
    // Short flags bundled (`-xq`).
    if (name.length === 1 && /^-[^-]/.test(a) && a.slice(1).includes(name)) return `-${name}`;
  }
  return undefined;
}

const list = (xs: string[]) => xs.map((x) => `'${x}'`).join(', ');

/**
 * The one-line text of a yargs failure `msg` for the command line `argv` (without node and the
 * script), given the top-level commands as declared (`unmount <mountpoint>`, aliases as names).
 */
export function usageLine(msg: string, argv: string[], commands: readonly string[]): string {
  const words = argv.filter((a) => !a.startsWith('-'));
  const firstWord = words.at(0);
  const names = commands.map((c) => c.split(' ')[0]);
  let m = /^Unknown commands?: (.*)$/s.exec(msg);
  if (m) {
    // A subcommand (`cache bogus`) is named with the command before it.
    const unknown = m[1].split(', ')[0];
    const at = words.indexOf(unknown);
    return `unknown command '${at > 0 ? `${words.slice(0, at).join(' ')} ${unknown}` : unknown}'`;
  }
  m = /^Unknown arguments?: (.*)$/s.exec(msg);
  if (m) {
    const unknown = distinct(m[1].split(', '));
    if (firstWord !== undefined && unknown.includes(firstWord) && !names.includes(firstWord)) return `unknown command '${firstWord}'`;
    const options = unknown.map((n) => asOption(n, argv)).filter((o): o is string => o !== undefined);
    const stray = unknown.filter((n) => asOption(n, argv) === undefined);
    const parts: string[] = [];
    if (options.length > 0) parts.push(`unknown option${options.length > 1 ? 's' : ''} ${list(options)}`);
    if (stray.length > 0) parts.push(`unexpected argument${stray.length > 1 ? 's' : ''} ${list(stray)}`);
    return parts.join('; ');
  }
  m = /^Missing required arguments?: (.*)$/s.exec(msg);
  if (m) {
    const missing = distinct(m[1].split(', '));
    return `missing required option${missing.length > 1 ? 's' : ''} ${missing.map((n) => `--${n}`).join(', ')}`;
  }
  m = /^Invalid values:\s*Argument: (\S+), Given: (.*?), Choices: (.*?)(\n|$)/s.exec(msg);
  if (m) return `--${m[1]}: ${m[2]} is not one of ${m[3]}`;
  if (/^Not enough non-option arguments/.test(msg)) {
    const usage = commands.find((c) => c.split(' ')[0] === firstWord);
    return usage ? `missing argument: slicefs ${usage}` : 'missing argument';
  }
  if (/^Too many non-option arguments/.test(msg)) return `too many arguments${firstWord ? ` for '${firstWord}'` : ''}`;
  return msg.split('\n').join(' ');
}
