/**
 * Progress output of `slicefs download`, in one of three modes the caller picks:
 *
 * - `tty` (stderr is a terminal): a block of lines redrawn in place, five times a second: one total
 *   line (files done of all, bytes, %, speed, ETA) and one line per active file (name, %, speed,
 *   ETA), at most `MAX_FILE_LINES` of them and never more than the terminal is tall (the redraw
 *   moves the cursor up over the block, which cannot work past the top of the screen); the others
 *   are counted on a last `+N more active files` line. Lines are cut to the terminal's width minus
 *   one column, so they never wrap, even after a resize: on a narrow terminal the bar goes first,
 *   then the ETA and the speed, then the file name is shortened in the middle (its extension
 *   stays). `message` prints above the block.
 * - `plain` (stderr is a file or a pipe, e.g. a batch job's log): one line every `intervalMs`
 *   (5 s), `download: 3/10 files, 1.20 GiB of 4.00 GiB (30%), 85.3 MiB/s, ETA 33 s`, a line
 *   `download: failed: NAME` when a file fails, and a last line at `stop()`. Nothing else, and no
 *   control characters: logs stay greppable.
 * - `quiet`: no progress at all. `message` still prints: messages are the warnings and errors the
 *   caller chose to show, and `--quiet` silences the progress, not the problems (like `curl -sS`).
 *   `note` (what a resumed download already has) is progress: silent.
 *
 * Nothing is drawn until work begins (the first file starts): a run refused up front (bad options,
 * a full disk, a locked directory) prints its one error line and no `0/12 files, 0 B of 0 B`. Once a
 * file was interrupted (Ctrl-C, a full disk) the ETA field says `interrupted`, not `ETA 0 s`.
 *
 * Speeds are averaged over the last `RATE_WINDOW_MS` (5 s) of samples, not measured between two
 * redraws: parallel streams deliver in bursts of chunks, and an instantaneous speed (and the ETA
 * computed from it) would jump at every frame. A speed is shown once a second of samples exists.
 * The total speed counts the bytes received in this run only: bytes already present (a resumed
 * file, `alreadyDone`) count towards the total done but not towards the speed.
 *
 * Sizes use util/size's binary units (MiB, GiB), as `--limit-rate 100M` and `--cache-size` do, so
 * a limit of 100M reads back as 100.0 MiB/s.
 *
 * The terminal block is drawn by cli-progress (the usual progress-bar library of Node CLIs, widely
 * used): its MultiBar redraws the block in place with relative cursor moves on the stream it is
 * given (stderr here; it reads `isTTY` and `columns` from that stream, not from stdout), and prints
 * `log` lines above the bars. We hand it our own line formatter, which it calls with the terminal's
 * current width on every redraw, and keep it away from the terminal's state. Its defaults are not
 * what we want on a narrow terminal: `linewrap: false` (the default) turns autowrap off for the
 * whole session, and a process killed before `stop()` leaves the user's shell without it; with
 * `linewrap: true` it trims lines to exactly `columns`, where the last column can still wrap or be
 * erased, so our formatter cuts one column earlier. No `hideCursor` (same reason as autowrap); no
 * `gracefulExit` (it adds SIGINT handlers, and Ctrl-C belongs to the caller, which stops the
 * download and then calls `stop()`). On a stream that is not a TTY it prints nothing at all, hence
 * the plain mode.
 *
 * The caller must call `stop()` (in a `finally`): in tty mode cli-progress's redraw timer keeps the
 * process alive until then. The plain mode's timer does not.
 */
import cliProgress from 'cli-progress';
import { formatBytes } from '../util/size.js';
import { counted } from '../util/words.js';

export type ProgressMode = 'tty' | 'plain' | 'quiet';

