/**
 * A FASTA reference read through its .fai index (`view --reference-file` / `--reference-url`), for
 * decoding CRAM: only the bytes of the bases asked for are read, through a RangeReader, so a remote
 * reference shares the block cache and HTTP transport of the data it decodes.
 *
 * The .fai (samtools faidx format) gives, per sequence: name, length in bases, byte offset of its
 * first base, bases per line (`lineBases`) and bytes per line (`lineBytes`, terminator included:
 * lineBases + 1 for `\n`, + 2 for `\r\n`). Every line but the last holds exactly lineBases bases,
 * so base `pos` is at byte `offset + floor(pos / lineBases) * lineBytes + pos % lineBases`, and
 * bases [start, end) are one byte range, from the byte of `start` to the byte of `end - 1`.
 * `fetch` reads that range in one call, then walks it line by line: the bases of each line are
 * uppercased and moved down in place over the line terminators before them (the output never
 * overtakes the input), so a fetch allocates one buffer. Uppercase because htslib uppercases
 * reference bases before comparing them with reads and before the @SQ M5 checksum: a soft-masked
 * (lowercase) reference must decode the same as its uppercase twin.
 *
 * A .fai that does not describe the file (rebuilt FASTA, stale index, a bgzip-compressed FASTA,
 * whose .fai offsets are uncompressed) would silently give wrong bases. `fetch` checks what it
 * walks anyway: every base slot must hold a printable non-space byte and every terminator slot
 * whitespace ending in `\n`; the constructor checks that every sequence ends inside the file.
 *
 * `buildFai` makes the .fai of a local FASTA the way htslib's `fai_build_core` does (same state
 * machine, same quirks, byte-identical output): a name is the first whitespace-delimited word of
 * its `>` line; a line's base count is its printable non-space bytes, its byte count includes the
 * `\n`; the first line of a sequence fixes its lineBases/lineBytes, a longer line is an error, a
 * shorter one (or a blank line) ends the sequence so that anything but `>` or blank lines after it
 * is an error; a header without bases is left out (an error when it is the last one); a repeated
 * name keeps the first sequence. Errors name the file and line. FASTQ and compressed files are
 * refused: they are not references slicefs can read by byte offset.
 *
 * Names are handled as latin1 throughout (the .fai text is read and written as latin1), so any
 * bytes in a name survive a build, write and parse unchanged.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { SlicefsError, messageOf } from '../errors.js';
import { PRIVATE_MODES, reasonOf, WriteRoot } from '../util/safe-fs.js';
import type { RangeReader } from '../reader/range-reader.js';
import { fsProblem } from '../util/fs-problem.js';
import { MAX_FAI_BYTES, tooLarge } from './limits.js';

export interface FaiEntry {
  name: string;
  /** Bases in the sequence. */
  length: number;
  /** Byte offset of the sequence's first base. */
  offset: number;
  /** Bases per full line. */
  lineBases: number;
  /** Bytes per full line, terminator included. */
  lineBytes: number;
}

const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * Per byte: the uppercase base it stands for, or 0 when it cannot be a base. Bases are the bytes
 * C's `isgraph` accepts (0x21..0x7e), the ones htslib counts as bases and keeps when it fetches.
 */
const BASE_UPPER = new Uint8Array(256);
for (let b = 0x21; b <= 0x7e; b++) BASE_UPPER[b] = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;

/** 1 for bytes C's `isspace` accepts (space, \t, \n, \v, \f, \r): they end a name in a `>` line. */
const IS_SPACE = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) IS_SPACE[b] = 1;

/** 1 for bytes that count as bases when indexing (C's `isgraph`), as a number to add up without a branch. */
const IS_GRAPH = new Uint8Array(256);
for (let b = 0x21; b <= 0x7e; b++) IS_GRAPH[b] = 1;

/**
 * Bytes read per call while indexing. 4 MiB: large enough that a 3 GiB genome takes under a
 * thousand reads, small enough to stay out of the way of the block cache's memory budget.
 */
const BUILD_READ_BYTES = 4 << 20;

