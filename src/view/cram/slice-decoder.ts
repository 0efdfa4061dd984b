/**
 * One CRAM slice decoded into BAM records (binary, without the length prefix), exactly as htslib's
 * `cram_decode_slice` + `cram_to_bam` build them, so that `slicefs view` of a CRAM prints what
 * `samtools view` prints.
 *
 * @gmod/cram does the container, block and codec work (rANS, arithmetic, tokenised names, ...):
 * its codecs are called here one data series at a time, in the order the CRAM specification
 * fixes. What it does not do, and what this file does by hand, is turn a record's read features
 * into what htslib outputs: its records have no CIGAR, no MD/NM (htslib regenerates both from
 * the reference for CRAM 3, since encoders drop them when they match), tag values without their
 * BAM type, and its own template-length estimate. The algorithm follows htslib
 * (cram/cram_decode.c):
 *
 *   1. Decode every record's data series into a `RawRecord` (no reference needed yet), noting the
 *      reference span each mapped record covers. htslib's internal `cF` tag is dropped here; it
 *      says which of MD/NM not to generate (a consensus reference, embed_ref=2, is no truth).
 *   2. Fetch the reference the slice needs (the slice's span for a single-reference slice, checked
 *      against the slice's MD5; the records' window of each contig for a multi-reference slice).
 *   3. Walk each record's features: sequence from the reference between features, CIGAR ops
 *      merged as htslib merges them, MD and NM counted the htslib way (an N in the reference is a
 *      mismatch). Preserved qualities (the QS run) win over a B/Q/q feature's quality.
 *   4. Resolve mates linked inside the slice (`cram_decode_slice_xref`): RNEXT/PNEXT, mate flags,
 *      and TLEN computed over the whole chain of linked segments.
 *   5. Encode BAM: stored tags in their order, then MD, NM, then RG (htslib's order for CRAM 3).
 */
import { createHash } from 'node:crypto';
import { SlicefsError } from '../../errors.js';

// --- the parts of @gmod/cram's objects used here (its deep types are not exported) ---------------

/** A codec: decodes one value of a data series, advancing the cursors. */
export interface Codec {
  decode(slice: unknown, core: unknown, blocks: unknown, cursors: Cursors): number | Uint8Array | undefined;
  getBytesSubarray(blocks: unknown, cursors: Cursors, length: number): Uint8Array | undefined;
}

export interface CompressionScheme {
  substitutionMatrix: string[][];
  getCodecForDataSeries(name: string): Codec | undefined;
  getCodecForTag(id: string): Codec;
  getTagNames(tl: number): string[] | undefined;
}

interface Cursor {
  bitPosition: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;
  bytePosition: number;
}

export interface Cursors {
  lastAlignmentStart: number;
  coreBlock: Cursor;
  externalBlocks: { map: Map<number, Cursor>; getCursor(contentId: number): Cursor };
}

export interface SliceHeaderContent {
  refSeqId?: number;
  refSeqStart?: number;
  refSeqSpan?: number;
  numRecords: number;
  recordCounter: number;
  refBaseBlockId?: number;
  md5?: number[];
}

/**
 * The container's preservation map, with the specification's defaults (all true) for absent keys:
 * @gmod/cram reads an absent RR as false, htslib (and the specification) as true.
 */
export interface Preservation {
  readNamesIncluded: boolean;
  apDelta: boolean;
  /** False for a CRAM written without a reference (`no_ref`): its bases are all stored. */
  referenceRequired: boolean;
}

export interface SliceParts {
  majorVersion: number;
  scheme: CompressionScheme;
  preservation: Preservation;
  header: SliceHeaderContent;
  /** The @gmod/cram slice object, passed through to codecs. */
  slice: unknown;
  core: unknown;
  blocksByContentId: Record<number, { content: Uint8Array } | undefined>;
}

export interface ContigInfo {
  name: string;
  length: number;
}

/**
 * Reference bases [start, end) (0-based) of contig `tid`, uppercase. Rejects when the reference
 * cannot be read or has no such contig.
 */
export type ReferenceFetch = (tid: number, start: number, end: number) => Promise<Buffer>;

export interface DecodeContext {
  contigs: readonly ContigInfo[];
  /** @RG IDs in header order: a record's RG number indexes this. */
  readGroups: readonly string[];
  /** Undefined when no reference was given: mapped records that need one are an error then. */
  reference?: ReferenceFetch;
  /**
   * The length contig `tid` is decoded with when its bases come from `reference`: htslib puts the
   * reference's own length in place of @SQ LN. `proven`: the slice's MD5 matched the reference's
   * bases. Rejects when the lengths differ and nothing proves the reference is the file's.
   * Undefined: @SQ LN.
   */
  referenceLength?: (tid: number, proven: boolean) => Promise<number>;
  /**
   * Contig `tid`'s length as htslib holds it once the reference is opened: the reference's own
   * length when one is given and has the contig (sanitise_SQ_lines puts it in place of LN), else
   * @SQ LN. Undefined: @SQ LN.
   */
  openedLength?: (tid: number) => number;
  /** Where a missing-reference error tells the user to look. */
  referenceHint: string;
  /**
   * The file's name (`x.cram`): a record stored without a name (a lossy_names CRAM) is named
   * `NAME:N`, as htslib names it after the file it opened (see `recordName`).
   */
  fileName: string;
}

// --- constants ----------------------------------------------------------------------------------

const CF_PRESERVE_QUAL = 1;
const CF_DETACHED = 2;
const CF_MATE_DOWNSTREAM = 4;
const CF_NO_SEQ = 8;
/** CRAM 4 only; read for completeness, htslib honours it in any version. */
const CF_EXPLICIT_TLEN = 16;
const MF_REVERSE = 1;
const MF_UNMAP = 2;

const F_PAIRED = 1;
const F_UNMAP = 4;
/** htslib's internal `cF:C` tag (cram_encode.c's cf_tag): bit 1 no MD, bit 2 no NM; never printed. */
const CF_TAG = 'cFC';
const F_MUNMAP = 8;
const F_REVERSE = 16;
const F_MREVERSE = 32;
const F_READ1 = 64;

