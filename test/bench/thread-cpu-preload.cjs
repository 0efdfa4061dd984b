// Preload (`node -r ./test/bench/thread-cpu-preload.cjs …`): at exit, appends the process's CPU seconds per
// kind of thread to $THREAD_CPU_OUT as "main pool helpers". Threads alive when this runs (before
// any of the program's code) are the main thread and V8's and Node's platform helpers (GC,
// compilation); threads started later are libuv's pool (zlib, fs) and any worker threads, counted
// only while alive (a worker that exits before the process is missing: use GNU time for totals).
// CommonJS and `-r`, not `--import`: an ES module preload runs after libuv's pool has started
// (loading it reads files on the pool), so the pool's threads would count as helpers.
/* global require, process */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require('node:fs');

const out = process.env.THREAD_CPU_OUT;
const early = new Set(fs.readdirSync('/proc/self/task'));
/** utime + stime of a thread, in seconds (USER_HZ is 100 on Linux). */
function cpu(tid) {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0; // ended meanwhile
  }
}
process.on('exit', () => {
  let main = 0;
  let pool = 0;
  let helpers = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const c = cpu(tid);
    if (tid === String(process.pid)) main += c;
    else if (early.has(tid)) helpers += c;
    else pool += c;
  }
  if (out) fs.appendFileSync(out, `${main.toFixed(2)} ${pool.toFixed(2)} ${helpers.toFixed(2)}\n`);
});
