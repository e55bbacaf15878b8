// A small seeded PRNG for the simulators (xoshiro128**, seeded through splitmix32). Deterministic
// across platforms: the same seed gives the same run.

export interface Rng {
  /** A float in [0, 1). */
  (): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** A random element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** Shuffles in place (Fisher-Yates) and returns the array. */
  shuffle<T>(items: T[]): T[];
  /** An independent generator derived from this one (for per-node streams). */
  fork(): Rng;
  readonly seed: number;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function createRng(seed: number): Rng {
  const sm = splitmix32(seed);
  let a = sm();
  let b = sm();
  let c = sm();
  let d = sm();
  if ((a | b | c | d) === 0) a = 1;
  const nextU32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const rng = (() => nextU32() / 4294967296) as Rng;
  rng.int = (n: number) => Math.floor(rng() * n);
  rng.chance = (p: number) => rng() < p;
  rng.pick = <T>(items: readonly T[]): T => items[rng.int(items.length)];
  rng.shuffle = <T>(items: T[]): T[] => {
    for (let i = items.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  };
  rng.fork = () => createRng(nextU32());
  Object.defineProperty(rng, 'seed', { value: seed });
  return rng;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The seed for a simulator run: SIM_SEED from the environment, else a fresh random one. */
export function seedFromEnv(): number {
  const s = process.env.SIM_SEED;
  if (s !== undefined && s !== '') return Number(s) >>> 0;
  return (Math.random() * 2 ** 32) >>> 0;
}
