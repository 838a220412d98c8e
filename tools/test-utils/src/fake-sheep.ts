import { createServer, type Server, type Socket } from 'node:net';

/*
 * A fake sheep daemon for tests of Sheepdog clients: a single node holding VDIs (inode
 * objects) and data objects in memory, speaking the wire protocol as formats/sheepdog.md
 * §4 and the captured exchanges (wire-backup.txt, wire-restore.txt) show it: 48-byte
 * little-endian headers, the payload only with the WRITE flag, the id echoed, replies
 * with proto_ver 0 and flags 0, GET_VDI_INFO / NEW_VDI / DEL_VDI with sheep's lookup and
 * rebase rules, copy-on-write object creation. Faults can be injected per request.
 */

const HEADER = 48;
const INODE_HEADER = 4664;
const SD_NR_VDIS = 1 << 24;

export const SheepOp = {
  CREATE_AND_WRITE_OBJ: 0x01,
  READ_OBJ: 0x02,
  WRITE_OBJ: 0x03,
  NEW_VDI: 0x11,
  GET_VDI_INFO: 0x14,
  READ_VDIS: 0x15,
  DEL_VDI: 0x17,
} as const;

export const SheepResult = {
  SUCCESS: 0x00,
  NO_OBJ: 0x02,
  VDI_EXIST: 0x04,
  INVALID_PARMS: 0x05,
  NO_VDI: 0x08,
  NO_TAG: 0x0e,
  VER_MISMATCH: 0x14,
} as const;

/** A request as the fake received it (for assertions on what a client sent). */
export interface SheepRequest {
  header: Buffer;
  opcode: number;
  flags: number;
  id: number;
  dataLength: number;
  payload: Buffer;
}

/** What to do with a request instead of answering it. */
export type SheepFault =
  /** Close the connection without answering. */
  | 'drop'
  /** Send the reply header and half of the data, then close. */
  | 'drop-mid-data'
  /** Answer with this result and no data. */
  | { result: number };

export interface FakeVdi {
  name: string;
  tag?: string;
  vid: number;
  parent: number;
  snapId: number;
  size: number;
  blockSizeShift?: number;
  copies?: number;
  /** A snapshot (snap_ctime ≠ 0) or the working VDI. */
  snapshot: boolean;
  /** data_vdi_id[]: the owner of each object, 0 = unallocated. */
  slots: number[];
  createTime?: bigint;
}

/** sheep's hash of a VDI name: FNV-1a 64 over the name's bytes, masked to 24 bits. */
export function sheepVdiHash(name: string): number {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(name)) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(hash & BigInt(SD_NR_VDIS - 1));
}

export class FakeSheep {
  /** Inode objects by VDI id: the 4664-byte header and the slots after it. */
  readonly inodes = new Map<number, Buffer>();
  /** Data objects by oid. */
  readonly objects = new Map<bigint, Buffer>();
  readonly requests: SheepRequest[] = [];
  /** Called for every request; return a fault to misbehave. */
  fault: ((request: SheepRequest, count: number) => SheepFault | undefined) | undefined;
  /** Answer pipelined requests in reverse order when several arrive together. */
  reorder = false;
  epoch = 1;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #clock = 1_700_000_000n;