const OP_M = 0;
const OP_I = 1;
const OP_D = 2;
const OP_N = 3;
const OP_S = 4;
const OP_H = 5;
const OP_P = 6;

/** htslib's L1 table: the substitution matrix row of a reference base. */
function baseRow(b: number): number {
  switch (b) {
    case 65: // A
    case 97:
      return 0;
    case 67: // C
    case 99:
      return 1;
    case 71: // G
    case 103:
      return 2;
    case 84: // T
    case 116:
      return 3;
    default:
      return 4;
  }
}

/** htslib's seq_nt16_table: ASCII base → 4-bit BAM code (IUPAC codes keep their meaning). */
const NT16 = (() => {
  const t = new Uint8Array(256).fill(15);
  const codes = '=ACMGRSVTWYHKDBN';
  for (let i = 0; i < 16; i++) {
    t[codes.charCodeAt(i)] = i;
    t[codes.toLowerCase().charCodeAt(i)] = i;
  }
  return t;
})();

const N = 78;

/** The longest read name BAM holds: its length byte counts the NUL too. */
const MAX_NAME_BYTES = 254;

/** Two ASCII bases → one BAM byte, for every pair of byte values (64 KiB, built once). */
const NT16_PAIR = (() => {
  const t = new Uint8Array(65536);
  for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) t[(a << 8) | b] = (NT16[a] << 4) | NT16[b];
  return t;
})();

/** Packs `len` ASCII bases into 4-bit BAM codes at `out[o]`; returns the offset after them. */
function packSeq(seq: Uint8Array, len: number, out: Uint8Array, o: number): number {
  const even = len & ~1;
  for (let b = 0; b < even; b += 2) out[o++] = NT16_PAIR[(seq[b] << 8) | seq[b + 1]];
  if (len & 1) out[o++] = NT16[seq[len - 1]] << 4;
  return o;
}

// --- phase 1: data series ------------------------------------------------------------------------

/**
 * The read features of a slice's kept records, in flat arrays (one entry per feature, a record's
 * run is [featFrom, featTo)): an object per feature and an array per record were a large part of
 * what the garbage collector had to trace.
 */
class Features {
  /** Feature code (a char code). */
  readonly op: number[] = [];
  /** 1-based read position. */
  readonly pos: number[] = [];
  /** Number for D/N/H/P/Q/X/i/B (the base for B, the BS code for X), bytes for S/I/b/q. */
  readonly value: (number | Uint8Array)[] = [];
  /** Quality of a B feature (0 for the others). */
  readonly qual: number[] = [];
}

interface RawRecord {
  flags: number;
  cf: number;
  refId: number;
  len: number;
  apos: number;
  rg: number;
  name?: Uint8Array;
  mateLine: number;
  mateFlags: number;
  mateRefId: number;
  matePos: number;
  /** null: to be computed (htslib's INT64_MIN). */
  tlen: number | null;
  explicitTlen: number | null;
  /** Stored tags: their 3-character ids (name and BAM type) and BAM-encoded values. */
  tagIds: string[];
  tagValues: Uint8Array[];
  hasMD: boolean;
  hasNM: boolean;
  /** The record's read features: [featFrom, featTo) of the slice's Features. */
  featFrom: number;
  featTo: number;
  mq: number;
  /** Preserved qualities, or the bases of an unmapped read. */
  qual?: Uint8Array;
  bases?: Uint8Array;
  /** Reference bases a mapped record covers (M/X/=/D/N and B/b features), from its features. */
  refSpan: number;
  // phase 3
  cigar: number[];
  seq?: Buffer;
  quals?: Uint8Array;
  md?: string;
  nm: number;
  /**
   * htslib's aend: the 1-based last reference base covered, at least `apos`; but with a reference
   * in use, bases after the last feature that run past @SQ LN do not count (cram_decode_seq does
   * not advance its position over them). Regions and TLEN use it, as in htslib.
   */
  aend: number;
}

function malformed(msg: string): SlicefsError {
  return new SlicefsError('BAD_RESPONSE', `malformed CRAM: ${msg}`);
}

/**
 * Phase 1. `mayWant(refId, start)` says whether a record starting there could be wanted; the read
 * features of one that cannot are decoded (to advance the data series) but not kept.
 */
