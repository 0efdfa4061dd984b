/**
 * Progress output of `slicefs download`. Plain mode runs on an injected clock and node:test's mock
 * timers, so its lines are exact: format, cadence, smoothed speed, ETA. Quiet mode prints only
 * messages. Tty mode writes to a fake terminal whose bytes a small emulator plays back (cursor moves,
 * line and screen clears, autowrap), so the tests check what the screen shows: the bars, messages
 * above them, nothing wrapped on a narrow terminal, the cursor on a fresh line after `stop()`.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { createProgress, type ProgressOptions } from '../../src/download/progress.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Collects what is written; `isTTY`, `columns` and `rows` as a tty.WriteStream has them. */
class FakeStream {
  raw = '';
  writes: string[] = [];
  constructor(
    readonly isTTY: boolean,
    public columns?: number,
    public rows?: number,
  ) {}
  write(chunk: string | Uint8Array, a?: unknown, b?: unknown): boolean {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    this.raw += s;
    this.writes.push(s);
    const cb = typeof a === 'function' ? a : b;
    if (typeof cb === 'function') cb();
    return true;
  }
  get stream(): NodeJS.WritableStream {
    return this as unknown as NodeJS.WritableStream;
  }
}

/**
 * Plays terminal output back onto a screen (no scrolling region: rows grow downward, as the
 * scrollback would hold them). '\n' is CR LF, as the tty driver's onlcr makes it. Text reaching the
 * last column wraps, which the tests require never happens.
 */
function playBack(raw: string, columns: number): { rows: string[]; row: number; col: number; wraps: number; privateModes: string[] } {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  let wraps = 0;
  const privateModes: string[] = [];
  const line = (r: number) => (rows[r] ??= []);
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\x1b') {
      const m = /^\[(\??)(\d*)([A-Za-z])/.exec(raw.slice(i + 1)); // CSI: ESC [ params letter
      assert.ok(m, `unknown escape at ${JSON.stringify(raw.slice(i, i + 8))}`);
      i += m[0].length;
      const n = m[2] === '' ? undefined : Number(m[2]);
      if (m[1] === '?') {
        privateModes.push(`ESC${m[0]}`);
        continue;
      }
      switch (m[3]) {
        case 'A':
          row = Math.max(0, row - (n ?? 1));
          break;
        case 'B':
          row += n ?? 1;
          break;
        case 'C':
          col += n ?? 1;
          break;
        case 'D':
          col = Math.max(0, col - (n ?? 1));
          break;
        case 'G':
          col = (n ?? 1) - 1;
          break;
        case 'K':
          if ((n ?? 0) === 0) line(row).length = Math.min(line(row).length, col);
          else if (n === 2) rows[row] = [];
          else for (let k = 0; k <= col; k++) line(row)[k] = ' ';
          break;
        case 'J':
          line(row).length = Math.min(line(row).length, col);
          rows.length = row + 1;
          break;
        default:
          assert.fail(`unexpected escape ESC${m[0]}`);
      }
      continue;
    }
    if (c === '\n') {
      row++;
      col = 0;
      line(row);
      continue;
    }
    if (c === '\r') {
      col = 0;
      continue;
    }
    if (col >= columns) {
      wraps++;
      row++;
      col = 0;
    }
    const l = line(row);
    while (l.length < col) l.push(' ');
    l[col++] = c;
  }
  for (let r = 0; r <= row; r++) line(r);
  return { rows: rows.map((r) => r.join('').trimEnd()), row, col, wraps, privateModes };
}

let t = 0;
const now = () => t;
function advance(ms: number): void {
  t += ms;
  mock.timers.tick(ms);
}

beforeEach(() => {
  t = 0;
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
});
afterEach(() => mock.timers.reset());

function feed(p: ReturnType<typeof createProgress>, id: string, bytes: number): void {
  for (let left = bytes; left > 0; left -= 64 * 1024) p.bytes(id, Math.min(left, 64 * 1024));
}

