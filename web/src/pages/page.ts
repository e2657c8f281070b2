/** A page of the app, rendered into the main element; closed when another one is opened. */
export interface Page {
  close(): void;
}
