/** Canvas resolution: 10x MNIST, plenty for the server's preprocessing to find the strokes. */
const SIZE = 280;
/** About a pen's width relative to the digit, as in MNIST after it is scaled to 20 px. */
const LINE_WIDTH = 18;

/**
 * A square canvas to draw one digit on with a mouse, a pen or a finger (pointer events cover all
 * three). Dark ink on white, like paper: the server inverts it to MNIST's light-on-dark.
 */
export class DrawingPad {
  private readonly context: CanvasRenderingContext2D;
  private last: { x: number; y: number } | null = null;
  private inked = false;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly onRelease: () => void,
  ) {
    canvas.width = SIZE;
    canvas.height = SIZE;
    this.context = canvas.getContext('2d')!;
    this.clear();
    canvas.addEventListener('pointerdown', (event) => this.down(event));
    canvas.addEventListener('pointermove', (event) => this.move(event));
    canvas.addEventListener('pointerup', () => this.up());
    canvas.addEventListener('pointercancel', () => this.up());
  }

  get isEmpty(): boolean {
    return !this.inked;
  }

  clear(): void {
    const { context } = this;
    context.fillStyle = '#fff';
    context.fillRect(0, 0, SIZE, SIZE);
    context.strokeStyle = '#111';
    context.fillStyle = '#111';
    context.lineWidth = LINE_WIDTH;
    context.lineCap = 'round';
    context.lineJoin = 'round';
    this.inked = false;
  }

  toPng(): Promise<Blob> {
    return new Promise((resolve, reject) =>
      this.canvas.toBlob(
        (blob) => (blob ? resolve(blob) : reject(new Error('the canvas gave no image'))),
        'image/png',
      ),
    );
  }

  private point(event: PointerEvent): { x: number; y: number } {
    // The canvas is shown at whatever size the screen allows; draw in its own pixels.
    const box = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * SIZE) / box.width,
      y: ((event.clientY - box.top) * SIZE) / box.height,
    };
  }

  private down(event: PointerEvent): void {
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.last = this.point(event);
    this.context.beginPath();
    this.context.arc(this.last.x, this.last.y, LINE_WIDTH / 2, 0, 2 * Math.PI);
    this.context.fill();
    this.inked = true;
  }

  private move(event: PointerEvent): void {
    if (!this.last) return;
    // Coalesced events keep fast strokes smooth where the browser sends fewer moves than it saw.
    const events = typeof event.getCoalescedEvents === 'function' ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {
      const next = this.point(e);
      this.context.beginPath();
      this.context.moveTo(this.last.x, this.last.y);
      this.context.lineTo(next.x, next.y);
      this.context.stroke();
      this.last = next;
    }
  }

  private up(): void {
    if (!this.last) return;
    this.last = null;
    this.onRelease();
  }
}
