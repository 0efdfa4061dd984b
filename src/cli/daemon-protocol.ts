/**
 * What a detached mount (`slicefs mount --daemon`) tells the command that started it, over the
 * IPC channel Node opens between them: `ready` once the mount answers (the parent then prints where
 * the log and pid file are and exits 0), or `failed` with the one-line reason (the parent prints it
 * and exits with the child's code). The child then closes the channel, so nothing ties it to the
 * parent's terminal or lifetime.
 */

/** Set in the child's environment: "you are the detached mount; report to your parent". */
export const DAEMON_CHILD_ENV = 'SLICEFS_DAEMON_CHILD';

export type DaemonMessage =
  | { kind: 'ready'; mountPoint: string; files: number; pid: number }
  | { kind: 'failed'; message: string; exitCode: number };

/** Sends `msg` to the parent and closes the channel (a no-op for a mount in the foreground). */
export function notifyParent(msg: DaemonMessage): void {
  if (process.env[DAEMON_CHILD_ENV] !== '1' || !process.send || !process.connected) return;
  process.send(msg, () => {
    if (process.connected) process.disconnect();
  });
}
