import {
  BaseBlockDevice,
  type ByteRange,
  clampRange,
  clipExtents,
  type Extent,
  type FileDataMap,
  type FileDevice,
  mapFileData,
} from '@x/blockio';

/**
 * A raw backing file, read-only. Its allocation map is asked of the kernel once
 * and reused: an overlay's extents() consults the backing file for every
 * unallocated run, and FileDevice would ask (spawn filefrag) every time.
 */
export class RawBackingFile extends BaseBlockDevice {
  readonly file: FileDevice;
  #map: Promise<FileDataMap | undefined> | undefined;

  constructor(file: FileDevice) {
    super({ name: file.name, size: file.size, readOnly: true, alignment: file.alignment });
    this.file = file;
  }

  protected async readAt(offset: number, into: Uint8Array): Promise<void> {
    await this.file.read(offset, into);
  }

  protected override closeDevice(): Promise<void> {
    return this.file.close();
  }

  async *extents(range?: ByteRange): AsyncIterable<Extent> {
    const clamped = clampRange(this, range);
    if (clamped.length === 0) return;
    if (this.file.isBlockDevice) {
      yield { ...clamped, kind: 'data' };
      return;
    }
    this.#map ??= mapFileData(this.name, this.size);
    const map = await this.#map;
    if (map === undefined) yield { ...clamped, kind: 'data' };
    else yield* clipExtents(map, this.size, clamped);
  }
}