function decodeRecords(p: SliceParts, ctx: DecodeContext, mayWant: (refId: number, start: number) => boolean, feats: Features): RawRecord[] {
  const { scheme, header, majorVersion } = p;
  const mapped = typeof header.refSeqId === 'number';
  const sliceRef = mapped ? header.refSeqId! : -1;
  const cursors: Cursors = {
    lastAlignmentStart: mapped ? header.refSeqStart! : 0,
    coreBlock: { bitPosition: 7, bytePosition: 0 },
    externalBlocks: {
      map: new Map(),
      getCursor(id: number) {
        let c = this.map.get(id);
        if (!c) {
          c = { bitPosition: 7, bytePosition: 0 };
          this.map.set(id, c);
        }
        return c;
      },
    },
  };
  const codecs = new Map<string, Codec>();
  const codec = (ds: string): Codec => {
    let c = codecs.get(ds);
    if (!c) {
      c = scheme.getCodecForDataSeries(ds);
      if (!c) throw malformed(`no encoding for the ${ds} data series`);
      codecs.set(ds, c);
    }
    return c;
  };
  const { slice, core, blocksByContentId } = p;
  const int = (ds: string): number => {
    const v = codec(ds).decode(slice, core, blocksByContentId, cursors);
    if (typeof v !== 'number') throw malformed(`${ds} is not a number`);
    return v;
  };
  /**
   * A reader of one integer data series, its codec looked up once (on first use: a series the
   * slice never reads may have no encoding): a Map lookup per value was a tenth of the decoding.
   */
  const intSeries = (ds: string): (() => number) => {
    let c: Codec | undefined;
    return () => {
      c ??= codec(ds);
      const v = c.decode(slice, core, blocksByContentId, cursors);
      if (typeof v !== 'number') throw malformed(`${ds} is not a number`);
      return v;
    };
  };
  const BF = intSeries('BF');
  const CF = intSeries('CF');
  const RI = intSeries('RI');
  const RL = intSeries('RL');
  const AP = intSeries('AP');
  const RG = intSeries('RG');
  const TL = intSeries('TL');
  const FN = intSeries('FN');
  const FC = intSeries('FC');
  const FP = intSeries('FP');
  const MQ = intSeries('MQ');
  const BS = intSeries('BS');
  const BA = intSeries('BA');
  const QS = intSeries('QS');
  const DL = intSeries('DL');
  const bytes = (ds: string): Uint8Array => {
    const v = codec(ds).decode(slice, core, blocksByContentId, cursors);
    if (!(v instanceof Uint8Array)) throw malformed(`${ds} is not a byte array`);
    return v;
  };
  const run = (ds: string, n: number): Uint8Array => {
    const c = codec(ds);
    const fast = c.getBytesSubarray(blocksByContentId, cursors, n);
    // A view into the slice's block: its content is not modified, and outlives the records.
    if (fast) return fast;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = int(ds);
    return out;
  };
  // htslib: a last @RG named UNKNOWN is the Java encoder's "no read group".
  const unknownRg = ctx.readGroups.at(-1) === 'UNKNOWN' ? ctx.readGroups.length - 1 : -2;

  // htslib's s->ref: the slice's reference (embedded, or external unless the container is no_ref).
  const usesReference = p.preservation.referenceRequired || (mapped && (header.refBaseBlockId ?? -1) >= 0);
  // A slice's own (embedded) bases: the reference given is not used, nor its length (see sliceReference).
  const embeddedReference = (header.refBaseBlockId ?? -1) >= 0;
  const out: RawRecord[] = new Array(header.numRecords);
  let lastApos = cursors.lastAlignmentStart;
  for (let rec = 0; rec < header.numRecords; rec++) {
    const flags = BF();
    const cf = CF();
    const refId = majorVersion > 1 && sliceRef === -2 ? RI() : sliceRef;
    if (refId < -1 || refId >= ctx.contigs.length) throw malformed(`record ${rec + 1} names reference #${refId}, which the header does not have`);
    const len = RL();
    let apos = AP();
    if (p.preservation.apDelta) apos += lastApos;
    lastApos = apos;
    let rg = RG();
    if (rg === unknownRg) rg = -1;
    const r: RawRecord = {
      flags,
      cf,
      refId,
      len,
      apos,
      rg,
      mateLine: -1,
      mateFlags: 0,
      mateRefId: -1,
      matePos: 0,
      tlen: null,
      explicitTlen: null,
      tagIds: [],
      tagValues: [],
      hasMD: false,
      hasNM: false,
      featFrom: 0,
      featTo: 0,
      mq: 0,
      refSpan: 0,
      cigar: [],
      nm: 0,
      aend: apos,
    };
    if (p.preservation.readNamesIncluded) r.name = bytes('RN');
    if (cf & CF_DETACHED) {
      r.mateFlags = int('MF');
      if (!p.preservation.readNamesIncluded) r.name = bytes('RN');
      r.mateRefId = int('NS');
      r.matePos = int('NP');
      r.tlen = int('TS');
    } else if (cf & CF_MATE_DOWNSTREAM) {
      r.mateLine = int('NF') + rec + 1;
      if (cf & CF_EXPLICIT_TLEN) r.explicitTlen = int('TS');
    } else if (cf & CF_EXPLICIT_TLEN) {
      r.explicitTlen = int('TS');
    }

    const tl = TL();
    const ids = scheme.getTagNames(tl);
    if (!ids) throw malformed(`tag list ${tl} is not in the tag dictionary`);
    r.tagIds = ids;
    for (const id of ids) {
      if (id[2] === '*') throw new SlicefsError('USAGE', 'CRAM 4 tag placeholders are not supported');
      const value = scheme.getCodecForTag(id).decode(slice, core, blocksByContentId, cursors);
      if (!(value instanceof Uint8Array)) throw malformed(`tag ${id} did not decode to bytes`);
      if (id === CF_TAG && value.length === 1) {
        // htslib's encoder-to-decoder flags (written with embed_ref=2, whose consensus reference
        // has Ns where no read covers it): htslib drops the tag and, for bit 1 / bit 2, generates
        // no MD / NM, as if the record stored them.
        r.tagIds = ids.filter((t) => t !== CF_TAG);
        if (value[0] & 1) r.hasMD = true;
        if (value[0] & 2) r.hasNM = true;
        continue;
      }
      r.tagValues.push(value);
      if (id.startsWith('MD')) r.hasMD = true;
      if (id.startsWith('NM')) r.hasNM = true;
    }

    if (!(flags & F_UNMAP)) {
      const fn = FN();
      const keepFeatures = mayWant(refId, apos - 1);
      r.featFrom = r.featTo = feats.op.length;
      let prev = 0;
      // The reference span, walked as htslib's cram_decode_seq walks it (seqPos is 1-based, the
      // next read base): features may lie past RL, as in htsjdk's records stored without their
      // bases (RL 0, CF_NO_SEQ, one X feature per aligned base), so it is not RL's arithmetic.
      let seqPos = 1;
      let span = 0;
      for (let f = 0; f < fn; f++) {
        const op = FC();
        const pos = FP() + prev;
        prev = pos;
        if (pos <= 0) throw malformed(`read feature at position ${pos}`);
        // The bases before a feature that no feature covers match the reference. There must be
        // such bases: htslib refuses the whole slice otherwise, whichever records are wanted
        // (htsjdk writes this for a read without bases over a reference N, where it stores no X).
        if (pos > seqPos) {
          if (pos > len + 1) throw malformed(`record ${rec + 1} has a read feature at ${pos}, past its ${len} stored bases`);
          span += pos - seqPos;
          seqPos = pos;
        }
        let value: number | Uint8Array;
        let qual: number | undefined;
        switch (op) {
          case 83: // S
            value = bytes(majorVersion > 1 ? 'SC' : 'IN');
            seqPos += value.length;
            break;
          case 88: // X
            value = BS();
            seqPos++;
            span++;
            break;
          case 68: // D
            value = DL();
            span += value;
            break;
          case 73: // I
            value = bytes('IN');
            seqPos += value.length;
            break;
          case 105: // i
            value = BA();
            seqPos++;
            break;
          case 98: // b
            value = bytes('BB');
            seqPos += value.length;
            span += value.length;
            break;
          case 113: // q
            value = bytes('QQ');
            break;
          case 66: // B
            value = BA();
            qual = QS();
            seqPos++;
            span++;
            break;
          case 81: // Q
            value = QS();
            break;
          case 72: // H
            value = int('HC');
            break;
          case 80: // P
            value = int('PD');
            break;
          case 78: // N
            value = int('RS');
            span += value;
            break;
          default:
            throw malformed(`unknown read feature code '${String.fromCharCode(op)}'`);
        }
        if (keepFeatures) {
          feats.op.push(op);
          feats.pos.push(pos);
          feats.value.push(value);
          feats.qual.push(qual ?? 0);
        }
      }
      r.featTo = feats.op.length;
      if (len >= seqPos) span += len - seqPos + 1;
      r.refSpan = Math.max(0, span);
      // The reference end follows from the features alone (phase 3 reaches the same value), so
      // mates' TLEN can be resolved and regions tested without building records that are not
      // wanted. htslib's aend is never before apos, even for a record that covers no reference
      // base; with a reference in use, trailing matched bases past @SQ LN do not count (cram_decode_seq).
      const trailing = Math.max(0, len - seqPos + 1);
      const beforeTrailing = apos - 1 + r.refSpan - trailing;
      const pastLength = usesReference && refId >= 0 && trailing > 0 && beforeTrailing + trailing > (embeddedReference ? ctx.contigs[refId].length : (ctx.openedLength?.(refId) ?? ctx.contigs[refId].length));
      r.aend = Math.max(apos, pastLength ? beforeTrailing : apos - 1 + r.refSpan);
      r.mq = MQ();
      if (cf & CF_PRESERVE_QUAL) r.qual = run('QS', len);
    } else {
      if (len > 0) r.bases = run('BA', len);
      if (cf & CF_PRESERVE_QUAL) r.qual = run('QS', len);
    }
    out[rec] = r;
  }
  return out;
}

