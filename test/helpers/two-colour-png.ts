import sharp from 'sharp';

/**
 * A black block on white as a 2-colour palette PNG, the image of issue 12's decode flood: about
 * 8.5 KB at 4096 x 4096, yet 16.7 million RGB pixels to decode. Takes a second or two to make.
 */
export function twoColourPng(width: number, height: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height, 255);
  const [left, right] = [Math.floor(width / 3), Math.floor((2 * width) / 3)];
  for (let y = Math.floor(height / 4); y < Math.floor((3 * height) / 4); y++)
    pixels.fill(0, y * width + left, y * width + right);
  return sharp(pixels, { raw: { width, height, channels: 1 } })
    .png({ compressionLevel: 9, palette: true, colours: 2 })
    .toBuffer();
}
