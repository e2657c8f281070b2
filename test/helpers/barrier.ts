/**
 * Holds `parties` callers until all have arrived, then lets them go in the order `release` names
 * (each caller arrives with its name): the continuations run in that order within one tick, so
 * whatever each sends next leaves in that order. Forces the two sides of a race into a chosen
 * order without a timer.
 */
export function barrier<Name>(parties: number, release: Name[]) {
  const waiting = new Map<Name, () => void>();
  return {
    arrive(name: Name): Promise<void> {
      if (waiting.has(name)) throw new Error(`barrier: ${String(name)} arrived twice`);
      const held = new Promise<void>((resolve) => waiting.set(name, resolve));
      // Released a microtask later, once the last caller is waiting too: resolving its promise now
      // would queue its continuation after those of callers that were already waiting.
      if (waiting.size === parties) {
        queueMicrotask(() => {
          for (const next of release) {
            const go = waiting.get(next);
            if (!go) throw new Error(`barrier: ${String(next)} never arrived`);
            go();
          }
        });
      }
      return held;
    },
  };
}
