/** The fields of a Layers layer's `getConfig()` that our plans (inference, training) read. */
export interface LayerConfig {
  activation?: string;
  padding?: 'valid' | 'same';
  strides?: [number, number];
  dilationRate?: number | [number, number];
  dataFormat?: string;
  poolSize?: [number, number];
  useBias?: boolean;
  /** Dropout. */
  rate?: number;
  seed?: number;
}