// --- phase 2: the reference ----------------------------------------------------------------------

/** Reference bytes for one contig: `bases[i]` is 0-based position `start + i`; valid below `end`. */
interface RefWindow {
  bases: Buffer;
  start: number;
  /** 0-based exclusive end of what may be used (htslib's s->ref_end as an exclusive bound). */
  end: number;
  contigLength: number;
  /** Whether `bases` holds any N (most windows do not: their matches are copied, not walked). */
  hasN: boolean;
}

function hex(bytes: ArrayLike<number>): string {
  return Buffer.from(Array.from(bytes)).toString('hex');
}

async function sliceReference(p: SliceParts, ctx: DecodeContext, recs: RawRecord[]): Promise<Map<number, RefWindow>> {
  const out = new Map<number, RefWindow>();
  const h = p.header;
  const refId = h.refSeqId ?? -1;
  const needs = recs.some((r) => r.refId >= 0 && !(r.flags & F_UNMAP));
  if (!needs) return out;
  if (refId >= 0) {
    const start = h.refSeqStart! - 1;
    if (h.refBaseBlockId !== undefined && h.refBaseBlockId >= 0) {
      // The slice's own bases: a reference given is not used, its length neither (htslib would
      // put it in place of LN, turning bases past a shorter one's end into N).
      const contigLength = ctx.contigs[refId].length;
      const block = p.blocksByContentId[h.refBaseBlockId];
      if (!block) throw malformed('the slice says its reference is embedded, but the block is missing');
      const bases = Buffer.from(block.content).map(upper) as Buffer;
      out.set(refId, { bases, start, end: start + h.refSeqSpan!, contigLength, hasN: bases.includes(N) });
      return out;
    }
    // htslib loads no reference for a no_ref container, even when one is given.
    if (!p.preservation.referenceRequired) return out;
    const fetch = requireReference(ctx);
    // Clipped to the reference's end, not LN's, as htslib clips the slice's span (s->ref_end).
    const bases = await fetch(refId, start, start + h.refSeqSpan!);
    const end = start + bases.length;
    const md5 = h.md5 ?? [];
    const hasMd5 = md5.some((b) => b !== 0);
    if (hasMd5) {
      const got = createHash('md5').update(bases).digest('hex');
      if (got !== hex(md5)) {
        const name = ctx.contigs[refId].name;
        const short = end < start + h.refSeqSpan! ? ` (the reference's ${name} ends at ${end}, the slice reaches ${start + h.refSeqSpan!})` : '';
        throw new SlicefsError(
          'USAGE',
          `wrong reference: the bases of ${name}:${start + 1}-${end} do not match the CRAM (MD5 ${got}, the CRAM says ${hex(md5)})${short}; give the reference the file was written with`,
        );
      }
    }
    out.set(refId, { bases, start, end, contigLength: await referenceLength(ctx, refId, hasMd5), hasN: bases.includes(N) });
    return out;
  }
  // A multi-reference slice: htslib loads whole contigs; the window the records cover is enough.
  if (!p.preservation.referenceRequired) return out;
  const fetch = requireReference(ctx);
  const spans = new Map<number, [number, number]>();
  for (const r of recs) {
    if (r.refId < 0 || r.flags & F_UNMAP) continue;
    const s = spans.get(r.refId);
    const a = r.apos - 1;
    const b = r.apos - 1 + r.refSpan;
    if (!s) spans.set(r.refId, [a, b]);
    else spans.set(r.refId, [Math.min(s[0], a), Math.max(s[1], b)]);
  }
  await Promise.all(
    [...spans].map(async ([tid, [a, b]]) => {
      // No MD5 in a multi-reference slice: nothing here proves the reference.
      const contigLength = await referenceLength(ctx, tid, false);
      const start = Math.max(0, Math.min(a, contigLength));
      const bases = await fetch(tid, start, Math.min(Math.max(b, start), contigLength));
      out.set(tid, { bases, start, end: contigLength, contigLength, hasN: bases.includes(N) });
    }),
  );
  return out;
}

