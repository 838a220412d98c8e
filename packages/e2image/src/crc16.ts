/**
 * CRC-16 (ANSI/IBM, reflected polynomial 0xA001) as libext2fs' `ext2fs_crc16`
 * computes it for the uninit_bg group descriptor checksum (gdt_csum).
 */
const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export function crc16Update(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) {
    c = ((TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)) & 0xffff;
  }
  return c;
}
