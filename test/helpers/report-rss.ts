/**
 * Preloaded into a child (`node --import …/report-rss.js`): on exit it writes the process's peak
 * resident memory (process.resourceUsage().maxRSS, in KiB) to the file named by
 * $SLICEFS_TEST_RSS_FILE, so a test can bound the memory of a CLI run.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.SLICEFS_TEST_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
