/**
 * What a detached mount (`slicefs mount --daemon`) and the command that started it say to each
 * other over the IPC channel Node opens between them:
 *
 *   - parent → child, first: `secrets`, the credentials the child needs and must not hold in its
 *     argv (`ps` shows it to every local user for the daemon's life) or its environment
 *     (`/proc/PID/environ`, inherited by every helper it starts): `--token`'s value, and the
 *     environment's ACCESSTOKEN, SLICEFS_TOKEN and C4GH_PASSPHRASE (or the passphrase the parent
 *     asked for). The parent leaves them out of the child's command line and environment; the
 *     child keeps them in memory (`cliEnv`), never in `process.env`.
 *   - child → parent: `ready` once the mount answers (the parent then prints where the log and
 *     pid file are and exits 0), or `failed` with the one-line reason (the parent prints it and
 *     exits with the child's code). The child then closes the channel, so nothing ties it to the
 *     parent's terminal or lifetime.
 */

/** Set in the child's environment: "you are the detached mount; report to your parent". */
export const DAEMON_CHILD_ENV = 'SLICEFS_DAEMON_CHILD';

/** The environment variables that hold secrets: handed over, never in the daemon's environment. */
export const SECRET_ENV = ['ACCESSTOKEN', 'SLICEFS_TOKEN', 'C4GH_PASSPHRASE'] as const;
export type SecretEnvName = (typeof SECRET_ENV)[number];

export interface DaemonSecrets {
  kind: 'secrets';
  /** `--token`'s value, taken out of the child's command line. */
  token?: string;
  env: Partial<Record<SecretEnvName, string>>;
}

export type DaemonMessage =
  | { kind: 'ready'; mountPoint: string; files: number; pid: number }
  | { kind: 'failed'; message: string; exitCode: number };

/** The secret variables handed over by the parent (a detached mount), kept out of `process.env`. */
const handedOver: Partial<Record<SecretEnvName, string>> = {};

/**
 * The environment as the CLI reads it: `process.env`, with the secret variables a detached mount
 * was handed over the channel. The only way the CLI reads SECRET_ENV.
 */
export function cliEnv(): NodeJS.ProcessEnv {
  return Object.keys(handedOver).length === 0 ? process.env : { ...process.env, ...handedOver };
}

/**
 * In the detached mount: waits for the parent's `secrets` (the first message), keeps their
 * variables for `cliEnv` and returns them. A mount with no parent channel gets none; a parent that
 * goes away first is an error.
 */
export function receiveSecrets(): Promise<DaemonSecrets> {
  if (process.env[DAEMON_CHILD_ENV] !== '1' || !process.send || !process.connected) return Promise.resolve({ kind: 'secrets', env: {} });
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      const msg = m as Partial<DaemonSecrets> | null;
      if (msg?.kind !== 'secrets') return;
      process.off('disconnect', onGone);
      process.off('message', onMessage);
      for (const name of SECRET_ENV) if (typeof msg.env?.[name] === 'string') handedOver[name] = msg.env[name];
      resolve({ kind: 'secrets', token: msg.token, env: msg.env ?? {} });
    };
    const onGone = () => {
      process.off('message', onMessage);
      reject(new Error('the command that started this mount went away before handing over its settings'));
    };
    process.on('message', onMessage);
    process.once('disconnect', onGone);
  });
}

/** Sends `msg` to the parent and closes the channel (a no-op for a mount in the foreground). */
export function notifyParent(msg: DaemonMessage): void {
  if (process.env[DAEMON_CHILD_ENV] !== '1' || !process.send || !process.connected) return;
  process.send(msg, () => {
    if (process.connected) process.disconnect();
  });
}
