/**
 * CI mode (the default) fits the whole suite in a few minutes on 2 cores; soak mode
 * (`npm run test:reliability -- --soak`, or RELIABILITY_MODE=soak) runs bigger volumes for longer.
 */
export const MODE: 'ci' | 'soak' = process.env.RELIABILITY_MODE === 'soak' ? 'soak' : 'ci';

export const inMode = <T>(ci: T, soak: T): T => (MODE === 'soak' ? soak : ci);
