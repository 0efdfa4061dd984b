/**
 * SAM text from raw BAM records, against samtools: every record of the seeded sample BAM, and a
 * BAM made from SAM lines with every tag type (A, c/C/s/S/i/I, f, Z, H, B of each subtype) and the
 * placeholder cases, must print byte for byte as `samtools view` prints them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { formatG, formatSamRecord } from '../../src/view/sam-format.js';
import { SeededRandom } from '../helpers/random.js';
import { ensureSampleData, samtools } from '../helpers/sample-data.js';

/** All records of a BAM file (BGZF is a series of gzip members: gunzip reads them all). */
function bamRecords(file: Buffer): { refNames: string[]; records: Uint8Array[] } {
  const raw = gunzipSync(file);
  let p = 4;
  const lText = raw.readInt32LE(p);
  p += 4 + lText;
  const nRef = raw.readInt32LE(p);
  p += 4;
  const refNames: string[] = [];
  for (let i = 0; i < nRef; i++) {
    const lName = raw.readInt32LE(p);
    refNames.push(raw.toString('latin1', p + 4, p + 4 + lName - 1));
    p += 4 + lName + 4;
  }
  const records: Uint8Array[] = [];
  while (p < raw.length) {
    const size = raw.readInt32LE(p);
    records.push(raw.subarray(p + 4, p + 4 + size));
    p += 4 + size;
  }
  return { refNames, records };
}

async function compare(bamPath: string): Promise<number> {
  const { refNames, records } = bamRecords(await readFile(bamPath));
  const want = (await samtools(['view', bamPath])).stdout.toString().split('\n');
  want.pop();
  assert.equal(records.length, want.length);
  records.forEach((r, i) => assert.equal(formatSamRecord(r, refNames), want[i], `record ${i + 1}`));
  return records.length;
}

test('%g formatting matches C', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [1, '1'],
    [-2.5, '-2.5'],
    [0.1, '0.1'],
    [123456, '123456'],
    [1234567, '1.23457e+06'],
    [0.0001, '0.0001'],
    [0.00001234, '1.234e-05'],
    [3.14159265, '3.14159'],
    [1e21, '1e+21'],
    [100, '100'],
  ];
  for (const [x, s] of cases) assert.equal(formatG(x), s, String(x));
});

test('every record of the sample BAM prints as samtools prints it', async () => {
  const sample = await ensureSampleData();
  assert.ok((await compare(sample.bam)) > 1000);
});

test('every tag type and placeholder prints as samtools prints it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slicefs-sam-'));
  const rnd = new SeededRandom(3);
  const floats = [0, 1, -1, 0.5, 3.14159, 1e-5, 123456.7, 1e7, -0.000123, 42.25, 2.5e-3, 999999, 0.1];
  const lines = ['@HD\tVN:1.6\tSO:coordinate', '@SQ\tSN:c1\tLN:1000', '@SQ\tSN:c:2\tLN:500'];
  for (let i = 0; i < 200; i++) {
    const f = rnd.pick(floats) * (rnd.chance(0.5) ? 1 : rnd.next() * 3);
    const arr = Array.from({ length: rnd.int(0, 4) }, () => rnd.int(-100, 100));
    const tags = [
      `XA:A:${rnd.pick(['a', 'Z', '!'])}`,
      `XI:i:${rnd.pick([0, -1, 127, -128, 255, 32767, -32768, 65535, 2147483647, -2147483648, 4294967295])}`,
      `XF:f:${f}`,
      `XZ:Z:${rnd.pick(['', 'text with spaces', 'a:b;c'])}`,
      `XH:H:${rnd.pick(['1AE3', 'FF00'])}`,
      `Bc:B:c${arr.map((v) => `,${v}`).join('')}`,
      `BC:B:C${arr.map((v) => `,${Math.abs(v)}`).join('')}`,
      `Bs:B:s,${rnd.int(-30000, 30000)}`,
      `BS:B:S,${rnd.int(0, 60000)}`,
      `Bi:B:i,${rnd.int(-2e9, 2e9)},${rnd.int(-5, 5)}`,
      `BI:B:I,${rnd.int(0, 4e9)}`,
      `Bf:B:f,${rnd.pick(floats)},${f}`,
    ];
    const pos = 1 + i * 4;
    const mapped = i % 7 !== 0;
    lines.push(
      [
        `r${i}`,
        mapped ? (i % 2 ? 99 : 147) : 4,
        mapped ? 'c1' : '*',
        mapped ? pos : 0,
        mapped ? rnd.int(0, 60) : 0,
        mapped ? '5S10M2I3M1D5M' : '*',
        mapped ? rnd.pick(['=', 'c:2', '*']) : '*',
        mapped ? pos + 10 : 0,
        mapped ? rnd.int(-300, 300) : 0,
        i % 11 === 0 ? '*' : 'ACGTNACGTNACGTNACGTNACGTN',
        i % 11 === 0 || i % 5 === 0 ? '*' : 'IIIIIIIIIIIIIIIIIIIIIIIII',
        ...tags,
      ].join('\t'),
    );
  }
  await writeFile(join(dir, 'in.sam'), lines.join('\n') + '\n');
  const r = await samtools(['view', '-b', '-o', join(dir, 'x.bam'), join(dir, 'in.sam')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await compare(join(dir, 'x.bam')), 200);
});

test('qualities of every byte value print as htslib prints them, (q + 33) mod 256, at every alignment of the line', () => {
  // htslib adds 33 in a char, so 223..254 wrap; samtools's SAM parser cannot make such a BAM, so
  // the records are built here. Read names of 1..4 characters put the qualities at each offset mod
  // 4 of the output (formatSamInto adds 33 four bytes at a time where aligned).
  for (const lSeq of [15, 16, 17, 40, 255, 256]) {
    for (let nameLen = 1; nameLen <= 4; nameLen++) {
      const quals = Array.from({ length: lSeq }, (_, i) => (i * 37 + nameLen) % 255);
      const rec = Buffer.alloc(32 + nameLen + 1 + ((lSeq + 1) >> 1) + lSeq);
      rec.writeInt32LE(-1, 0); // refID
      rec.writeInt32LE(-1, 4); // pos
      rec[8] = nameLen + 1;
      rec.writeUInt16LE(4, 14); // flag: unmapped
      rec.writeInt32LE(lSeq, 16);
      rec.writeInt32LE(-1, 20); // next refID
      rec.writeInt32LE(-1, 24); // next pos
      rec.write('r'.repeat(nameLen), 32, 'latin1');
      rec.fill(0x12, 32 + nameLen + 1, 32 + nameLen + 1 + ((lSeq + 1) >> 1)); // =A=A...
      Buffer.from(quals).copy(rec, 32 + nameLen + 1 + ((lSeq + 1) >> 1));
      const fields = formatSamRecord(rec, []).split('\t'); // a quality can print as a tab: the rest of the line
      const want = Buffer.from(quals.map((q) => (q + 33) & 0xff)).toString('latin1');
      assert.equal(fields.slice(10).join('\t'), want, `${lSeq} qualities after a ${nameLen}-character name`);
    }
  }
});
