/**
 * The suite's report: `N/M identical` per variant and overall (M counts comparisons made; variants
 * and regions samtools refused are counted apart, as skipped, never as identical), then each
 * difference with its file, variant, region, seed and the first differing line of each side, and
 * the known class (./known.ts) it belongs to when it is one.
 */
import { knownClass } from './known.js';
import type { VariantResult } from './suite.js';

export interface Totals {
  compared: number;
  identical: number;
  skippedVariants: number;
  skippedRegions: number;
}

function add(t: Totals, r: VariantResult): void {
  if (r.skipped !== undefined) {
    t.skippedVariants++;
    return;
  }
  const o = r.outcome!;
  t.compared += o.compared;
  t.identical += o.identical;
  t.skippedRegions += o.skippedRegions.length;
}

/** Differences printed in full per file variant: the rest are counted. */
const SHOWN_PER_VARIANT = 3;

const zero = (): Totals => ({ compared: 0, identical: 0, skippedVariants: 0, skippedRegions: 0 });

export function totals(results: readonly VariantResult[]): { byVariant: Map<string, Totals>; overall: Totals } {
  const byVariant = new Map<string, Totals>();
  const overall = zero();
  for (const r of results) {
    if (!byVariant.has(r.variant)) byVariant.set(r.variant, zero());
    add(byVariant.get(r.variant)!, r);
    add(overall, r);
  }
  return { byVariant, overall };
}

const line = (name: string, t: Totals) =>
  `${name.padEnd(24)} ${`${t.identical}/${t.compared}`.padStart(13)} identical   skipped: ${t.skippedVariants} files (samtools refused the variant), ${t.skippedRegions} regions`;

/** The report's text. */
export function report(results: readonly VariantResult[], opts: { verboseSkips?: boolean } = {}): string {
  const { byVariant, overall } = totals(results);
  const files = new Set(results.map((r) => r.file)).size;
  const out = [`view conformance: ${files} files × ${byVariant.size} variants, samtools 1.16 the oracle`];
  for (const [name, t] of byVariant) out.push(line(name, t));
  out.push(line('overall', overall));
  const differing = results.filter((r) => (r.outcome?.differences.length ?? 0) > 0);
  if (differing.length > 0) {
    const count = differing.reduce((n, r) => n + r.outcome!.differences.length, 0);
    out.push('', `${count} differences in ${differing.length} file variants (file, variant: regions that differ; the first ${SHOWN_PER_VARIANT} with the first differing line, samtools / slicefs):`);
    for (const r of differing) {
      const o = r.outcome!;
      const classes = [...new Set(o.differences.map((d) => knownClass(r.file, r.variant, d) ?? 'NEW'))];
      out.push(`- ${r.file}  ${r.variant}: ${o.differences.length} of ${o.compared} differ  seed ${o.seed}  [${classes.map((c) => (c === 'NEW' ? c : `known: ${c}`)).join('; ')}]`);
      for (const d of o.differences.slice(0, SHOWN_PER_VARIANT)) {
        out.push(`    ${d.region}  line ${d.line}`, `      samtools: ${d.samtools}`, `      slicefs:  ${d.slicefs}`);
      }
    }
  }
  if (opts.verboseSkips) {
    const skips = results.filter((r) => r.skipped !== undefined);
    if (skips.length > 0) out.push('', 'skipped (samtools refused):', ...skips.map((r) => `- ${r.file}  ${r.variant}: ${r.skipped}`));
    const regionSkips = results.flatMap((r) => (r.outcome?.skippedRegions ?? []).map((s) => `- ${r.file}  ${r.variant}  ${s}`));
    if (regionSkips.length > 0) out.push('', 'regions samtools refused:', ...regionSkips);
  }
  return out.join('\n');
}
