/** A small seeded random number generator (mulberry32): a fault run is replayed by printing and reusing its seed. */
export interface Rng {
  seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** One of the keys, chosen with probability proportional to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K;
  /** An independent generator derived from this one (one per workload client, say). */
  fork(): Rng;
}

export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    weighted(weights) {
      const entries = Object.entries(weights) as [keyof typeof weights, number][];
      let r = next() * entries.reduce((s, [, w]) => s + w, 0);
      for (const [k, w] of entries) {
        r -= w;
        if (r < 0) return k;
      }
      return entries[entries.length - 1]![0];
    },
    fork: () => seededRng(Math.floor(next() * 2 ** 32)),
  };
  return rng;
}

/** The seed from FERRY_FAULT_SEED, or a fresh one (always printed by the caller, so a failure can be replayed). */
export function seedFromEnv(): number {
  const s = process.env.FERRY_FAULT_SEED;
  return s !== undefined && s !== '' ? Number(s) >>> 0 : Math.floor(Math.random() * 2 ** 32);
}
