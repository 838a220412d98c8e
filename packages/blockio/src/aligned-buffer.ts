/**
 * A buffer of `size` bytes whose memory starts on a page boundary, for data that
 * goes through read and write system calls.
 *
 * Why: the kernel's copies to and from user memory (`_copy_to_iter`, most of a
 * copy's CPU) are much slower when the user buffer is not aligned: Node's
 * `Buffer.allocUnsafeSlow` takes large buffers from malloc, whose mmap'd chunks
 * start 16 bytes past a page. Measured on the benchmark VM (AMD EPYC, kernel
 * 6.18): 2 GiB of 2 MiB preads from the page cache took 320-350 ms of system time
 * into such a buffer against 200-230 ms into an aligned one (writes: 150-200 against
 * 125-130 ms). qemu-img aligns its buffers the same way (qemu_blockalign).
 *
 * JavaScript cannot ask for an address, but V8 backs a resizable ArrayBuffer with
 * pages it reserves itself (only `maxByteLength` of address space), so it starts
 * on a page. Where resizable ArrayBuffers are missing the options are ignored and
 * this is an ordinary, zero-filled buffer: correct, only slower.
 */
export function allocateAligned(size: number): Buffer {
  const memory = new ResizableArrayBuffer(size, { maxByteLength: size });
  return Buffer.from(memory, 0, size);
}

/** ES2024's constructor signature (the workspace compiles against ES2023's lib). */
const ResizableArrayBuffer = ArrayBuffer as unknown as new (
  size: number,
  options: { maxByteLength: number },
) => ArrayBuffer;
