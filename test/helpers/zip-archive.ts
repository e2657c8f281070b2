import { crc32, deflateRawSync } from 'node:zlib';

/**
 * A tiny zip writer of our own, for tests of the dataset upload: zip libraries refuse to write the
 * hostile archives those tests need (`../x` and `/abs` names, symlinks, sizes that lie, bombs).
 * Writes one disk, no zip64, names in UTF-8 (flag bit 11), unix attributes.
 */
export interface ZipEntrySpec {
  name: string;
  /** The entry's contents (as it inflates). */
  data?: Uint8Array | string;
  /** @default 'deflate' */
  method?: 'store' | 'deflate';
  /** Unix mode bits, e.g. 0o120777 for a symlink; @default 0o100644 (0o40755 for a name ending in /) */
  mode?: number;
  /** The uncompressed size the headers declare, when it should lie. */
  declaredSize?: number;
  /** The compressed bytes as stored, instead of compressing `data` (a bomb made ahead). */
  raw?: { compressed: Uint8Array; size: number; crc: number };
}

export interface ZipOptions {
  /** The entry count the end record declares, when it should lie. */
  declaredEntryCount?: number;
}

export function zipArchive(entries: ZipEntrySpec[], options: ZipOptions = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const spec of entries) {
    const name = Buffer.from(spec.name, 'utf8');
    const method = spec.method ?? 'deflate';
    const data =
      typeof spec.data === 'string' ? Buffer.from(spec.data, 'utf8') : Buffer.from(spec.data ?? []);
    const compressed = spec.raw?.compressed ?? (method === 'store' ? data : deflateRawSync(data));
    const crc = spec.raw?.crc ?? crc32(data);
    const size = spec.declaredSize ?? spec.raw?.size ?? data.length;
    const mode = spec.mode ?? (spec.name.endsWith('/') ? 0o40755 : 0o100644);
    const methodCode = method === 'store' ? 0 : 8;

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(methodCode, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, Buffer.from(compressed));

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(methodCode, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30);
    central.writeUInt16LE(0, 32);
    central.writeUInt16LE(0, 34);
    central.writeUInt16LE(0, 36);
    central.writeUInt32LE(((mode & 0xffff) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + compressed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  const count = options.declaredEntryCount ?? entries.length;
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0, 4);
  end.writeUInt16LE(0, 6);
  end.writeUInt16LE(Math.min(count, 0xffff), 8);
  end.writeUInt16LE(Math.min(count, 0xffff), 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([...locals, directory, end]);
}

/** `size` zero bytes deflated: a few KB that inflate to `size`, the stuff of zip bombs. */
export function deflatedZeros(size: number): { compressed: Uint8Array; size: number; crc: number } {
  const zeros = Buffer.alloc(size);
  return { compressed: deflateRawSync(zeros, { level: 9 }), size, crc: crc32(zeros) };
}
