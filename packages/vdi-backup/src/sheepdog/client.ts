import { connect, type Socket } from 'node:net';
import { Semaphore } from '@x/blockio';
import { VdiBackupError } from '../errors.js';
import {
  OPCODE_NAMES,
  objectRequest,
  type Response,
  response,
  resultName,
  SD_FLAG_CMD_WRITE,
  SD_HEADER_SIZE,
  SD_PROTO_VER,
  vdiRequest,
} from './protocol.js';

export interface SheepAddress {
  host: string;
  port: number;
}

export interface SheepClientOptions {
  /** Requests in flight on the connection (sheep answers them as they complete). Default 4. */
  inFlight?: number | undefined;
  /** A request unanswered this long fails (ms). Default 60 s. */
  timeoutMs?: number | undefined;
  /** Used in error messages; default `sheepdog://host:port`. */
  name?: string | undefined;
}

/** The fields of a request besides proto_ver, id and data_length, which the client sets. */
export type RequestFields =
  | ({ layout: 'obj' } & Partial<
      Omit<ReturnType<typeof objectRequest.decode>, 'protoVer' | 'id' | 'dataLength'>
    >)
  | ({ layout: 'vdi' } & Partial<
      Omit<ReturnType<typeof vdiRequest.decode>, 'protoVer' | 'id' | 'dataLength'>
    >);

export interface SheepReply {
  rsp: Response;
  data: Buffer;
}

interface Pending {
  what: string;
  resolve(reply: SheepReply): void;
  reject(error: Error): void;
}

/**
 * One TCP connection to a sheep daemon. Requests are pipelined (at most `inFlight`) and
 * matched to replies by the `id` field, which sheep echoes. Any protocol violation, a
 * closed connection or a timeout fails every request in flight with a typed error.
 */
export class SheepClient {
  readonly name: string;
  readonly #socket: Socket;
  readonly #slots: Semaphore;
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number;
  #nextId = 1;
  #buffer: Buffer = Buffer.alloc(0);
  #header: Response | undefined;
  #failure: VdiBackupError | undefined;