/** The fields of a .fai line, in order; a sixth (quality offset) exists in FASTQ indexes. */
const FAI_FIELDS = ['name', 'length', 'offset', 'linebases', 'linewidth', 'qualoffset'] as const;

function faiError(label: string, line: number, column: number, message: string): SlicefsError {
  return new SlicefsError('BAD_RESPONSE', `${label}:${line}:${column}: ${message}`);
}

/**
 * Parses a .fai (samtools faidx format: name, length, offset, linebases, linewidth[, qualoffset],
 * tab-separated). Blank lines are skipped; a `\r` before a line's `\n` is ignored. A bad line
 * throws SlicefsError('BAD_RESPONSE', `label:line:column: ...`) naming the field.
 */
export function parseFai(text: string, label: string): Map<string, FaiEntry> {
  const out = new Map<string, FaiEntry>();
  const firstLine = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === '') continue;
    const fields = raw.split('\t');
    const column = (k: number) => fields.slice(0, k).reduce((c, f) => c + f.length + 1, 1);
    if (fields.length < 5 || fields.length > 6) {
      // Too many: point at the first extra field; too few: at the end of the line.
      const at = fields.length > 6 ? column(6) : raw.length + 1;
      throw faiError(label, line, at, `expected 5 tab-separated fields (name, length, offset, linebases, linewidth), got ${fields.length}`);
    }
    const num = (k: number): number => {
      const f = fields[k];
      if (!/^\d+$/.test(f)) throw faiError(label, line, column(k), `${FAI_FIELDS[k]} '${f}' is not a non-negative integer`);
      const n = Number(f);
      if (!Number.isSafeInteger(n)) throw faiError(label, line, column(k), `${FAI_FIELDS[k]} ${f} is too large`);
      return n;
    };
    const name = fields[0];
    const [length, offset, lineBases, lineBytes] = [num(1), num(2), num(3), num(4)];
    if (fields.length === 6) num(5);
    if (lineBases === 0 && length > 0) throw faiError(label, line, column(3), `linebases is 0 but '${name}' has ${length} bases`);
    if (lineBytes < lineBases) throw faiError(label, line, column(4), `linewidth ${lineBytes} is less than linebases ${lineBases}`);
    const seen = firstLine.get(name);
    if (seen !== undefined) throw faiError(label, line, 1, `sequence '${name}' is already on line ${seen}`);
    firstLine.set(name, line);
    out.set(name, { name, length, offset, lineBases, lineBytes });
  }
  return out;
}

/** Byte offset of base `pos` (0-based) of a sequence. */
function baseByte(e: FaiEntry, pos: number): number {
  return e.offset + Math.floor(pos / e.lineBases) * e.lineBytes + (pos % e.lineBases);
}

export class FastaReference {
  constructor(
    private readonly reader: RangeReader,
    private readonly fai: Map<string, FaiEntry>,
    private readonly label: string,
  ) {
    for (const e of fai.values()) {
      if (e.length === 0) continue;
      const end = baseByte(e, e.length - 1) + 1;
      if (end > reader.size) {
        throw new SlicefsError(
          'BAD_RESPONSE',
          `${label}: its .fai puts the end of '${e.name}' at byte ${end}, but the file has ${reader.size} bytes: the .fai is not this FASTA's (rebuild it with samtools faidx; compressed FASTA is not supported)`,
        );
      }
    }
  }

  has(name: string): boolean {
    return this.fai.has(name);
  }

  length(name: string): number | undefined {
    return this.fai.get(name)?.length;
  }

  /** Sequence names in .fai order. */
  names(): string[] {
    return [...this.fai.keys()];
  }

  /**
   * Starts fetching the bytes of bases [start, end) of `name` (no-op for an unknown name): a CRAM
   * reader knows from its index which reference spans its next slices need, and asks for them all
   * at once instead of one round trip per slice.
   */
  prefetch(name: string, start: number, end: number): void {
    const e = this.fai.get(name);
    if (!e) return;
    const from = Math.min(Math.max(0, start), e.length);
    const to = Math.min(Math.max(from, end), e.length);
    if (to <= from) return;
    const firstByte = baseByte(e, from);
    this.reader.prefetch(firstByte, baseByte(e, to - 1) + 1 - firstByte);
  }