test('plain: one line per interval with smoothed speed and ETA; a line per failure; a last one at stop', () => {
  const out = new FakeStream(false);
  const p = createProgress({ mode: 'plain', totalFiles: 10, totalBytes: 10 * GiB, out: out.stream, now });
  p.fileStarted('a', 'a.bam', GiB, 0);
  p.fileStarted('b', 'b.bam', GiB, 512 * MiB); // resumed: counts as done, not as speed
  feed(p, 'a', 500 * MiB);
  advance(4999);
  assert.equal(out.writes.length, 0, 'nothing before the first interval');
  advance(1);
  // 1012 MiB present, 500 MiB in 5 s; 9228 MiB left at 100 MiB/s.
  assert.deepEqual(out.writes, ['download: 0/10 files, 1012.0 MiB of 10.0 GiB (9%), 100.0 MiB/s, ETA 1 min 33 s\n']);

  feed(p, 'a', 524 * MiB);
  p.fileDone('a', 'done');
  advance(5000);
  // The speed covers the last 5 s only: 524 MiB / 5 s; 8704 MiB left.
  assert.equal(out.writes[1], 'download: 1/10 files, 1.50 GiB of 10.0 GiB (15%), 104.8 MiB/s, ETA 1 min 24 s\n');

  advance(1000);
  p.fileDone('b', 'failed');
  assert.equal(out.writes[2], 'download: failed: b.bam\n');
  advance(4000);
  // Stalled: 0 B/s and no ETA.
  assert.equal(out.writes[3], 'download: 1/10 files (1 failed), 1.50 GiB of 10.0 GiB (15%), 0 B/s, ETA --\n');

  p.fileStarted('c', 'c.bam', 2 * GiB, GiB);
  feed(p, 'c', 200 * MiB);
  advance(2000);
  p.stop();
  // 200 MiB over the 7 s the window holds; b's missing 512 MiB are not waited for: 6968 MiB left.
  assert.equal(out.writes[4], 'download: 1/10 files (1 failed), 2.70 GiB of 10.0 GiB (26%), 28.6 MiB/s, ETA 4 min 04 s\n');
  assert.equal(out.writes.length, 5);

  advance(60_000);
  assert.equal(out.writes.length, 5, 'no line after stop');
  p.message('slicefs: done');
  assert.equal(out.writes[5], 'slicefs: done\n');
  for (const w of out.writes) assert.match(w, /^[\x20-\x7e]*\n$/, 'one printable line per write');
});

test('plain: cadence follows intervalMs; long ETAs in minutes and hours', () => {
  const out = new FakeStream(false);
  const p = createProgress({ mode: 'plain', totalFiles: 1, totalBytes: 100 * GiB, out: out.stream, intervalMs: 1000, now });
  p.fileStarted('x', 'x.cram', 100 * GiB, 0);
  for (let i = 0; i < 10; i++) {
    feed(p, 'x', 5 * MiB);
    advance(1000);
  }
  assert.equal(out.writes.length, 10);
  // 5 MiB/s, about 100 GiB left: 5.7 hours.
  assert.match(out.writes[9], /, 5\.00 MiB\/s, ETA 5 h 4\d min\n$/);
  p.stop();
  const slow = new FakeStream(false);
  const q = createProgress({ mode: 'plain', totalFiles: 1, totalBytes: 100 * GiB, out: slow.stream, intervalMs: 1000, now });
  q.bytes('y', 1000);
  advance(1000);
  assert.match(slow.writes[0], /, 1000 B\/s, ETA >99 h\n$/);
  q.stop();
});

test('plain: a file larger than the plan raises the total; the count reaches all files', () => {
  const out = new FakeStream(false);
  const p = createProgress({ mode: 'plain', totalFiles: 2, totalBytes: 0, out: out.stream, now });
  p.fileStarted('u', 'unknown-size.bed', 3 * MiB, 0);
  feed(p, 'u', 3 * MiB);
  p.fileDone('u', 'done');
  p.fileStarted('s', 'present.bai', MiB, MiB); // already complete: started with all its bytes, then skipped
  p.fileDone('s', 'skipped');
  advance(5000);
  assert.match(out.writes[0], /^download: 2\/2 files, 4\.00 MiB of 4\.00 MiB \(100%\), [\d.]+ KiB\/s, ETA 0 s\n$/);
  p.stop();
});

test('quiet: no progress at all, but messages (warnings, errors) still print, as one clean line', () => {
  const out = new FakeStream(true, 80, 24);
  const p = createProgress({ mode: 'quiet', totalFiles: 2, totalBytes: 2 * MiB, out: out.stream, now });
  p.fileStarted('a', 'a.bam', MiB, 0);
  feed(p, 'a', MiB);
  advance(10_000);
  p.fileDone('a', 'done');
  p.fileDone('b', 'failed');
  assert.equal(out.raw, '');
  p.message('warning: two\nlines\tand an \x1b]0;evil title\x07 escape');
  p.stop();
  assert.equal(out.raw, 'warning: two lines and an ?]0;evil title? escape\n');
});

