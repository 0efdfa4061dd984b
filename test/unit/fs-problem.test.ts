/**
 * util/fs-problem.ts on real paths: the component at fault is named (a file in the way, a symbolic
 * link to nothing, a pseudo file system), `makeDirs` makes and reports what it made (and returns
 * under /proc, where Node's recursive mkdir never does), and `parseMounts` decodes /proc/mounts.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { describeFsError, fsProblem, makeDirs, parseMounts, removeMadeDirs } from '../../src/util/fs-problem.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slicefs-fs-problem-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => assert.fail('expected a failure'),
    (e: NodeJS.ErrnoException) => e,
  );

test('a file or a dangling symbolic link in the way is named', async () => {
  await writeFile(join(dir, 'f'), 'x');
  await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
  const underFile = await failure(makeDirs(join(dir, 'f', 'a', 'b')));
  assert.equal(fsProblem(underFile), `${join(dir, 'f')} is a file, not a directory`);
  assert.equal(fsProblem(await failure(makeDirs(join(dir, 'f')))), `${join(dir, 'f')} is a file, not a directory`);
  const underLink = await failure(makeDirs(join(dir, 'dangling', 'a')));
  assert.equal(fsProblem(underLink), `${join(dir, 'dangling')} is a symbolic link to a missing target`);
  assert.match(describeFsError(underLink), /^cannot create directory \S+dangling\/a: /);
});

test('makeDirs returns the first directory it made; removeMadeDirs removes them, empty ones only', async () => {
  const deep = join(dir, 'new', 'a', 'b');
  assert.equal(await makeDirs(deep), join(dir, 'new'));
  assert.equal(await makeDirs(deep), undefined, 'already there');
  await removeMadeDirs(deep, join(dir, 'new'));
  await assert.rejects(stat(join(dir, 'new')), { code: 'ENOENT' });
  await mkdir(join(dir, 'kept', 'x'), { recursive: true });
  await writeFile(join(dir, 'kept', 'x', 'file'), 'x');
  await assert.rejects(removeMadeDirs(join(dir, 'kept', 'x'), join(dir, 'kept')), { code: 'ENOTEMPTY' });
});

test('under /proc makeDirs fails at once, naming the proc file system', async () => {
  const err = await failure(makeDirs('/proc/slicefs-test/a/b'));
  assert.equal(fsProblem(err), '/proc is a proc file system, where nothing can be created');
});

test('parseMounts decodes the octal escapes of /proc/mounts', () => {
  const [m] = parseMounts('tmpfs /mnt/with\\040space tmpfs ro,relatime,size=64k 0 0\n');
  assert.deepEqual(m, { source: 'tmpfs', point: '/mnt/with space', type: 'tmpfs', options: ['ro', 'relatime', 'size=64k'] });
});