  /**
   * Bases [start, end) (0-based, half-open) of `name`, clipped to the sequence, uppercase ASCII,
   * without line terminators, read as one byte range. An unknown name is NOT_FOUND; bytes that do
   * not sit where the .fai says bases and line ends are give BAD_RESPONSE.
   */
  async fetch(name: string, start: number, end: number): Promise<Buffer> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) {
      throw new RangeError(`fetch(${name}, ${start}, ${end}): positions must be integers`);
    }
    const e = this.fai.get(name);
    if (!e) throw new SlicefsError('NOT_FOUND', `${this.label}: no sequence '${name}' in its .fai`);
    const from = Math.min(Math.max(0, start), e.length);
    const to = Math.min(Math.max(from, end), e.length);
    const bases = to - from;
    if (bases === 0) return Buffer.alloc(0);

    const firstByte = baseByte(e, from);
    const byteCount = baseByte(e, to - 1) + 1 - firstByte;
    const buf = await this.reader.read(firstByte, byteCount);
    const where = () => `${this.label}: ${name}:${from + 1}-${to}`;
    if (buf.length < byteCount) {
      throw new SlicefsError('BAD_RESPONSE', `${where()}: the file ends at byte ${firstByte + buf.length}, before the bases its .fai promises`);
    }
    const mismatch = (i: number, what: string) =>
      new SlicefsError(
        'BAD_RESPONSE',
        `${where()}: byte ${firstByte + i} (0x${buf[i].toString(16).padStart(2, '0')}) is not ${what}: the .fai does not describe this file (rebuild it with samtools faidx; compressed FASTA is not supported)`,
      );

    const gap = e.lineBytes - e.lineBases;
    let inPos = 0; // next byte of `buf` to read
    let outPos = 0; // next byte of `buf` to write (never ahead of inPos)
    let column = from % e.lineBases;
    while (true) {
      const lineEnd = inPos + Math.min(e.lineBases - column, bases - outPos);
      for (; inPos < lineEnd; inPos++, outPos++) {
        const upper = BASE_UPPER[buf[inPos]];
        if (upper === 0) throw mismatch(inPos, 'a base');
        buf[outPos] = upper;
      }
      if (outPos === bases) break;
      // A full line ended: its terminator (whitespace, last byte `\n`) is skipped.
      for (let k = 0; k < gap; k++, inPos++) {
        const b = buf[inPos];
        if (k === gap - 1 ? b !== NEWLINE : BASE_UPPER[b] !== 0) throw mismatch(inPos, 'part of a line end');
      }
      column = 0;
    }
    return buf.subarray(0, bases);
  }
}

/** Where the .fai builder is: htslib's fai_build_core states, split where a state reads a loop. */
const enum Build {
  /** Between sequences: expects `>` or blank lines. */
  OutRead,
  /** Read a `\r` between sequences: a `\n` must follow. */
  OutReadCr,
  /** After `>`, before the name's first character (leading blanks are skipped). */
  NameLead,
  /** Inside the name. */
  Name,
  /** After the name, skipping the rest of the `>` line. */
  NameRest,
  /** At the start of a line inside a sequence. */
  SeqStart,
  /** Inside a sequence line, counting its bytes and bases. */
  SeqLine,
}

/**
 * Builds the .fai text of a local FASTA by streaming it once: the bytes `samtools faidx` writes
 * (htslib's fai_build_core, line by line). Inconsistent line lengths inside a sequence are errors
 * naming the line, as are FASTQ input, compressed input and a last header without bases.
 */
