/**
 * The log file of a mount (`--log-file`, and always for `--daemon`): one line per event,
 * `2026-11-23T07:50:00.123Z INFO  mounted 3 files at /mnt/x`, with levels ERROR, WARN, INFO and
 * DEBUG (the `--verbose` request lines). Every line passes through `redactLine` (no query string,
 * no Bearer credential), whatever built it.
 *
 * Size is bounded without a rotation daemon: when the file passes `maxBytes`, it is renamed to
 * `FILE.1` (replacing the previous one) and a new file is started, so the two never hold more than
 * twice the bound. Writes are synchronous appends: log lines are few (DEBUG aside), a line is never
 * lost when the process dies right after, and lines from the daemon and its own stderr (a crash's
 * stack trace goes there, into the same file) do not interleave mid-line. The file is opened
 * (0600 when made) and rotated never through a symlink (util/safe-fs.ts).
 */
import { closeSync, fstatSync, writeSync } from 'node:fs';
import { redactLine } from '../util/redact.js';
import { openAppendSync, renameOverSync } from '../util/safe-fs.js';

export type LogLevel = 'ERROR' | 'WARN' | 'INFO' | 'DEBUG';

/** 10 MiB: days of a mount's INFO lines, and hours of --verbose request lines. */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;

export class LogFile {
  private fd: number;
  private size: number;

  constructor(
    readonly path: string,
    private readonly maxBytes = DEFAULT_LOG_MAX_BYTES,
  ) {
    this.fd = openAppendSync(path);
    this.size = fstatSync(this.fd).size;
  }

  /** The level a message has from its wording (`error: …`, `warning: …`), as `say` writes them. */
  static levelOf(msg: string): Exclude<LogLevel, 'DEBUG'> {
    if (/^(error|internal error)\b/i.test(msg)) return 'ERROR';
    if (/^warning\b/i.test(msg)) return 'WARN';
    return 'INFO';
  }

  write(level: LogLevel, msg: string): void {
    const text = redactLine(msg.replace(/\r?\n/g, ' ').replace(/^slicefs: /, ''));
    const line = Buffer.from(`${new Date().toISOString()} ${level.padEnd(5)} ${text}\n`);
    if (this.size + line.length > this.maxBytes && this.size > 0) this.rotate();
    writeSync(this.fd, line);
    this.size += line.length;
  }

  private rotate(): void {
    try {
      renameOverSync(this.path, `${this.path}.1`);
    } catch {
      // A log that cannot be rotated (read-only directory, a symlink at FILE.1) keeps growing rather than losing lines.
      return;
    }
    closeSync(this.fd);
    this.fd = openAppendSync(this.path);
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}
