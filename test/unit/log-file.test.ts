/**
 * The mount's log file: one line per event with its level, query strings and Bearer tokens cut,
 * and a size bound kept by renaming the full file to FILE.1; never written through a symlink.
 */
import assert from 'node:assert/strict';
import { lstat, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { LogFile } from '../../src/cli/log-file.js';
import { UnsafePathError } from '../../src/util/safe-fs.js';
import { cleanup, tempDir } from '../helpers/daemon.js';

test('lines carry a time and a level; secrets are cut; the size stays bounded', async () => {
  const dir = await tempDir('slicefs-log-');
  try {
    const path = join(dir, 'x.log');
    const log = new LogFile(path, 1000);
    log.write(LogFile.levelOf('error: it broke'), 'error: it broke');
    log.write(LogFile.levelOf('warning: careful'), 'warning: careful');
    log.write('DEBUG', 'GET https://h/b/o.bam?X-Amz-Signature=abc123&X-Amz-Date=1 206 with Bearer tok-987\nsecond line');
    let text = await readFile(path, 'utf8');
    const lines = text.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z ERROR error: it broke$/);
    assert.match(lines[1], / WARN {2}warning: careful$/);
    assert.match(lines[2], / DEBUG GET https:\/\/h\/b\/o\.bam\?… 206 with Bearer \*\*\*\* second line$/);
    assert.doesNotMatch(text, /abc123|tok-987/);
    // A URL's user:password too (a manifest URL named in a message that skipped safeUrl).
    log.write('INFO', 'opening http://alice:pw-4f1e9c@h.example.org/x.bam and https://bob@h/y');
    assert.match(await readFile(path, 'utf8'), / INFO {2}opening http:\/\/h\.example\.org\/x\.bam and https:\/\/h\/y$/m);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    for (let i = 0; i < 100; i++) log.write('INFO', `line ${i} ${'x'.repeat(40)}`);
    log.close();
    const [cur, old] = [await stat(path), await stat(`${path}.1`)];
    assert.ok(cur.size <= 1000 && old.size <= 1000, `${cur.size} + ${old.size}`);
    text = await readFile(path, 'utf8');
    assert.match(text, /line 99 /);
  } finally {
    await cleanup(dir);
  }
});

test('the log is never written through a symlink: not at its name, not at FILE.1 when it rotates', async () => {
  const dir = await tempDir('slicefs-log-link-');
  try {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'not a log\n');
    const link = join(dir, 'linked.log');
    await symlink(victim, link);
    assert.throws(() => new LogFile(link), (e: Error) => e instanceof UnsafePathError && /linked\.log is a symbolic link; refusing to write through it$/.test(e.message));
    // FILE.1 a symlink: the log is not rotated (it keeps growing), the link's target is not replaced.
    const path = join(dir, 'x.log');
    await symlink(victim, `${path}.1`);
    const log = new LogFile(path, 200);
    for (let i = 0; i < 20; i++) log.write('INFO', `line ${i} ${'x'.repeat(40)}`);
    log.close();
    assert.equal(await readFile(victim, 'utf8'), 'not a log\n');
    assert.ok((await lstat(`${path}.1`)).isSymbolicLink());
    assert.match(await readFile(path, 'utf8'), /line 0 [\s\S]*line 19 /);
  } finally {
    await cleanup(dir);
  }
});