function referenceLength(ctx: DecodeContext, tid: number, proven: boolean): Promise<number> | number {
  return ctx.referenceLength ? ctx.referenceLength(tid, proven) : ctx.contigs[tid].length;
}

function upper(b: number): number {
  return b >= 97 && b <= 122 ? b - 32 : b;
}

function requireReference(ctx: DecodeContext): ReferenceFetch {
  if (!ctx.reference) throw new SlicefsError('USAGE', `this CRAM needs its reference to decode: ${ctx.referenceHint}`);
  return ctx.reference;
}

// --- phase 3: sequence, CIGAR, MD, NM (htslib's cram_decode_seq) ---------------------------------

/**
 * Writes `bytes` into `buf` from `at`, as many as fit. A feature may lie past the read's stored
 * bases: htsjdk writes a read without bases (SEQ `*`) as RL 0 with CF_NO_SEQ and features for its
 * whole alignment (soft clips of N, one X per aligned base). htslib decodes their bases into
 * nothing (a NULL destination when RL is 0) and keeps their lengths for the CIGAR.
 */
function putFitting(buf: Uint8Array, at: number, bytes: Uint8Array): void {
  if (at < buf.length) buf.set(bytes.subarray(0, buf.length - at), at);
}

const NO_BYTES = Buffer.alloc(0);

/**
 * One buffer for the sequences and qualities of a slice's records, handed out in pieces: a
 * Buffer.alloc per record (an ArrayBuffer each) made much of the garbage collector's work.
 */
class Arena {
  private readonly bytes: Buffer;
  private at = 0;

  constructor(size: number) {
    this.bytes = Buffer.allocUnsafe(size);
  }