test('tty falls back to plain when the stream is not a terminal', () => {
  const out = new FakeStream(false);
  const p = createProgress({ mode: 'tty', totalFiles: 1, totalBytes: MiB, out: out.stream, now });
  p.fileStarted('a', 'a.bam', MiB, 0);
  advance(5000);
  p.stop();
  assert.equal(out.writes.length, 2);
  assert.match(out.writes[0], /^download: 0\/1 file, 0 B of 1\.00 MiB \(0%\)/);
});

test('nothing is drawn before work begins: a run refused up front shows only its error', () => {
  for (const out of [new FakeStream(false), new FakeStream(true, 80, 24)]) {
    const p = createProgress({ mode: out.isTTY ? 'tty' : 'plain', totalFiles: 12, totalBytes: 0, out: out.stream, now });
    advance(20_000);
    p.message('slicefs: error: not enough space');
    p.stop();
    advance(5000);
    assert.equal(out.raw, 'slicefs: error: not enough space\n', out.isTTY ? 'tty' : 'plain');
  }
});

test('after an interruption the ETA field says so (not ETA 0 s); one file is "1 file"', () => {
  const out = new FakeStream(false);
  const p = createProgress({ mode: 'plain', totalFiles: 1, totalBytes: 10 * MiB, out: out.stream, now });
  p.fileStarted('a', 'a.bam', 10 * MiB, 0);
  feed(p, 'a', 3 * MiB);
  advance(2000);
  p.fileDone('a', 'interrupted');
  p.stop();
  assert.equal(out.writes.at(-1), 'download: 0/1 file, 3.00 MiB of 10.0 MiB (30%), 1.50 MiB/s, interrupted\n');

  const tty = new FakeStream(true, 100, 24);
  const q = createProgress({ mode: 'tty', totalFiles: 2, totalBytes: 10 * MiB, out: tty.stream, now });
  q.fileStarted('a', 'a.bam', 10 * MiB, 0);
  feed(q, 'a', 3 * MiB);
  advance(2000);
  q.fileDone('a', 'interrupted');
  q.stop();
  const screen = playBack(tty.raw, 100);
  assert.match(screen.rows[screen.row - 1], /^0\/2 files .* interrupted$/);
  assert.doesNotMatch(tty.raw, /ETA 0 s/);
});

test('notes (what a resumed download already has) print, except when quiet', () => {
  const plain = new FakeStream(false);
  createProgress({ mode: 'plain', totalFiles: 1, totalBytes: MiB, out: plain.stream, now }).note('resuming: 1.00 MiB of 2.00 MiB already here');
  assert.equal(plain.raw, 'resuming: 1.00 MiB of 2.00 MiB already here\n');
  const quiet = new FakeStream(false);
  createProgress({ mode: 'quiet', totalFiles: 1, totalBytes: MiB, out: quiet.stream, now }).note('resuming: 1.00 MiB of 2.00 MiB already here');
  assert.equal(quiet.raw, '');
});

function ttyProgress(out: FakeStream, extra: Partial<ProgressOptions> = {}) {
  return createProgress({ mode: 'tty', totalFiles: 3, totalBytes: 300 * MiB, out: out.stream, now, ...extra });
}