  /** Adds a VDI inode (a snapshot or the working VDI). */
  addVdi(vdi: FakeVdi): void {
    const shift = vdi.blockSizeShift ?? 22;
    const inode = Buffer.alloc(
      INODE_HEADER + 4 * Math.max(vdi.slots.length, Math.ceil(vdi.size / 2 ** shift)),
    );
    inode.write(vdi.name, 0, 255, 'utf8');
    inode.write(vdi.tag ?? '', 256, 255, 'utf8');
    const created = vdi.createTime ?? this.#tick();
    inode.writeBigUInt64LE(created, 512);
    inode.writeBigUInt64LE(vdi.snapshot ? this.#tick() : 0n, 520);
    inode.writeBigUInt64LE(BigInt(vdi.size), 536);
    inode[554] = vdi.copies ?? 1;
    inode[555] = shift;
    inode.writeUInt32LE(vdi.snapId, 556);
    inode.writeUInt32LE(vdi.vid, 560);
    inode.writeUInt32LE(vdi.parent, 564);
    vdi.slots.forEach((owner, idx) => {
      inode.writeUInt32LE(owner, INODE_HEADER + 4 * idx);
    });
    this.inodes.set(vdi.vid, inode);
  }

  /** Stores a data object's bytes (whole object). */
  addObject(vid: number, idx: number, bytes: Buffer): void {
    this.objects.set(dataOid(vid, idx), Buffer.from(bytes));
  }

  /** The decoded facts of an inode, for assertions. */
  inode(vid: number) {
    const inode = this.inodes.get(vid);
    if (!inode) return undefined;
    const shift = inode[555] || 22;
    const size = Number(inode.readBigUInt64LE(536));
    const count = Math.ceil(size / 2 ** shift);
    const slots: number[] = [];
    for (let idx = 0; idx < count; idx++) slots.push(readSlot(inode, idx));
    return {
      name: cString(inode, 0),
      tag: cString(inode, 256),
      snapshot: inode.readBigUInt64LE(520) !== 0n,
      size,
      copies: inode[554] as number,
      blockSizeShift: shift,
      snapId: inode.readUInt32LE(556),
      vid: inode.readUInt32LE(560),
      parent: inode.readUInt32LE(564),
      slots,
    };
  }

  /** The bytes of `length` at `offset` of a VDI, read through its slots. */
  readVdi(vid: number, offset: number, length: number): Buffer {
    const facts = this.inode(vid);
    if (!facts) throw new Error(`no VDI ${vid.toString(16)}`);
    const objectSize = 2 ** facts.blockSizeShift;
    const out = Buffer.alloc(length);
    for (let at = 0; at < length; ) {
      const position = offset + at;
      const idx = Math.floor(position / objectSize);
      const inObject = position - idx * objectSize;
      const take = Math.min(length - at, objectSize - inObject);
      const owner = facts.slots[idx] ?? 0;
      const object = owner === 0 ? undefined : this.objects.get(dataOid(owner, idx));
      object?.copy(out, at, inObject, inObject + take);
      at += take;
    }
    return out;
  }

  async listen(port = 0): Promise<number> {
    const server = createServer((socket) => this.#serve(socket));
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const address = server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.#server ? this.#server.close(() => resolve()) : resolve(),
    );
  }

  #tick(): bigint {
    this.#clock += 1n;
    return this.#clock << 32n;
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let held: Array<[SheepRequest, Buffer[]]> = [];
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const batch: Array<[SheepRequest, Buffer[]]> = [];
      for (;;) {
        if (buffer.byteLength < HEADER) break;
        const header = buffer.subarray(0, HEADER);
        const flags = header.readUInt16LE(2);
        const dataLength = header.readUInt32LE(12);
        const payloadLength = flags & 0x01 ? dataLength : 0;
        if (buffer.byteLength < HEADER + payloadLength) break;
        const request: SheepRequest = {
          header: Buffer.from(header),
          opcode: header[1] as number,
          flags,
          id: header.readUInt32LE(8),
          dataLength,
          payload: Buffer.from(buffer.subarray(HEADER, HEADER + payloadLength)),
        };
        buffer = buffer.subarray(HEADER + payloadLength);
        this.requests.push(request);
        const fault = this.fault?.(request, this.requests.length);
        if (fault === 'drop') {
          socket.destroy();
          return;
        }
        const reply =
          typeof fault === 'object' ? [this.#reply(request, fault.result)] : this.#handle(request);
        if (fault === 'drop-mid-data') {
          const [head, data] = reply;
          socket.write(head as Buffer);
          if (data) socket.write(data.subarray(0, data.byteLength >> 1));
          socket.destroy();
          return;
        }
        batch.push([request, reply]);
      }
      held = batch;
      const order = this.reorder ? [...held].reverse() : held;
      for (const [, parts] of order) for (const part of parts) socket.write(part);
    });
  }

  #handle(request: SheepRequest): Buffer[] {
    const h = request.header;
    if ((h[0] as number) > 0x02) return [this.#reply(request, SheepResult.VER_MISMATCH)];
    switch (request.opcode) {
      case SheepOp.GET_VDI_INFO:
        return this.#getVdiInfo(request);
      case SheepOp.READ_OBJ:
        return this.#readObject(request);
      case SheepOp.WRITE_OBJ:
      case SheepOp.CREATE_AND_WRITE_OBJ:
        return [this.#writeObject(request)];
      case SheepOp.NEW_VDI:
        return [this.#newVdi(request)];
      case SheepOp.DEL_VDI:
        return [this.#delVdi(request)];
      case SheepOp.READ_VDIS: {
        if (request.dataLength !== SD_NR_VDIS / 8)
          return [this.#reply(request, SheepResult.INVALID_PARMS)];
        const bitmap = Buffer.alloc(SD_NR_VDIS / 8);
        for (const vid of this.inodes.keys())
          bitmap[vid >> 3] = (bitmap[vid >> 3] as number) | (1 << (vid & 7));
        return this.#replyData(request, bitmap);
      }
      default:
        return [this.#reply(request, SheepResult.INVALID_PARMS)];
    }
  }

  /** vdi_lookup: working VDI (no selector) or the snapshot with that id or tag. */
  #lookup(name: string, snapid: number, tag: string): { result: number; vid: number } {
    const candidates = [...this.inodes.keys()]
      .map((vid) => this.inode(vid))
      .filter((facts) => facts !== undefined && facts.name === name && name !== '');
    if (candidates.length === 0) return { result: SheepResult.NO_VDI, vid: 0 };
    if (snapid === 0 && tag === '') {
      const newest = candidates.reduce((a, b) => ((a?.snapId ?? 0) > (b?.snapId ?? 0) ? a : b));
      if (!newest || newest.snapshot) return { result: SheepResult.NO_VDI, vid: 0 };
      return { result: SheepResult.SUCCESS, vid: newest.vid };
    }
    const found = candidates.find((facts) =>
      tag !== '' ? facts?.tag === tag : facts?.snapId === snapid,
    );
    return found
      ? { result: SheepResult.SUCCESS, vid: found.vid }
      : { result: SheepResult.NO_TAG, vid: 0 };
  }

  #getVdiInfo(request: SheepRequest): Buffer[] {
    if (
      !(request.flags & 0x01) ||
      (request.payload.byteLength !== 256 && request.payload.byteLength !== 512)
    ) {
      return [this.#reply(request, SheepResult.INVALID_PARMS)];
    }
    const name = cString(request.payload, 0);
    const tag = request.payload.byteLength === 512 ? cString(request.payload, 256) : '';
    const { result, vid } = this.#lookup(name, request.header.readUInt32LE(32), tag);
    if (result !== SheepResult.SUCCESS) return [this.#reply(request, result)];
    const facts = this.inode(vid);
    return [
      this.#reply(request, result, {
        vid,
        copies: facts?.copies ?? 1,
        shift: facts?.blockSizeShift ?? 22,
      }),
    ];
  }

  #readObject(request: SheepRequest): Buffer[] {
    const oid = request.header.readBigUInt64LE(16);
    const offset = request.header.readUInt32LE(40);
    const length = request.dataLength;
    const source = isVdiOid(oid) ? this.inodes.get(oidVid(oid)) : this.objects.get(oid);
    if (!source) return [this.#reply(request, SheepResult.NO_OBJ)];
    // A read past the end still answers in full (zeros), as the real daemon did.
    const data = Buffer.alloc(length);
    source.copy(
      data,
      0,
      Math.min(offset, source.byteLength),
      Math.min(offset + length, source.byteLength),
    );
    return this.#replyData(request, data);
  }

  #writeObject(request: SheepRequest): Buffer {
    const h = request.header;
    const oid = h.readBigUInt64LE(16);
    const offset = h.readUInt32LE(40);
    if (!(request.flags & 0x01) || request.payload.byteLength !== request.dataLength) {
      return this.#reply(request, SheepResult.INVALID_PARMS);
    }
    if (isVdiOid(oid)) {
      const vid = oidVid(oid);
      let inode = this.inodes.get(vid);
      if (!inode) return this.#reply(request, SheepResult.NO_OBJ);
      if (offset + request.dataLength > inode.byteLength) {
        const grown = Buffer.alloc(offset + request.dataLength);
        inode.copy(grown);
        inode = grown;
        this.inodes.set(vid, inode);
      }
      request.payload.copy(inode, offset);
      return this.#reply(request, SheepResult.SUCCESS);
    }
    const facts = this.inode(oidVid(oid));
    const objectSize = 2 ** (facts?.blockSizeShift ?? 22);
    if (offset + request.dataLength > objectSize)
      return this.#reply(request, SheepResult.INVALID_PARMS);
    let object = this.objects.get(oid);
    if (request.opcode === SheepOp.CREATE_AND_WRITE_OBJ) {
      const cow = request.flags & 0x02 ? this.objects.get(h.readBigUInt64LE(24)) : undefined;
      if (request.flags & 0x02 && !cow) return this.#reply(request, SheepResult.NO_OBJ);
      object = cow ? Buffer.from(cow) : Buffer.alloc(objectSize);
      this.objects.set(oid, object);
    } else if (!object) {
      return this.#reply(request, SheepResult.NO_OBJ);
    }
    request.payload.copy(object, offset);
    return this.#reply(request, SheepResult.SUCCESS);
  }

  #newVdi(request: SheepRequest): Buffer {
    const h = request.header;
    if (request.payload.byteLength !== 256) return this.#reply(request, SheepResult.INVALID_PARMS);
    const name = cString(request.payload, 0);
    const size = Number(h.readBigUInt64LE(16));
    const base = h.readUInt32LE(24);
    const copies = h[28] || 1;
    const shift = h[31] || 22;
    const snapshot = h.readUInt32LE(32) !== 0;
    const same = [...this.inodes.keys()]
      .map((vid) => this.inode(vid))
      .filter((f) => f?.name === name);
    const newest = same.reduce<ReturnType<FakeSheep['inode']>>(
      (a, b) => ((a?.snapId ?? 0) > (b?.snapId ?? 0) ? a : b),
      undefined,
    );
    const baseInode = base === 0 ? undefined : this.inode(base);
    if (base !== 0 && !baseInode) return this.#reply(request, SheepResult.INVALID_PARMS);
    const vid = this.#freeVid(name);
    if (snapshot) {
      // The rebase path: the working VDI is frozen, a new one starts on `base`.
      if (!newest || newest.snapshot) return this.#reply(request, SheepResult.NO_VDI);
      (this.inodes.get(newest.vid) as Buffer).writeBigUInt64LE(this.#tick(), 520);
    } else if (newest && !newest.snapshot) {
      return this.#reply(request, SheepResult.VDI_EXIST);
    }
    this.addVdi({
      name,
      vid,
      parent: base,
      snapId: (newest?.snapId ?? 0) + 1,
      size,
      blockSizeShift: shift,
      copies,
      snapshot: false,
      slots: baseInode ? [...baseInode.slots] : [],
    });
    return this.#reply(request, SheepResult.SUCCESS, { vid, copies, shift });
  }

  #delVdi(request: SheepRequest): Buffer {
    const name = cString(request.payload, 0);
    const tag = request.payload.byteLength >= 512 ? cString(request.payload, 256) : '';
    const { result, vid } = this.#lookup(name, request.header.readUInt32LE(32), tag);
    if (result !== SheepResult.SUCCESS) return this.#reply(request, result);
    const inode = this.inodes.get(vid) as Buffer;
    inode.fill(0, 0, 512);
    inode.writeBigUInt64LE(0n, 536);
    return this.#reply(request, SheepResult.SUCCESS, { vid, copies: 0, shift: 0 });
  }

  #freeVid(name: string): number {
    let vid = sheepVdiHash(name) || 1;
    while (this.inodes.has(vid)) vid = (vid + 1) % SD_NR_VDIS || 1;
    return vid;
  }

  #reply(
    request: SheepRequest,
    result: number,
    vdi?: { vid: number; copies: number; shift: number },
  ): Buffer {
    const rsp = Buffer.alloc(HEADER);
    rsp[1] = request.opcode;
    rsp.writeUInt32LE(this.epoch, 4);
    rsp.writeUInt32LE(request.id, 8);
    rsp.writeUInt32LE(result, 16);
    if (vdi) {
      rsp.writeUInt32LE(vdi.vid, 24);
      rsp[32] = vdi.copies;
      rsp[33] = vdi.shift;
    }
    return rsp;
  }

  #replyData(request: SheepRequest, data: Buffer): Buffer[] {
    const rsp = this.#reply(request, SheepResult.SUCCESS);
    rsp.writeUInt32LE(data.byteLength, 12);
    rsp.writeBigUInt64LE(BigInt(request.header.readUInt32LE(40)), 24);
    return [rsp, data];
  }
}

function dataOid(vid: number, idx: number): bigint {
  return (BigInt(vid) << 32n) | BigInt(idx);
}

function isVdiOid(oid: bigint): boolean {
  return (oid & (1n << 63n)) !== 0n;
}

function oidVid(oid: bigint): number {
  return Number((oid >> 32n) & 0xffffffn);
}

function readSlot(inode: Buffer, idx: number): number {
  const at = INODE_HEADER + 4 * idx;
  return at + 4 <= inode.byteLength ? inode.readUInt32LE(at) : 0;
}

function cString(bytes: Buffer, offset: number): string {
  const field = bytes.subarray(offset, offset + 256);
  const nul = field.indexOf(0);
  return field.toString('utf8', 0, nul === -1 ? field.byteLength : nul);
}