export interface ProgressReporter {
  /** A file begins (or resumes with `alreadyDone` bytes present). */
  fileStarted(id: string, name: string, size: number, alreadyDone: number): void;
  /** `n` new bytes of file `id` arrived. Called very often (per 64 KiB chunk): must be cheap. */
  bytes(id: string, n: number): void;
  /**
   * `done` and `skipped` count as finished files, `failed` in the failures. An id that never started
   * is accepted (a file that failed before its first byte). A skipped file's bytes count towards the
   * total done only if it was started: `fileStarted(id, name, size, size)` then `fileDone(id, 'skipped')`.
   */
  fileDone(id: string, outcome: 'done' | 'skipped' | 'failed' | 'interrupted'): void;
  /** Prints one line (a warning, an error) without garbling the bars. */
  message(line: string): void;
  /** Prints one line of progress information (`resuming: …`), like `message` but not when quiet. */
  note(line: string): void;
  /** Final redraw and release of the terminal. */
  stop(): void;
}

export interface ProgressOptions {
  /** `tty` falls back to `plain` when `out` is not a terminal (cli-progress would print nothing). */
  mode: ProgressMode;
  totalFiles: number;
  /** Bytes of all files, as far as the plan knows them; the sizes given to `fileStarted` can raise it. */
  totalBytes: number;
  out: NodeJS.WritableStream;
  /** Plain mode: ms between lines. */
  intervalMs?: number;
  /** Clock in ms, for tests (default `performance.now`). */
  now?: () => number;
}

/** A line every 5 s: frequent enough to see a stall in a log, rare enough that a day's log stays short. */
const DEFAULT_INTERVAL_MS = 5000;
/** Speeds average the last 5 s: long enough to smooth chunk bursts, short enough to show a slowdown. */
const RATE_WINDOW_MS = 5000;
/** No speed (and no ETA) until a second of samples exists: the first fractions of a second mislead. */
const MIN_RATE_SPAN_MS = 1000;
/** Redraws per second in tty mode: speeds and ETAs read no better faster; ssh links carry less. */
const TTY_FPS = 5;
/** File lines shown at most: more parallel files are no more readable; the rest are counted. */
const MAX_FILE_LINES = 10;
/** Height assumed when the stream does not say (the VT100's 24 rows). */
const DEFAULT_ROWS = 24;
/** The bar's width range: below 10 cells a bar says nothing the percentage does not; above 30 it crowds. */
const MIN_BAR_WIDTH = 10;
const MAX_BAR_WIDTH = 30;
/** The name column takes at most this share of the width, and is never cut below MIN_NAME_WIDTH. */
const NAME_SHARE = 0.35;
const MIN_NAME_WIDTH = 10;

/** Bytes per second over the last RATE_WINDOW_MS of (time, cumulative bytes) samples. */
class RateMeter {
  private readonly times: number[] = [];
  private readonly counts: number[] = [];

  constructor(t: number, count: number) {
    this.sample(t, count);
  }

  sample(t: number, count: number): void {
    this.times.push(t);
    this.counts.push(count);
    // Keep one sample at or before the window's start, so the rate covers the whole window.
    while (this.times.length > 2 && this.times[1] <= t - RATE_WINDOW_MS) {
      this.times.shift();
      this.counts.shift();
    }
  }

  /** Undefined until the samples span MIN_RATE_SPAN_MS. */
  rate(): number | undefined {
    const last = this.times.length - 1;
    const span = this.times[last] - this.times[0];
    if (span < MIN_RATE_SPAN_MS) return undefined;
    return ((this.counts[last] - this.counts[0]) * 1000) / span;
  }
}

class FileProgress {
  /** Bytes present: `alreadyDone` plus what arrived since. */
  done: number;
  /** Bytes that arrived in this run (what the speed measures). */
  received = 0;
  readonly meter: RateMeter;
  constructor(
    readonly name: string,
    readonly size: number,
    alreadyDone: number,
    t: number,
  ) {
    this.done = alreadyDone;
    this.meter = new RateMeter(t, 0);
  }
}

