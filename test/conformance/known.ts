/**
 * Differences of a known class of slicefs issue 17 that other branches fix: the full run reports
 * them (marked known), the per-commit test leaves exactly these out. Filled in from the full run.
 */
import type { Difference } from './compare.js';

interface KnownDifference {
  /** The class and what it is. */
  name: string;
  matches: (file: string, variant: string, d: Difference) => boolean;
}

export const KNOWN: readonly KnownDifference[] = [];

/** The known class of a difference, or undefined for a new one. */
export function knownClass(file: string, variant: string, d: Difference): string | undefined {
  return KNOWN.find((k) => k.matches(file, variant, d))?.name;
}