export async function buildFai(fastaPath: string): Promise<string> {
  const fh = await open(fastaPath, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new SlicefsError(e.code === 'ENOENT' ? 'NOT_FOUND' : e.code === 'EACCES' ? 'ACCESS_DENIED' : 'BAD_RESPONSE', `${fastaPath}: ${fsProblem(e)}`);
  });
  const fail = (line: number, message: string) => new SlicefsError('BAD_RESPONSE', `${fastaPath}:${line}: ${message}`);
  const lines: string[] = [];
  const indexed = new Set<string>();

  let state = Build.OutRead;
  let line = 1;
  /** Why the last sequence ended before a `>`: a shorter line or a blank line (for error messages). */
  let endedBy: 'shorter line' | 'blank line' | undefined;
  let nameBytes: number[] = [];
  let name = '';
  /** Line of the current sequence's `>`. */
  let headerLine = 0;
  let seqOffset = 0;
  let seqBases = 0;
  let lineBases = 0;
  let lineBytes = 0;
  /** The current sequence has at least one line (htslib's read_done). */
  let hasLines = false;
  let curBytes = 0;
  let curBases = 0;

  let faiBytes = 0;
  const insert = () => {
    // A repeated name keeps the first sequence, as htslib does (it warns; the .fai has no trace).
    if (indexed.has(name)) return;
    indexed.add(name);
    const entry = `${name}\t${seqBases}\t${seqOffset}\t${lineBases}\t${lineBytes}\n`;
    // The same ceiling as a .fai read from disk or a server (./limits.ts).
    faiBytes += entry.length;
    if (faiBytes > MAX_FAI_BYTES) throw fail(line, `its .fai would be more than ${MAX_FAI_BYTES / (1024 * 1024)} MiB (millions of sequences more than the largest assemblies have)`);
    lines.push(entry);
  };
  const startName = () => {
    if (hasLines) insert();
    hasLines = false;
    endedBy = undefined;
    nameBytes = [];
    headerLine = line;
  };
  const endHeader = (at: number) => {
    name = Buffer.from(nameBytes).toString('latin1');
    seqOffset = at + 1;
    seqBases = lineBases = lineBytes = 0;
    line++;
  };
  /**
   * A sequence line ended (at a `\n` or at the end of the file). Returns true when it was shorter
   * than the first line: the sequence is over, only `>` or blank lines may follow.
   */
  const endSeqLine = (): boolean => {
    curBytes++; // the `\n` (counted at the end of the file too, as htslib does)
    seqBases += curBases;
    let ended = false;
    if (lineBytes === 0) {
      lineBytes = curBytes;
      lineBases = curBases;
    } else if (curBytes < lineBytes) {
      endedBy = 'shorter line';
      ended = true;
    } else if (curBytes > lineBytes) {
      throw fail(line, `line of sequence '${name}' is ${curBytes} bytes long, its first line ${lineBytes} (all lines but the last must have the same length)`);
    }
    line++;
    return ended;
  };

  try {
    const buf = Buffer.allocUnsafe(BUILD_READ_BYTES);
    let chunkStart = 0;
    while (true) {
      const { bytesRead: n } = await fh.read(buf, 0, buf.length, chunkStart);
      if (n === 0) break;
      if (chunkStart === 0 && n >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
        throw fail(1, 'the file is gzip/bgzip-compressed: slicefs reads uncompressed FASTA only (decompress it, with bgzip -d)');
      }
      let i = 0;
      while (i < n) {
        const c = buf[i];
        switch (state) {
          case Build.OutRead:
            if (c === 0x3e /* > */) {
              startName();
              state = Build.NameLead;
            } else if (c === 0x40 /* @ */) throw fail(line, 'this is FASTQ, not a FASTA reference');
            else if (c === CR) state = Build.OutReadCr;
            else if (c === NEWLINE) line++;
            else if (endedBy) throw fail(line, `sequence '${name}' continues after a ${endedBy} (all lines but the last must have the same length)`);
            else throw fail(line, `expected '>' at the start of a line, found ${printable(c)}`);
            i++;
            break;
          case Build.OutReadCr:
            if (c !== NEWLINE) throw fail(line, 'carriage return not followed by a newline');
            line++;
            state = Build.OutRead;
            i++;
            break;
          case Build.NameLead:
            if (c === NEWLINE) {
              endHeader(chunkStart + i);
              state = Build.SeqStart;
            } else if (!IS_SPACE[c]) {
              nameBytes.push(c);
              state = Build.Name;
            }
            i++;
            break;
          case Build.Name:
            if (c === NEWLINE) {
              endHeader(chunkStart + i);
              state = Build.SeqStart;
            } else if (IS_SPACE[c]) state = Build.NameRest;
            else nameBytes.push(c);
            i++;
            break;
          case Build.NameRest: {
            const nl = buf.indexOf(NEWLINE, i);
            if (nl < 0 || nl >= n) {
              i = n;
              break;
            }
            endHeader(chunkStart + nl);
            state = Build.SeqStart;
            i = nl + 1;
            break;
          }
          case Build.SeqStart:
            if (c === NEWLINE) {
              state = Build.OutRead;
              endedBy = 'blank line';
              line++;
              i++;
              break;
            }
            if (c === 0x3e /* > */) {
              startName();
              state = Build.NameLead;
              i++;
              break;
            }
            hasLines = true;
            curBytes = curBases = 0;
            state = Build.SeqLine;
            break; // the same byte is counted in SeqLine
          case Build.SeqLine: {
            let j = i;
            let bases = 0;
            while (j < n && buf[j] !== NEWLINE) bases += IS_GRAPH[buf[j++]];
            curBytes += j - i;
            curBases += bases;
            i = j;
            if (j < n) {
              state = endSeqLine() ? Build.OutRead : Build.SeqStart;
              i++;
            }
            break;
          }
        }
      }
      chunkStart += n;
    }
  } finally {
    await fh.close();
  }

  // The end of the file, where htslib's loop ends.
  switch (state) {
    case Build.OutReadCr:
      throw fail(line, 'carriage return not followed by a newline');
    case Build.NameLead:
    case Build.Name:
    case Build.NameRest:
      throw fail(headerLine, `the last sequence '${Buffer.from(nameBytes).toString('latin1')}' has no bases`);
    case Build.SeqLine:
      endSeqLine();
      break;
  }
  if (!hasLines) {
    if (lines.length === 0) throw fail(line, 'no sequences: not a FASTA file');
    throw fail(headerLine, `the last sequence '${name}' has no bases`);
  }
  insert();
  return lines.join('');
}