test('tty: a total bar and a bar per file, messages above them, the cursor on a fresh line after stop', () => {
  const out = new FakeStream(true, 80, 24);
  const p = ttyProgress(out);
  const long = 'HG00096.mapped.ILLUMINA.bwa.GBR.low_coverage.20120522.bam';
  p.fileStarted('1', 'sample-one.bam', 100 * MiB, 0);
  p.fileStarted('2', long, 100 * MiB, 50 * MiB);
  for (let i = 0; i < 10; i++) {
    feed(p, '1', 4 * MiB);
    feed(p, '2', 2 * MiB);
    advance(200);
  }
  let screen = playBack(out.raw, 80);
  assert.equal(screen.rows.length, 3, screen.rows.join('\n'));
  // 2 s of samples: 40 MiB and 20 MiB received, 50 MiB resumed.
  // 0/3 files [####---------]  36%  110.0 MiB/300.0 MiB  30.0 MiB/s ETA 7 s
  // sample-one.bam              [######----------]  40%  20.0 MiB/s ETA 3 s
  // HG00096.mapp...20120522.bam [###########-----]  70%  10.0 MiB/s ETA 3 s
  assert.match(screen.rows[0], /^0\/3 files \[#{4}-+\] {2}36% {2}110\.0 MiB\/300\.0 MiB {2}30\.0 MiB\/s ETA 7 s$/);
  assert.match(screen.rows[1], /^sample-one\.bam +\[#{6}-{10}\] {2}40% {2}20\.0 MiB\/s ETA 3 s$/);
  // The long name is cut in the middle, and the bars of the files line up.
  assert.match(screen.rows[2], /^HG00096\.mapp\.\.\.20120522\.bam \[#{11}-{5}\] {2}70% {2}10\.0 MiB\/s ETA 3 s$/);
  assert.equal(screen.rows[1].indexOf('['), screen.rows[2].indexOf('['));

  p.message('warning: server ignored Range');
  screen = playBack(out.raw, 80);
  assert.equal(screen.rows[0], 'warning: server ignored Range');
  assert.match(screen.rows[1], /^0\/3 files/);
  assert.match(screen.rows[3], /^HG00096/);

  feed(p, '1', 60 * MiB);
  p.fileDone('1', 'done');
  advance(200);
  screen = playBack(out.raw, 80);
  assert.deepEqual(
    screen.rows.map((r) => r.slice(0, 10)),
    ['warning: s', '1/3 files ', 'HG00096.ma', ''],
    'the finished file`s line is gone, nothing left below the block',
  );

  p.stop();
  assert.ok(out.raw.endsWith('\n'));
  screen = playBack(out.raw, 80);
  assert.equal(screen.col, 0);
  assert.equal(screen.row, screen.rows.length - 1, 'the cursor is on the last row');
  assert.equal(screen.rows[screen.row], '', 'which is fresh');
  assert.match(screen.rows[screen.row - 1], /^HG00096/, 'right below the final bars');
  assert.deepEqual(screen.privateModes, [], 'the cursor and autowrap are left alone');
  assert.equal(screen.wraps, 0);

  const before = out.raw.length;
  advance(5000);
  assert.equal(out.raw.length, before, 'no redraw after stop');
  p.message('error: 1 file failed');
  assert.equal(out.raw.slice(before), 'error: 1 file failed\n');
});

test('tty: a narrow, short terminal gets lines that never wrap and a block that fits', () => {
  const out = new FakeStream(true, 30, 6);
  const p = ttyProgress(out, { totalFiles: 5, totalBytes: 5 * GiB });
  for (let i = 0; i < 5; i++) p.fileStarted(`${i}`, `NA1287${i}.final.chr${i + 1}.cram`, GiB, 0);
  for (let i = 0; i < 10; i++) {
    for (let f = 0; f < 5; f++) feed(p, `${f}`, 3 * MiB);
    advance(200);
  }
  p.message('a warning longer than the terminal is wide wraps, as any printed line does');
  advance(200);
  p.stop();
  const screen = playBack(out.raw, 30);
  // The message wraps onto three rows; the block is the total, 3 files (6 rows - 3) and "+2 more".
  const block = screen.rows.slice(3, -1);
  assert.equal(block.length, 5, screen.rows.join('\n'));
  // No room for bars: names stay whole, speed and ETA go.
  assert.match(block[0], /^0\/5 files \d+%/);
  assert.equal(block[1], 'NA12870.final.chr1.cram 2%');
  assert.equal(block[3], 'NA12872.final.chr3.cram 2%');
  assert.equal(block[4], '  +2 more active files');
  for (const r of block) assert.ok(r.length <= 29, `'${r}' is ${r.length} columns`);
  assert.equal(screen.wraps, 2, 'only the message wrapped');
  assert.equal(screen.rows[screen.row], '');
});

test('tty: a file name cannot send escape sequences to the terminal', () => {
  const out = new FakeStream(true, 80, 24);
  const p = ttyProgress(out);
  p.fileStarted('1', 'evil\x1b[2J\x1b[?25l.bam', MiB, 0);
  advance(200);
  p.stop();
  const screen = playBack(out.raw, 80);
  assert.match(screen.rows[1], /^evil\?\[2J\?\[\?25l\.bam /);
  assert.deepEqual(screen.privateModes, []);
});
