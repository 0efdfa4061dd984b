/**
 * `slicefs mount --daemon`: runs the same mount command as a detached child (its own session, no
 * terminal, stdout and stderr into the log file) and waits until the child reports that the mount
 * is ready or has failed (./daemon-protocol.ts). Only a ready mount returns 0; a failed one returns
 * the child's exit code and its reason; a child that dies without a word is reported with the log's
 * path. Ctrl-C while waiting stops the child too, so no half-started daemon is left behind.
 *
 * No secret reaches the child by its command line or environment: `--token`'s value and the
 * secret variables (ACCESSTOKEN, SLICEFS_TOKEN, C4GH_PASSPHRASE, or the passphrase asked for here)
 * go over the IPC channel (./daemon-protocol.ts).
 *
 * Paths are decided here, before the child starts, so the parent can print them: the log file
 * (`--log-file`, default `~/.local/state/slicefs/logs/<mount>.log`) and the pid file (`--pid-file`,
 * default `~/.local/state/slicefs/mounts/<mount>.pid`).
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import type { ArgumentsCamelCase } from 'yargs';
import { SlicefsError } from '../errors.js';
import { PRIVATE_MODES, WriteRoot } from '../util/safe-fs.js';
import { EXIT_FAILURE, say, userPathError } from './common.js';
import { DAEMON_CHILD_ENV, SECRET_ENV, type DaemonMessage, type DaemonSecrets } from './daemon-protocol.js';
import { keyFilesOf } from './key-options.js';
import { mountKey, registryDir, stateDir } from './mount-registry.js';
import { counted } from '../util/words.js';

interface DaemonArgs {
  ghga?: boolean;
  'download-token-file'?: string;
  'private-key'?: string | string[];
  token?: string | string[];
  mountpoint?: string;
  'mount-point'?: string;
  'log-file'?: string;
  'pid-file'?: string;
}

/**
 * The command line of the child: this one without --daemon and without `--token`'s value (handed
 * over the channel instead), with the decided log and pid files.
 */
function childArgv(logFile: string, pidFile: string, token: string | string[] | undefined): string[] {
  // Given twice, yargs makes it a list: every value is left out.
  const values = new Set<string>(([] as string[]).concat(token ?? []));
  const out: string[] = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--daemon' || a === '--daemon=true') continue;
    if (a === '--log-file' || a === '--pid-file') {
      i++;
      continue;
    }
    if (a.startsWith('--log-file=') || a.startsWith('--pid-file=') || a.startsWith('--token=')) continue;
    if (a === '--token') {
      // yargs took the next word as its value (unless it is an option of its own).
      if (values.has(argv[i + 1])) i++;
      continue;
    }
    out.push(a);
  }
  return [...out, '--log-file', logFile, '--pid-file', pidFile];
}