/** The counts every mode shows, kept by the cheap calls and sampled by the redraws. */
class Tally {
  /** Files started and not finished, in start order (Map keeps insertion order). */
  readonly active = new Map<string, FileProgress>();
  filesFinished = 0;
  filesFailed = 0;
  filesInterrupted = 0;
  /** Whether any file started or finished: until then there is nothing to show. */
  begun = false;
  /** Bytes present of all files: resumed, received, and whole files finished. */
  doneBytes = 0;
  /** Bytes received in this run. */
  received = 0;
  /** Bytes failed or interrupted files will not get: not waited for by the ETA. */
  abandonedBytes = 0;
  /** Sizes of the files started. The total shown is at least this: the plan may not know every size. */
  private startedSizes = 0;
  readonly meter: RateMeter;

  constructor(
    readonly totalFiles: number,
    private readonly totalBytes: number,
    t: number,
  ) {
    this.meter = new RateMeter(t, 0);
  }

  get expectedBytes(): number {
    return Math.max(this.totalBytes, this.startedSizes);
  }

  started(id: string, name: string, size: number, alreadyDone: number, t: number): FileProgress {
    const again = this.active.get(id);
    if (again) {
      // Started twice (a restart): the first start's bytes are replaced by this one's.
      this.doneBytes -= again.done;
      this.startedSizes -= again.size;
      this.active.delete(id);
    }
    const f = new FileProgress(printable(name), size, alreadyDone, t);
    this.begun = true;
    this.active.set(id, f);
    this.doneBytes += alreadyDone;
    this.startedSizes += size;
    return f;
  }

  bytes(id: string, n: number): void {
    this.begun = true;
    this.received += n;
    this.doneBytes += n;
    const f = this.active.get(id);
    if (f) {
      f.done += n;
      f.received += n;
    }
  }

  /** Returns the file's name (its id when it never started). */
  finished(id: string, outcome: 'done' | 'skipped' | 'failed' | 'interrupted'): string {
    const f = this.active.get(id);
    this.active.delete(id);
    this.begun = true;
    if (outcome === 'interrupted') this.filesInterrupted++;
    if (outcome === 'done' || outcome === 'skipped') {
      this.filesFinished++;
      // A finished file is all there, whatever its byte calls added up to.
      if (f) this.doneBytes += f.size - f.done;
    } else {
      if (outcome === 'failed') this.filesFailed++;
      if (f) this.abandonedBytes += Math.max(0, f.size - f.done);
    }
    return f?.name ?? printable(id);
  }

  sample(t: number): void {
    this.meter.sample(t, this.received);
    for (const f of this.active.values()) f.meter.sample(t, f.received);
  }

  percent(): number {
    const expected = this.expectedBytes;
    if (expected <= 0) return this.filesFinished >= this.totalFiles ? 100 : 0;
    return clampPercent(this.doneBytes / expected);
  }

  /** Seconds left at the current speed; undefined while the speed is unknown or zero. */
  etaSeconds(rate: number | undefined): number | undefined {
    const left = this.expectedBytes - this.doneBytes - this.abandonedBytes;
    if (left <= 0) return 0;
    return rate ? left / rate : undefined;
  }

  filesLabel(): string {
    const failed = this.filesFailed > 0 ? ` (${this.filesFailed} failed)` : '';
    return `${this.filesFinished}/${counted(this.totalFiles, 'file')}${failed}`;
  }

  /** The ETA field: `ETA 33 s`, or `interrupted` once a file was (no time is left to wait for). */
  etaLabel(rate: number | undefined): string {
    return this.filesInterrupted > 0 ? 'interrupted' : `ETA ${formatEta(this.etaSeconds(rate))}`;
  }
}

export function createProgress(opts: ProgressOptions): ProgressReporter {
  if (opts.mode === 'quiet') return new QuietProgress(opts.out);
  if (opts.mode === 'tty' && (opts.out as { isTTY?: boolean }).isTTY === true) return new TtyProgress(opts);
  return new PlainProgress(opts);
}