function printable(c: number): string {
  return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, '0')}`;
}

/**
 * The .fai text of a local FASTA: `PATH.fai` when it exists; otherwise built with `buildFai` and
 * written atomically (a temporary file in the same directory, renamed over PATH.fai, so a
 * concurrent reader never sees half an index), or kept in memory when it cannot be written (a
 * read-only directory, a full disk): indexing must never stop a view. When the index was built,
 * `note` receives one line saying so and where it went; an existing .fai is used silently.
 */
export async function localFai(fastaPath: string, note: (msg: string) => void): Promise<string> {
  const faiPath = `${fastaPath}.fai`;
  try {
    // Its size is checked first: the file, not slicefs, would otherwise decide what is allocated.
    const { size } = await stat(faiPath);
    if (size > MAX_FAI_BYTES) throw tooLarge(faiPath, 'a .fai', size, MAX_FAI_BYTES, 'that is millions of sequences more than the largest assemblies have');
    return await readFile(faiPath, 'latin1');
  } catch (err) {
    if (err instanceof SlicefsError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      throw new SlicefsError(code === 'EACCES' ? 'ACCESS_DENIED' : 'BAD_RESPONSE', `${faiPath}: ${code ?? messageOf(err)}`);
    }
  }
  const text = await buildFai(fastaPath);
  const count = text.split('\n').length - 1;
  const built = `${basename(faiPath)} not found: indexed ${basename(fastaPath)} (${count} sequence${count === 1 ? '' : 's'})`;
  try {
    // Beside the FASTA, never through a symlink (util/safe-fs.ts), as readable as the FASTA itself.
    const fastaMode = (await stat(fastaPath)).mode & 0o777;
    const root = await WriteRoot.prepare(dirname(fastaPath), { file: fastaMode | 0o600, dir: PRIVATE_MODES.dir }, { create: false });
    await root.replace(faiPath, Buffer.from(text, 'latin1'));
    note(`${built} and wrote ${faiPath}`);
  } catch (err) {
    const why = reasonOf(err);
    note(`${built}; kept in memory (cannot write ${faiPath}: ${why})`);
  }
  return text;
}