export async function startDetached(args: ArgumentsCamelCase<DaemonArgs>): Promise<void> {
  const target = args.mountpoint ?? args['mount-point'];
  if (!target) throw new SlicefsError('USAGE', 'give a mount point: slicefs mount --daemon --manifest FILE DIR');
  // The detached mount cannot ask for a GHGA download token either.
  if (args.ghga && !args['download-token-file']) throw new SlicefsError('USAGE', 'mount --ghga --daemon needs --download-token-file FILE (a detached mount cannot ask for the token)');
  const key = mountKey(target);
  const logFile = resolve(args['log-file'] ?? join(stateDir(), 'logs', `${key}.log`));
  const pidFile = resolve(args['pid-file'] ?? join(registryDir(), `${key}.pid`));
  // Their directories made (0700) if missing; the log opened never through a symlink (util/safe-fs.ts).
  const logRoot = await WriteRoot.prepare(dirname(logFile), PRIVATE_MODES).catch((err: unknown) => {
    throw userPathError(err, '--log-file', logFile);
  });
  await WriteRoot.prepare(dirname(pidFile), PRIVATE_MODES).catch((err: unknown) => {
    throw userPathError(err, '--pid-file', pidFile);
  });
  // The secrets go over the channel (./daemon-protocol.ts), never into the child's environment
  // (/proc/PID/environ, inherited by every helper) or argv (`ps`, for every local user).
  const env: NodeJS.ProcessEnv = { ...process.env, [DAEMON_CHILD_ENV]: '1' };
  const secrets: DaemonSecrets = { kind: 'secrets', token: Array.isArray(args.token) ? args.token.at(-1) : args.token, env: {} };
  for (const name of SECRET_ENV) {
    const value = process.env[name];
    delete env[name];
    if (value !== undefined && value !== '') secrets.env[name] = value;
  }
  // The detached mount has no terminal to ask a key's passphrase on: ask now.
  const keyFiles = keyFilesOf(args);
  if (keyFiles.length > 0 && !process.env.C4GH_PASSPHRASE) {
    const { keyNeedsPassphrase, loadKeyPair, promptHidden } = await import('./keys.js');
    const isProtected = await Promise.all(keyFiles.map((f) => keyNeedsPassphrase(f)));
    if (isProtected.filter(Boolean).length > 1) throw new SlicefsError('USAGE', 'several protected keys: give their passphrase in C4GH_PASSPHRASE for --daemon');
    const keyFile = keyFiles[isProtected.indexOf(true)];
    if (keyFile !== undefined) {
      const pass = await promptHidden(`Passphrase for ${keyFile}: `);
      if (pass === undefined) throw new SlicefsError('USAGE', `${keyFile} is protected by a passphrase: set C4GH_PASSPHRASE (there is no terminal to ask on)`);
      secrets.env.C4GH_PASSPHRASE = pass;
      // Checked here, so a wrong passphrase is said now, not in the daemon's log.
      const saved = process.env.C4GH_PASSPHRASE;
      process.env.C4GH_PASSPHRASE = pass;
      try {
        await loadKeyPair(keyFile);
      } finally {
        if (saved === undefined) delete process.env.C4GH_PASSPHRASE;
        else process.env.C4GH_PASSPHRASE = saved;
      }
    }
  }
  // The child's own stdout/stderr (a crash's stack trace) land in the log too.
  const log = await logRoot.open(logFile, 'append').catch((err: unknown) => {
    throw userPathError(err, '--log-file', logFile);
  });
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...childArgv(logFile, pidFile, args.token)], {
    detached: true,
    stdio: ['ignore', log.fd, log.fd, 'ipc'],
    env,
  });
  await log.close();
  // A child that could not start reports through 'error' and 'exit' below.
  child.send(secrets, () => {});
  const onSignal = () => {
    child.kill('SIGTERM');
    say('interrupted: the mount was stopped before it was ready');
    process.exit(EXIT_FAILURE);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const outcome = await new Promise<DaemonMessage | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('message', (m) => res(m as DaemonMessage));
    child.once('exit', (code, signal) => res({ kind: 'exited', code, signal }));
    child.once('error', (err) => res({ kind: 'failed', message: `cannot start the daemon: ${err.message}`, exitCode: EXIT_FAILURE }));
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (outcome.kind === 'ready') {
    if (child.connected) child.disconnect();
    child.unref();
    say(`mounted ${counted(outcome.files, 'file')} at ${outcome.mountPoint} (read-only), daemon pid ${outcome.pid}`);
    say(`log: ${logFile}`);
    say(`pid file: ${pidFile}`);
    say(`unmount with: slicefs unmount ${outcome.mountPoint}`);
    return;
  }
  if (outcome.kind === 'failed') {
    // The child already wrote the same line to its log; it exits on its own.
    say(`error: ${outcome.message}`);
    process.exitCode = outcome.exitCode || EXIT_FAILURE;
    return;
  }
  const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
  throw new SlicefsError('MOUNT', `the mount ${how} before it was ready; see ${logFile}`);
}
