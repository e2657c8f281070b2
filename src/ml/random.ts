/**
 * A small seeded PRNG (mulberry32) for shuffling and initializer seeds: the same seed gives the
 * same order on every machine, which Math.random cannot promise.
 */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The seeds a model's initializers and dropout layers get, one per call. Not createRandom: this
 * sequence decides every job's initial weights, so replacing it would change what each seed trains
 * to, and the accuracy recorded for it, without anything else changing (issue 14).
 */
export function layerSeeds(seed: number): () => number {
  let next = seed;
  return () => (next = (next * 1_103_515_245 + 12_345) % 2 ** 31);
}

/** Fisher-Yates in place. */
export function shuffleInPlace(values: Uint32Array, random: () => number): Uint32Array {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = values[i]!;
    values[i] = values[j]!;
    values[j] = tmp;
  }
  return values;
}

export function range(count: number): Uint32Array {
  const values = new Uint32Array(count);
  for (let i = 0; i < count; i++) values[i] = i;
  return values;
}
