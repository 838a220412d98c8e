import {
  type BlockDevice,
  type ByteRange,
  clampRange,
  deviceExtents,
  throwIfAborted,
} from '@x/blockio';
import type { MapEntry, MapOptions } from './map-image.js';

/**
 * The map of a raw file as qemu-img map -f raw reports it: every run is
 * present at its own offset in the file; holes read as zero and hold no data.
 */
export async function* mapRawEntries(
  device: BlockDevice,
  options: MapOptions = {},
): AsyncIterable<MapEntry> {
  const range: ByteRange = clampRange(device, options.range);
  for await (const extent of deviceExtents(device, range)) {
    throwIfAborted(options.signal, device.name);
    const data = extent.kind === 'data';
    yield {
      start: extent.offset,
      length: extent.length,
      depth: 0,
      present: true,
      zero: !data,
      data,
      offset: extent.offset,
      filename: device.name,
      compressed: false,
    };
  }
}
