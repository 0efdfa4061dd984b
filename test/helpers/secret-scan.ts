/**
 * The secret-scanning harness: given the secrets a test used (access and download tokens, the URL
 * signatures and work-order tokens the fixture servers issued, passphrases, URL passwords, portal
 * tokens in a query), it looks for each in everything slicefs left behind:
 *
 *   - the output of the commands run (stdout, stderr);
 *   - every file under the paths given, walked: files written (SAM, BAM, downloads), log files, the
 *     mount registry and pid files (the state directory), download journals and catalogues, the
 *     disk tier (meta.json, chunk files) and the index cache. A gzip or BGZF file (BAM, a
 *     compressed log) is searched decompressed too, so a BAM header's @PG line is seen;
 *   - `/proc/PID/cmdline` and `/proc/PID/environ` of every process given, and (`running`) of every
 *     slicefs process still running (`runningSlicefs`): what another local user (`ps`) or a helper
 *     the daemon starts would see.
 *
 * Each secret is searched as written, URL-encoded and JSON-escaped. A secret shorter than 8
 * characters is refused (it would match by chance); empty ones (a URL with no signature) are
 * skipped. Findings name the place and the secret's first characters, never the whole secret.
 */
import assert from 'node:assert/strict';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BIN } from './daemon.js';

export interface ScanPlaces {
  /** Output of the commands run, by a name for the report (`view stdout`). */
  outputs?: Record<string, string | Buffer>;
  /** Files and directories (walked) slicefs wrote or may have written; missing ones are skipped. */
  paths?: string[];
  /** Processes to read `/proc/PID/cmdline` and `/proc/PID/environ` of (a daemon's pid). */
  pids?: number[];
  /**
   * Also every slicefs process still running (`runningSlicefs`): for a scan after the commands
   * returned, when what is left is what `--daemon` left (a foreground mount the test started
   * holds in its environment what the test gave it).
   */
  running?: boolean;
}

export interface Finding {
  /** Where: `stderr`, a file's path (`(decompressed)`), `/proc/PID/environ`. */
  where: string;
  /** The secret's first characters and its length. */
  secret: string;
}

/** The shortest secret searched: shorter ones would be found by chance in binary files. */
const MIN_SECRET_LENGTH = 8;
/** The gzip magic (BGZF is gzip): such files are also searched decompressed. */
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

const masked = (s: string) => `${s.slice(0, 4)}… (${s.length} chars)`;

/** The spellings of a secret that a file or a line may hold. */
function spellings(secret: string): Buffer[] {
  const forms = new Set([secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)]);
  return [...forms].map((f) => Buffer.from(f, 'utf8'));
}

/** Every regular file under `path` (itself when it is one); symlinks are not followed. */
async function filesUnder(path: string): Promise<string[]> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return [];
  if (st.isFile()) return [path];
  if (!st.isDirectory()) return [];
  const out: string[] = [];
  for (const name of await readdir(path)) out.push(...(await filesUnder(join(path, name))));
  return out;
}

/** The pids of the slicefs processes (this checkout's bin/slicefs.js) still running. */
export async function runningSlicefs(): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = await readFile(`/proc/${name}/cmdline`).catch(() => undefined);
    if (argv && argv.toString('utf8').split('\0').includes(BIN)) out.push(Number(name));
  }
  return out;
}

/** Every place where one of `secrets` appears; an empty list when none does. */
export async function findSecrets(secrets: Iterable<string | undefined>, places: ScanPlaces): Promise<Finding[]> {
  const wanted = [...new Set([...secrets].filter((s): s is string => typeof s === 'string' && s !== ''))];
  for (const s of wanted) assert.ok(s.length >= MIN_SECRET_LENGTH, `secret-scan: a secret of ${s.length} characters would match by chance; use longer test secrets`);
  const found: Finding[] = [];
  const search = (where: string, bytes: Buffer) => {
    for (const s of wanted) if (spellings(s).some((f) => bytes.includes(f))) found.push({ where, secret: masked(s) });
  };
  for (const [name, text] of Object.entries(places.outputs ?? {})) search(name, Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'));
  for (const root of places.paths ?? []) {
    for (const file of await filesUnder(root)) {
      const bytes = await readFile(file).catch(() => undefined);
      if (!bytes) continue;
      search(file, bytes);
      if (bytes.subarray(0, 2).equals(GZIP_MAGIC)) {
        let plain: Buffer | undefined;
        try {
          plain = gunzipSync(bytes);
        } catch {
          // A file that only starts like gzip (a chunk of random data): searched as it is.
        }
        if (plain) search(`${file} (decompressed)`, plain);
      }
    }
  }
  const pids = new Set([...(places.pids ?? []), ...(places.running ? await runningSlicefs() : [])]);
  for (const pid of pids) {
    for (const what of ['cmdline', 'environ']) {
      const bytes = await readFile(`/proc/${pid}/${what}`).catch(() => undefined);
      if (bytes) search(`/proc/${pid}/${what}`, bytes);
    }
  }
  return found;
}

/** Fails the test with every place a secret appears (named, the secret masked). */
export async function assertNoSecrets(secrets: Iterable<string | undefined>, places: ScanPlaces): Promise<void> {
  const found = await findSecrets(secrets, places);
  assert.deepEqual(found, [], `secrets found:\n${found.map((f) => `  ${f.secret} in ${f.where}`).join('\n')}`);
}
