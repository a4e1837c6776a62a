// Edit distance for "did you mean …?" hints (a misspelt setting, for one).

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and
 * swaps of two neighbours each cost 1 (so "SYNCRONOUS" is 1 from "SYNCHRONOUS",
 * "SNYC" 1 from "SYNC").
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0]!.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]!.push(d);
    }
  }
  return rows[a.length]![b.length]!;
}

/** The candidate closest to `name` (the first of equals), with its distance; null when there are none. */
export function nearest(name: string, candidates: Iterable<string>): { name: string; distance: number } | null {
  let best: { name: string; distance: number } | null = null;
  for (const c of candidates) {
    const distance = editDistance(name, c);
    if (best === null || distance < best.distance) best = { name: c, distance };
  }
  return best;
}