  private constructor(socket: Socket, name: string, options: SheepClientOptions) {
    this.#socket = socket;
    this.name = name;
    this.#slots = new Semaphore(options.inFlight ?? 4);
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) =>
      this.#fail(
        new VdiBackupError('SHEEP_PROTOCOL', `the connection failed: ${error.message}`, {
          path: this.name,
          cause: error,
        }),
      ),
    );
    socket.on('close', () =>
      this.#fail(
        new VdiBackupError('SHEEP_PROTOCOL', 'the sheep daemon closed the connection', {
          path: this.name,
        }),
      ),
    );
    socket.setTimeout(this.#timeoutMs, () => {
      if (this.#pending.size === 0) return;
      this.#fail(
        new VdiBackupError(
          'SHEEP_PROTOCOL',
          `no reply from the sheep daemon in ${this.#timeoutMs / 1000} s`,
          { path: this.name },
        ),
      );
      socket.destroy();
    });
  }

  static connect(address: SheepAddress, options: SheepClientOptions = {}): Promise<SheepClient> {
    const name = options.name ?? `sheepdog://${address.host}:${address.port}`;
    return new Promise((resolve, reject) => {
      const socket = connect({ host: address.host, port: address.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new VdiBackupError('SHEEP_UNREACHABLE', 'connecting to the sheep daemon timed out', {
            path: name,
          }),
        );
      }, options.timeoutMs ?? 60_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new SheepClient(socket, name, options));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(
          new VdiBackupError('SHEEP_UNREACHABLE', `cannot connect: ${error.message}`, {
            path: name,
            cause: error,
          }),
        );
      });
    });
  }

  /**
   * Sends one request (payload only with the WRITE flag) and resolves to the reply; a
   * non-zero result is a SHEEP_ERROR naming `what` and the result.
   */
  async request(
    fields: RequestFields,
    payload: Uint8Array | undefined,
    what: string,
    options: { readLength?: number; acceptResults?: readonly number[] } = {},
  ): Promise<SheepReply> {
    await this.#slots.acquire();
    try {
      if (this.#failure) throw this.#failure;
      const id = this.#nextId++;
      if (this.#nextId > 0xffffffff) this.#nextId = 1;
      const dataLength = payload?.byteLength ?? options.readLength ?? 0;
      const common = { protoVer: SD_PROTO_VER, id, dataLength, epoch: 0 };
      const header =
        fields.layout === 'obj'
          ? objectRequest.encode({
              opcode: 0,
              flags: 0,
              oid: 0n,
              cowOid: 0n,
              copies: 0,
              copyPolicy: 0,
              ecIndex: 0,
              tgtEpoch: 0,
              offset: 0,
              ...withoutLayout(fields),
              ...common,
            })
          : vdiRequest.encode({
              opcode: 0,
              flags: 0,
              vdiSize: 0n,
              baseVdiId: 0,
              copies: 0,
              copyPolicy: 0,
              storePolicy: 0,
              blockSizeShift: 0,
              snapid: 0,
              type: 0,
              ...withoutLayout(fields),
              ...common,
            });
      const reply = new Promise<SheepReply>((resolve, reject) => {
        this.#pending.set(id, { what, resolve, reject });
      });
      this.#socket.write(header);
      if (payload && payload.byteLength > 0 && ((fields.flags ?? 0) & SD_FLAG_CMD_WRITE) !== 0) {
        this.#socket.write(payload);
      }
      const result = await reply;
      const accepted = options.acceptResults ?? [];
      if (result.rsp.result !== 0 && !accepted.includes(result.rsp.result)) {
        const op =
          OPCODE_NAMES[fields.opcode ?? 0] ?? `opcode 0x${(fields.opcode ?? 0).toString(16)}`;
        throw new VdiBackupError(
          'SHEEP_ERROR',
          `${op} of ${what} failed: ${resultName(result.rsp.result)}`,
          { path: this.name, structure: what },
        );
      }
      return result;
    } finally {
      this.#slots.release();
    }
  }

  async close(): Promise<void> {
    if (this.#socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.#socket.once('close', () => resolve());
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), 1000).unref();
    });
  }

  #receive(chunk: Buffer): void {
    this.#buffer = this.#buffer.byteLength === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (this.#header === undefined) {
        if (this.#buffer.byteLength < SD_HEADER_SIZE) return;
        this.#header = response.decode(this.#buffer.subarray(0, SD_HEADER_SIZE));
        this.#buffer = this.#buffer.subarray(SD_HEADER_SIZE);
        if (!this.#pending.has(this.#header.id)) {
          this.#fail(
            new VdiBackupError(
              'SHEEP_PROTOCOL',
              `a reply with id ${this.#header.id} answers no request in flight`,
              { path: this.name, structure: 'sd_rsp' },
            ),
          );
          this.#socket.destroy();
          return;
        }
      }
      const header = this.#header;
      if (this.#buffer.byteLength < header.dataLength) return;
      const data = Buffer.from(this.#buffer.subarray(0, header.dataLength));
      this.#buffer = this.#buffer.subarray(header.dataLength);
      this.#header = undefined;
      const pending = this.#pending.get(header.id) as Pending;
      this.#pending.delete(header.id);
      pending.resolve({ rsp: header, data });
    }
  }

  #fail(error: VdiBackupError): void {
    this.#failure ??= error;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(
        new VdiBackupError(
          error.code as 'SHEEP_PROTOCOL',
          `${error.message} (during ${pending.what})`,
          {
            path: this.name,
            structure: pending.what,
          },
        ),
      );
    }
  }
}

function withoutLayout<T extends { layout: string }>(fields: T): Omit<T, 'layout'> {
  const { layout: _layout, ...rest } = fields;
  return rest;
}