class QuietProgress implements ProgressReporter {
  constructor(private readonly out: NodeJS.WritableStream) {}
  fileStarted(): void {}
  bytes(): void {}
  fileDone(): void {}
  message(line: string): void {
    this.out.write(`${printable(line)}\n`);
  }
  note(): void {}
  stop(): void {}
}

class PlainProgress implements ProgressReporter {
  private readonly tally: Tally;
  private readonly now: () => number;
  private readonly out: NodeJS.WritableStream;
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(opts: ProgressOptions) {
    this.out = opts.out;
    this.now = opts.now ?? (() => performance.now());
    this.tally = new Tally(opts.totalFiles, opts.totalBytes, this.now());
    this.timer = setInterval(() => this.line(), opts.intervalMs ?? DEFAULT_INTERVAL_MS);
    // The download keeps the process alive; a progress line is no reason to.
    this.timer.unref();
  }

  fileStarted(id: string, name: string, size: number, alreadyDone: number): void {
    this.tally.started(id, name, size, alreadyDone, this.now());
  }

  bytes(id: string, n: number): void {
    this.tally.bytes(id, n);
  }

  fileDone(id: string, outcome: 'done' | 'skipped' | 'failed' | 'interrupted'): void {
    const name = this.tally.finished(id, outcome);
    if (outcome === 'failed' && !this.stopped) this.out.write(`download: failed: ${name}\n`);
  }

  message(line: string): void {
    this.out.write(`${printable(line)}\n`);
  }

  note(line: string): void {
    this.message(line);
  }

  stop(): void {
    if (this.stopped) return;
    clearInterval(this.timer);
    this.line();
    this.stopped = true;
  }

  private line(): void {
    const t = this.tally;
    if (!t.begun) return;
    t.sample(this.now());
    const rate = t.meter.rate();
    this.out.write(
      `download: ${t.filesLabel()}, ${formatBytes(t.doneBytes)} of ${formatBytes(t.expectedBytes)} (${t.percent()}%), ` +
        `${formatSpeed(rate)}, ${t.etaLabel(rate)}\n`,
    );
  }
}

/** What the lines of one redraw show: computed once per frame, read by every line's formatter. */
interface Frame {
  visible: FileProgress[];
  hidden: number;
  nameWidth: number;
}

class TtyProgress implements ProgressReporter {
  private readonly tally: Tally;
  private readonly now: () => number;
  private readonly out: NodeJS.WritableStream & { rows?: number; columns?: number };
  private readonly multibar: cliProgress.MultiBar;
  /** One cli-progress bar per screen line; line i's content is decided at render time (see `render`). */
  private readonly lines: cliProgress.SingleBar[] = [];
  private frame: Frame = { visible: [], hidden: 0, nameWidth: MIN_NAME_WIDTH };
  private shrinking = false;
  private stopped = false;

  constructor(opts: ProgressOptions) {
    this.out = opts.out;
    this.now = opts.now ?? (() => performance.now());
    this.tally = new Tally(opts.totalFiles, opts.totalBytes, this.now());
    this.multibar = new cliProgress.MultiBar({
      stream: opts.out,
      fps: TTY_FPS,
      format: (_options, params, payload: { line: number }) => this.render(payload.line, params.maxWidth),
      linewrap: true,
      // A `log` line printed above the block moves the block down, and cli-progress otherwise skips
      // lines whose text did not change: they would not be drawn at their new place. A frame is
      // under 1 KB, five times a second.
      forceRedraw: true,
      hideCursor: false,
      gracefulExit: false,
      clearOnComplete: false,
      stopOnComplete: false,
    });
    this.multibar.on('update-pre', () => this.prepareFrame());
    // Lines are removed only here, after cli-progress has armed its next frame: removing redraws at
    // once (and re-arms), which from inside 'update-pre' would start a second timer chain.
    this.multibar.on('update-post', () => this.shrink());
    // The total line (which starts cli-progress's redraw timer) waits for the first file.
  }