  take(n: number): Buffer {
    if (this.at + n > this.bytes.length) throw new RangeError(`Arena: ${n} bytes asked, ${this.bytes.length - this.at} left`);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

function buildMapped(r: RawRecord, feats: Features, scheme: CompressionScheme, ref: RefWindow | undefined, arena: Arena): void {
  const len = r.len;
  // htslib: without a reference, bases between features are '='.
  const seq = arena.take(len).fill(ref ? N : 61);
  // Preserved qualities are a view into the slice's block, which nothing else reads (features
  // never write into them: see featureQual).
  const qual: Uint8Array = r.qual ?? arena.take(len).fill(0xff);
  const preserved = (r.cf & CF_PRESERVE_QUAL) !== 0;
  let decodeMd = ref !== undefined && r.refId >= 0 && !r.hasMD;
  let decodeNm = ref !== undefined && r.refId >= 0 && !r.hasNM;
  if (r.cf & CF_NO_SEQ) decodeMd = decodeNm = false;
  let md = '';
  let mdDist = 0;
  let nm = 0;
  const cigar: number[] = [];
  let cigOp = OP_M;
  let cigLen = 0;
  let seqPos = 1;
  let refPos = r.apos - 1; // 0-based
  const contigLen = ref?.contigLength ?? 0;
  const refAt = (pos0: number): number => ref!.bases[pos0 - ref!.start] ?? N;
  const flushUnless = (op: number) => {
    if (cigLen && cigOp !== op) {
      cigar.push((cigLen << 4) | cigOp);
      cigLen = 0;
    }
  };
  const addMdChar = (c: string) => {
    if (decodeMd) {
      md += String(mdDist) + c;
      mdDist = 0;
    }
  };
  /**
   * A feature's quality at read position `at` (0-based). With preserved qualities htslib decodes
   * the QS run after the features over the whole read, so a B/Q/q feature's quality never shows.
   * Without them, the first explicit quality sets the rest of the read to 30.
   */
  const featureQual = (at: number, q: number | Uint8Array) => {
    if (preserved) return;
    if (qual[0] === 0xff) qual.fill(30);
    if (typeof q === 'number') {
      if (at < len) qual[at] = q;
    } else putFitting(qual, at, q);
  };
  const beyond = () => malformed(`a record at ${r.apos} extends beyond its slice's reference span`);
  /** Bases matching the reference for `n` positions from the current position. */
  const matchRun = (n: number) => {
    if (n <= 0) return;
    if (ref && r.refId >= 0) {
      if (refPos + n > contigLen) {
        const rlen = contigLen - refPos;
        if (rlen > 0) {
          if (refPos + rlen > ref.end) throw beyond();
          for (let i = 0; i < rlen; i++) seq[seqPos - 1 + i] = refAt(refPos + i);
          seq.fill(N, seqPos - 1 + rlen, seqPos - 1 + n);
        } else {
          seq.fill(N, seqPos - 1, len);
        }
        if (mdDist >= 0) mdDist += n;
      } else {
        if (refPos + n > ref.end) throw beyond();
        const from = refPos - ref.start;
        if (from >= 0 && from + n <= ref.bases.length && (!ref.hasN || ref.bases.subarray(from, from + n).indexOf(N) < 0)) {
          // No N in the stretch (the common case): copy it, count it as matches.
          ref.bases.copy(seq, seqPos - 1, from, from + n);
          mdDist += n;
        } else for (let i = 0; i < n; i++) {
          const base = refAt(refPos + i);
          if ((decodeMd || decodeNm) && base === N) {
            addMdChar('N');
            nm++;
          } else {
            mdDist++;
          }
          seq[seqPos - 1 + i] = base;
        }
      }
    }
    flushUnless(OP_M);
    cigOp = OP_M;
    cigLen += n;
    refPos += n;
    seqPos += n;
  };

  for (let fi = r.featFrom; fi < r.featTo; fi++) {
    const pos = feats.pos[fi];
    const value = feats.value[fi];
    if (pos > seqPos) {
      if (pos > len + 1) throw malformed(`a read feature at ${pos} is past the read's ${len} bases`);
      matchRun(pos - seqPos);
    }
    switch (feats.op[fi]) {
      case 83: {
        // S
        const b = value as Uint8Array;
        if (cigLen) {
          cigar.push((cigLen << 4) | cigOp);
          cigLen = 0;
        }
        putFitting(seq, pos - 1, b);
        cigar.push((b.length << 4) | OP_S);
        cigOp = OP_S;
        seqPos += b.length;
        break;
      }
      case 88: {
        // X
        flushUnless(OP_M);
        const code = value as number;
        if (r.refId < 0 || !ref || refPos >= contigLen) {
          if (pos - 1 < len) seq[pos - 1] = scheme.substitutionMatrix[4][code]?.charCodeAt(0) ?? N;
          if (decodeMd || decodeNm) {
            if (mdDist >= 0 && decodeMd) md += String(mdDist);
            mdDist = -1;
            nm--;
          }
        } else {
          const refCall = refPos < ref.end ? refAt(refPos) : N;
          if (pos - 1 < len) seq[pos - 1] = scheme.substitutionMatrix[baseRow(refCall)][code]?.charCodeAt(0) ?? N;
          addMdChar(String.fromCharCode(refCall));
        }
        cigOp = OP_M;
        nm++;
        cigLen++;
        seqPos++;
        refPos++;
        break;
      }
      case 68: {
        // D
        flushUnless(OP_D);
        const n = value as number;
        if (decodeMd || decodeNm) {
          if (refPos + n > ref!.end) throw beyond();
          if (mdDist >= 0 && decodeMd) md += String(mdDist);
          if (refPos + n <= contigLen) {
            if (decodeMd) {
              md += '^' + ref!.bases.toString('latin1', refPos - ref!.start, refPos - ref!.start + n);
              mdDist = 0;
            }
            nm += n;
          } else {
            if (contigLen >= refPos) {
              if (decodeMd) md += '^' + ref!.bases.toString('latin1', refPos - ref!.start, contigLen - ref!.start) + '0';
              nm += contigLen - refPos;
            }
            mdDist = -1;
          }
        }
        cigOp = OP_D;
        cigLen += n;
        refPos += n;
        break;
      }
      case 73: {
        // I
        flushUnless(OP_I);
        const b = value as Uint8Array;
        putFitting(seq, pos - 1, b);
        cigOp = OP_I;
        cigLen += b.length;
        seqPos += b.length;
        nm += b.length;
        break;
      }
      case 105: {
        // i
        flushUnless(OP_I);
        if (len && pos - 1 < len) seq[pos - 1] = value as number;
        cigOp = OP_I;
        cigLen++;
        seqPos++;
        nm++;
        break;
      }
      case 98: {
        // b
        flushUnless(OP_M);
        const b = value as Uint8Array;
        putFitting(seq, pos - 1, b);
        if (decodeMd || decodeNm) {
          if (mdDist >= 0 && decodeMd) md += String(mdDist);
          let x = 0;
          for (; x < b.length; x++) {
            if (x && decodeMd) md += '0';
            if (refPos + x >= contigLen || !ref) {
              mdDist = -1;
              break;
            }
            if (decodeMd) {
              if (refPos + x > ref.end) throw beyond();
              md += String.fromCharCode(refAt(refPos + x));
            }
          }
          nm += x;
          mdDist = 0;
        }
        cigOp = OP_M;
        cigLen += b.length;
        seqPos += b.length;
        refPos += b.length;
        break;
      }
      case 113: {
        // q
        flushUnless(OP_M);
        featureQual(pos - 1, value as Uint8Array);
        cigOp = OP_M;
        break;
      }
      case 66: {
        // B
        flushUnless(OP_M);
        if (len && pos - 1 < len) seq[pos - 1] = value as number;
        if (decodeMd || decodeNm) {
          if (mdDist >= 0 && decodeMd) md += String(mdDist);
          if (refPos >= contigLen || !ref) {
            mdDist = -1;
          } else {
            if (decodeMd) {
              if (refPos > ref.end) throw beyond();
              md += String.fromCharCode(refAt(refPos));
            }
            nm++;
            mdDist = 0;
          }
        }
        featureQual(pos - 1, feats.qual[fi]);
        cigOp = OP_M;
        cigLen++;
        seqPos++;
        refPos++;
        break;
      }
      case 81: // Q
        featureQual(pos - 1, value as number);
        break;
      case 72: // H
        flushUnless(OP_H);
        cigOp = OP_H;
        cigLen += value as number;
        break;
      case 80: // P
        flushUnless(OP_P);
        cigOp = OP_P;
        cigLen += value as number;
        break;
      case 78: // N
        flushUnless(OP_N);
        cigOp = OP_N;
        cigLen += value as number;
        refPos += value as number;
        break;
    }
  }
  // An implicit match for the bases after the last feature.
  if (len >= seqPos) matchRun(len - seqPos + 1);
  if (decodeMd && mdDist >= 0) md += String(mdDist);
  if (cigLen) cigar.push((cigLen << 4) | cigOp);

  r.cigar = cigar;
  r.seq = r.cf & CF_NO_SEQ ? NO_BYTES : seq;
  r.quals = r.cf & CF_NO_SEQ ? NO_BYTES : qual;
  if (decodeMd) r.md = md;
  r.nm = decodeNm ? nm : -1;
}

// --- phase 4: mates linked within the slice (htslib's cram_decode_slice_xref) --------------------

function resolveMates(recs: RawRecord[]): void {
  const n = recs.length;
  for (let rec = 0; rec < n; rec++) {
    const cr = recs[rec];
    if (cr.mateLine >= 0) {
      if (cr.mateLine >= n) throw malformed(`record ${rec + 1}'s mate is record ${cr.mateLine + 1} of ${n}`);
      if (cr.tlen === null) {
        const id1 = rec;
        let id2 = rec;
        let aleft = cr.apos;
        let aright = cr.aend;
        let ref = cr.refId;
        let leftCnt = 0;
        do {
          const c2 = recs[id2];
          if (aleft > c2.apos) {
            aleft = c2.apos;
            leftCnt = 1;
          } else if (aleft === c2.apos) {
            leftCnt++;
          }
          if (aright < c2.aend) aright = c2.aend;
          if (c2.mateLine === -1) {
            c2.mateLine = rec;
            break;
          }
          if (c2.mateLine <= id2 || c2.mateLine >= n) throw malformed(`record ${id2 + 1} has a mate link that goes backwards`);
          id2 = c2.mateLine;
          if (recs[id2].refId !== ref) ref = -1;
        } while (id2 !== id1);

        const tlenOf = (c: RawRecord, tlen: number) =>
          c.apos === aleft ? (leftCnt === 1 || c.flags & F_READ1 ? tlen : -tlen) : -tlen;
        id2 = rec;
        if (ref !== -1) {
          const tlen = aright - aleft + 1;
          do {
            recs[id2].tlen = tlenOf(recs[id2], tlen);
            id2 = recs[id2].mateLine;
          } while (id2 !== id1);
        } else {
          do {
            recs[id2].tlen = 0;
            id2 = recs[id2].mateLine;
          } while (id2 !== id1);
        }
      }
      const mate = recs[cr.mateLine];
      cr.matePos = mate.apos;
      cr.mateRefId = mate.refId;
      cr.flags |= F_PAIRED;
      if (mate.flags & F_UNMAP) {
        cr.flags |= F_MUNMAP;
        cr.tlen = 0;
      }
      if (cr.flags & F_UNMAP) cr.tlen = 0;
      if (mate.flags & F_REVERSE) cr.flags |= F_MREVERSE;
    } else {
      if (cr.mateFlags & MF_REVERSE) cr.flags |= F_PAIRED | F_MREVERSE;
      if (cr.mateFlags & MF_UNMAP) cr.flags |= F_MUNMAP;
      if (!(cr.flags & F_PAIRED)) cr.mateRefId = -1;
    }
    if (cr.tlen === null) cr.tlen = 0;
  }
  for (const cr of recs) if (cr.explicitTlen !== null) cr.tlen = cr.explicitTlen;
}

// --- phase 5: BAM ----------------------------------------------------------------------------------

/** htslib's hts_reg2bin(beg, end, 14, 5): the BAI bin of [beg, end). */
export function reg2bin(beg: number, end: number): number {
  end--;
  if (beg >> 14 === end >> 14) return ((1 << 15) - 1) / 7 + (beg >> 14);
  if (beg >> 17 === end >> 17) return ((1 << 12) - 1) / 7 + (beg >> 17);
  if (beg >> 20 === end >> 20) return ((1 << 9) - 1) / 7 + (beg >> 20);
  if (beg >> 23 === end >> 23) return ((1 << 6) - 1) / 7 + (beg >> 23);
  if (beg >> 26 === end >> 26) return ((1 << 3) - 1) / 7 + (beg >> 26);
  return 0;
}

/** Bytes of an NM tag as htslib writes it: the smallest unsigned type that holds the count. */
function nmSize(nm: number): number {
  return nm <= 0xff ? 4 : nm <= 0xffff ? 5 : 7;
}

/**
 * The record's name bytes: its own, its mate's, or the one htslib's cram_to_bam generates for a
 * record stored without one (lossy_names): `FILE:N`, FILE the file's name (htslib's fd->prefix:
 * what follows the last `/` of the path or URL it opened) and N the record's number in the file,
 * counted from 1 (the slice header's record counter plus its index in the slice), or its mate's
 * when the mate came first. The counter is the file's, so a region names a record as the whole
 * file does.
 */
function recordName(recs: RawRecord[], rec: number, counter: number, fileName: string): Uint8Array {
  const stop = (b: Uint8Array) => {
    const z = b.indexOf(0);
    return z < 0 ? b : b.subarray(0, z);
  };
  const cr = recs[rec];
  if (cr.name && cr.name.length > 0) return stop(cr.name);
  const mate = cr.mateLine >= 0 ? recs[cr.mateLine] : undefined;
  if (mate?.name && mate.name.length > 0) return stop(mate.name);
  const num = cr.mateLine >= 0 && cr.mateLine < rec ? counter + cr.mateLine + 1 : counter + rec + 1;
  const name = Buffer.from(`${fileName}:${num}`, 'latin1');
  // BAM's name length is one byte, NUL included; htslib refuses a longer name too.
  if (name.length > MAX_NAME_BYTES) throw new SlicefsError('USAGE', `record ${num} is stored without a name and would be named after the file, but '${fileName}:${num}' is longer than a BAM read name may be (${MAX_NAME_BYTES} bytes): give the file a shorter name`);
  return name;
}

/**
 * Phase 5: the kept records as BAM records (htslib's `bam_set1`), written into one buffer for the
 * slice (one allocation instead of a dozen per record: at 300 000 records the garbage collector
 * was a fifth of the time) and returned as views of it.
 */
function encodeRecords(recs: RawRecord[], keep: boolean[], counter: number, ctx: DecodeContext): Buffer[] {
  const readGroups = ctx.readGroups;
  const names: (Uint8Array | undefined)[] = new Array(recs.length);
  const rgs: (string | undefined)[] = new Array(recs.length);
  let total = 0;
  for (let i = 0; i < recs.length; i++) {
    if (!keep[i]) continue;
    const cr = recs[i];
    const name = recordName(recs, i, counter, ctx.fileName);
    names[i] = name;
    const mapped = !(cr.flags & F_UNMAP);
    const len = mapped ? cr.seq!.length : cr.len;
    let size = 32 + name.length + 1 + (mapped ? cr.cigar.length * 4 : 0) + ((len + 1) >> 1) + len;
    for (let t = 0; t < cr.tagIds.length; t++) size += 3 + cr.tagValues[t].length;
    if (cr.md !== undefined) size += 4 + cr.md.length;
    if (mapped && cr.nm >= 0) size += nmSize(cr.nm);
    if (cr.rg >= 0) {
      const id = readGroups[cr.rg];
      if (id === undefined) throw malformed(`record ${i + 1} names read group #${cr.rg}, which the header does not have`);
      rgs[i] = id;
      size += 4 + Buffer.byteLength(id, 'latin1');
    }
    total += size;
  }
  const out = Buffer.allocUnsafe(total);
  // DataView writes: Buffer's write*LE methods (range checks, then byte by byte) were a tenth of the encoding.
  const dv = new DataView(out.buffer, out.byteOffset, out.length);
  const recsOut: Buffer[] = [];
  let o = 0;
  for (let i = 0; i < recs.length; i++) {
    if (!keep[i]) continue;
    const cr = recs[i];
    const start = o;
    const name = names[i]!;
    const mapped = !(cr.flags & F_UNMAP);
    const len = mapped ? cr.seq!.length : cr.len;
    const seq = mapped ? cr.seq : cr.bases;
    const qual = mapped ? cr.quals : cr.qual;
    const nCigar = mapped ? cr.cigar.length : 0;
    let rlen = 0;
    for (let c = 0; c < nCigar; c++) {
      const op = cr.cigar[c] & 0xf;
      if (op === OP_M || op === OP_D || op === OP_N || op === 7 || op === 8) rlen += cr.cigar[c] >>> 4;
    }
    if (rlen === 0) rlen = 1;
    const pos = cr.apos - 1;
    dv.setInt32(o, cr.refId, true);
    dv.setInt32(o + 4, pos, true);
    out[o + 8] = name.length + 1;
    out[o + 9] = mapped ? cr.mq & 0xff : 0;
    // bam1_core_t.bin is a uint16_t: the bin of a read past 2^29 (indexable by CSI only) wraps
    // there as here; SAM does not print it.
    dv.setUint16(o + 10, reg2bin(pos, pos + rlen) & 0xffff, true);
    // (DataView wraps where Buffer's writes threw: the two 16-bit fields that could overflow are checked.)
    if (nCigar > 0xffff) throw new SlicefsError('USAGE', `record ${i + 1} has ${nCigar} CIGAR operations, more than a BAM record holds (65535)`);
    if (cr.flags < 0 || cr.flags > 0xffff) throw malformed(`record ${i + 1} has flags ${cr.flags}`);
    dv.setUint16(o + 12, nCigar, true);
    dv.setUint16(o + 14, cr.flags, true);
    dv.setInt32(o + 16, len, true);
    dv.setInt32(o + 20, cr.mateRefId, true);
    dv.setInt32(o + 24, cr.matePos - 1, true);
    dv.setInt32(o + 28, cr.tlen ?? 0, true);
    o += 32;
    out.set(name, o);
    o += name.length;
    out[o++] = 0;
    for (let c = 0; c < nCigar; c++, o += 4) dv.setUint32(o, cr.cigar[c] >>> 0, true);
    if (seq) {
      o = packSeq(seq, len, out, o);
    } else {
      out.fill(0xff, o, o + ((len + 1) >> 1)); // all N
      o += (len + 1) >> 1;
    }
    if (qual && qual.length >= len) out.set(qual.subarray(0, len), o);
    else out.fill(0xff, o, o + len);
    o += len;
    for (let t = 0; t < cr.tagIds.length; t++) {
      const id = cr.tagIds[t];
      out[o++] = id.charCodeAt(0);
      out[o++] = id.charCodeAt(1);
      out[o++] = id.charCodeAt(2);
      out.set(cr.tagValues[t], o);
      o += cr.tagValues[t].length;
    }
    if (cr.md !== undefined) {
      out[o++] = 77; // M
      out[o++] = 68; // D
      out[o++] = 90; // Z
      o += out.write(cr.md, o, 'latin1');
      out[o++] = 0;
    }
    if (mapped && cr.nm >= 0) {
      out[o++] = 78; // N
      out[o++] = 77; // M
      if (cr.nm <= 0xff) {
        out[o++] = 67; // C
        out[o++] = cr.nm;
      } else if (cr.nm <= 0xffff) {
        out[o++] = 83; // S
        dv.setUint16(o, cr.nm, true);
        o += 2;
      } else {
        out[o++] = 73; // I
        dv.setUint32(o, cr.nm >>> 0, true);
        o += 4;
      }
    }
    const rg = rgs[i];
    if (rg !== undefined) {
      out[o++] = 82; // R
      out[o++] = 71; // G
      out[o++] = 90; // Z
      o += out.write(rg, o, 'latin1');
      out[o++] = 0;
    }
    recsOut.push(out.subarray(start, o));
  }
  return recsOut;
}

/**
 * Whether a record is wanted, from where it lies: reference id (-1: unplaced), 0-based start and
 * exclusive end on the reference (htslib's CRAM aend, RawRecord.aend: start + 1 for an unmapped read). An end of
 * Infinity means "not known yet": whether a record starting there could be wanted. It is asked
 * with the end known once per record, in slice order (a filter may keep state: ./cram-view.ts).
 */
export type RecordFilter = (refId: number, start: number, end: number) => boolean;

/**
 * Decodes a slice into BAM records, in slice order: all of them, or those `wanted` says (every
 * record's data series are decoded, as they are read in sequence, but only the wanted ones get a
 * sequence, CIGAR, MD/NM and BAM bytes: a 1 kb region wants a few dozen of a slice's 10 000
 * reads). The reference is fetched through `ctx.reference` as the slice needs it.
 */
export async function decodeSlice(p: SliceParts, ctx: DecodeContext, wanted?: RecordFilter): Promise<Buffer[]> {
  if (p.majorVersion > 3) throw new SlicefsError('USAGE', `CRAM version ${p.majorVersion} is not supported (2.x and 3.x are)`);
  // A record starting at or after a region's end cannot overlap it, whatever its length.
  const feats = new Features();
  const recs = decodeRecords(p, ctx, (refId, start) => !wanted || wanted(refId, start, Infinity), feats);
  const keep = recs.map((r) => {
    if (!wanted) return true;
    // htslib's test is on aend (phase 1), which is bam_endpos but for reads past LN.
    return wanted(r.refId, r.apos - 1, r.aend);
  });
  if (!keep.includes(true)) return [];
  // The slice's reference is fetched (and its MD5 checked, as htslib does) whenever any record is kept.
  const refs = await sliceReference(p, ctx, recs);
  let arenaBytes = 0;
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    if (keep[i] && !(r.flags & F_UNMAP)) arenaBytes += r.qual ? r.len : 2 * r.len;
  }
  const arena = new Arena(arenaBytes);
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    if (!keep[i] || r.flags & F_UNMAP) continue;
    if (r.refId < 0) throw malformed(`record at ${r.apos} is mapped to no reference`);
    buildMapped(r, feats, p.scheme, refs.get(r.refId), arena);
  }
  resolveMates(recs);
  return encodeRecords(recs, keep, p.header.recordCounter, ctx);
}