  fileStarted(id: string, name: string, size: number, alreadyDone: number): void {
    if (this.stopped) return;
    this.tally.started(id, name, size, alreadyDone, this.now());
    while (this.lines.length < this.wantedLines()) this.addLine();
  }

  bytes(id: string, n: number): void {
    this.tally.bytes(id, n);
  }

  fileDone(id: string, outcome: 'done' | 'skipped' | 'failed' | 'interrupted'): void {
    // A failure shows in the total line's count; its reason comes through `message`. Unused lines
    // go at the next frame (`shrink`), so a stream of small files does not redraw at every file.
    this.tally.finished(id, outcome);
    if (!this.stopped && this.lines.length === 0) this.addLine();
  }

  message(line: string): void {
    const text = printable(line);
    // Before the block is drawn (or after it is gone) a line is just written.
    if (this.stopped || this.lines.length === 0) {
      this.out.write(`${text}\n`);
      return;
    }
    this.multibar.log(`${text}\n`);
    this.multibar.update(); // now, not at the next frame: a warning next to the moment it happened
  }

  note(line: string): void {
    this.message(line);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.lines.length === 0) return; // nothing was drawn
    this.prepareFrame();
    this.shrink();
    // Renders every line once more, then a newline: the cursor is left at the start of a fresh line.
    this.multibar.stop();
  }

  /** Lines the block should have now: the total, the visible files, and the `+N more` line. */
  private wantedLines(): number {
    const active = this.tally.active.size;
    const shown = Math.min(active, this.fileLineCapacity());
    return 1 + shown + (active > shown ? 1 : 0);
  }

  /** File lines that fit: the block (total + files + more) must stay shorter than the screen. */
  private fileLineCapacity(): number {
    return Math.max(0, Math.min(MAX_FILE_LINES, (this.out.rows || DEFAULT_ROWS) - 3));
  }

  private addLine(): void {
    this.lines.push(this.multibar.create(1, 0, { line: this.lines.length }));
  }

  private shrink(): void {
    if (this.shrinking) return;
    this.shrinking = true;
    try {
      const wanted = this.wantedLines();
      while (this.lines.length > Math.max(1, wanted)) this.multibar.remove(this.lines.pop()!);
    } finally {
      this.shrinking = false;
    }
  }

  private prepareFrame(): void {
    this.tally.sample(this.now());
    const capacity = Math.min(this.fileLineCapacity(), this.lines.length - 1);
    const visible: FileProgress[] = [];
    for (const f of this.tally.active.values()) {
      if (visible.length >= capacity) break;
      visible.push(f);
    }
    const labels = [this.tally.filesLabel().length, ...visible.map((f) => f.name.length)];
    const width = this.width(this.out.columns);
    const nameWidth = Math.min(Math.max(...labels), Math.max(MIN_NAME_WIDTH, Math.floor(width * NAME_SHARE)));
    this.frame = { visible, hidden: this.tally.active.size - visible.length, nameWidth };
  }

  /** Usable columns: one less than the terminal, as writing the last column can wrap (or be erased). */
  private width(columns: number | undefined): number {
    return Math.max(1, (columns || 80) - 1);
  }

  /** The text of screen line `line` (0 = total), at most `columns - 1` wide. */
  private render(line: number, columns: number): string {
    const width = this.width(columns);
    const t = this.tally;
    const { visible, hidden, nameWidth } = this.frame;
    if (line === 0) {
      const rate = t.meter.rate();
      const percent = t.percent();
      const fields = [`${percent}%`, `${formatBytes(t.doneBytes).padStart(10)}/${formatBytes(t.expectedBytes)}`, formatSpeed(rate), t.etaLabel(rate)];
      // The total line has its own (short) label: in the file names' column its bar would not fit.
      const label = t.filesLabel();
      return fitLine(label, label.length, percent / 100, fields, TOTAL_FIELD_WIDTHS, width);
    }
    const f = visible[line - 1];
    if (f) {
      const rate = f.meter.rate();
      const fraction = f.size > 0 ? Math.min(1, f.done / f.size) : 1;
      const eta = f.done >= f.size ? 0 : rate ? (f.size - f.done) / rate : undefined;
      const fields = [`${clampPercent(fraction)}%`, formatSpeed(rate), `ETA ${formatEta(eta)}`];
      return fitLine(f.name, nameWidth, fraction, fields, FILE_FIELD_WIDTHS, width);
    }
    if (line === visible.length + 1 && hidden > 0) {
      return `  +${hidden} more active file${hidden === 1 ? '' : 's'}`.slice(0, width);
    }
    return ''; // a line about to be removed (see `shrink`)
  }
}

/**
 * Field widths of the two kinds of line (negative: left-aligned). Fixed widths keep the bar's length
 * and every column still from frame to frame: `100%`, `999.9 MiB/s`, `ETA 59 min 59 s`; the total's
 * bytes field is padded where it is built (`1023.9 MiB/` before a total that does not change).
 */
const TOTAL_FIELD_WIDTHS = [4, 0, 11, -15];
const FILE_FIELD_WIDTHS = [4, 11, -15];

/**
 * `label [bar] fields`, `width` columns at most. When the bar does not fit, the line keeps what
 * identifies it: the fields lose their padding, the last fields go (ETA, then speed) until the whole
 * label fits, then the label is shortened (not below MIN_NAME_WIDTH), and last the line is cut.
 */
function fitLine(label: string, nameWidth: number, fraction: number, fields: string[], widths: number[], width: number): string {
  const padded = fields.map((f, i) => (widths[i] < 0 ? f.padEnd(-widths[i]) : f.padStart(widths[i]))).join(' ');
  const barRoom = width - nameWidth - padded.length - 4; // ' [', '] '
  if (barRoom >= MIN_BAR_WIDTH) {
    const cells = Math.min(barRoom, MAX_BAR_WIDTH);
    const filled = Math.floor(fraction * cells);
    // ASCII: renders in every locale and font, one column per character.
    const bar = '#'.repeat(filled) + '-'.repeat(cells - filled);
    return `${shorten(label, nameWidth).padEnd(nameWidth)} [${bar}] ${padded}`.trimEnd();
  }
  let kept = fields.map((f) => f.trim());
  while (kept.length > 1 && label.length + 1 + kept.join(' ').length > width) kept = kept.slice(0, -1);
  const compact = kept.join(' ');
  const labelRoom = Math.max(MIN_NAME_WIDTH, Math.min(label.length, width - compact.length - 1));
  return `${shorten(label, labelRoom)} ${compact}`.slice(0, width);
}

/** `name` in at most `width` columns, cut in the middle so both its start and extension stay. */
function shorten(name: string, width: number): string {
  if (name.length <= width) return name;
  if (width < 8) return name.slice(0, width);
  const head = Math.ceil((width - 3) / 2);
  return `${name.slice(0, head)}...${name.slice(name.length - (width - 3 - head))}`;
}

function clampPercent(fraction: number): number {
  return Math.min(100, Math.max(0, Math.floor(fraction * 100)));
}

function formatSpeed(bytesPerSecond: number | undefined): string {
  return bytesPerSecond === undefined ? '-- B/s' : `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** `33 s`, `4 min 05 s`, `2 h 10 min`; `--` when unknown (no speed yet, or stalled). */
function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--';
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(s / 3600);
  if (h >= 100) return '>99 h';
  return `${h} h ${String(Math.floor(s / 60) % 60).padStart(2, '0')} min`;
}

/**
 * `text` without control characters: file names come from manifests and servers, and an escape
 * sequence in one must not move the cursor or retitle the terminal. Line breaks and tabs become
 * spaces (a message is one line), the rest `?`.
 */
function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => (/\s/.test(c) ? ' ' : '?'));
}
