import { TapeRestoreError } from '../errors.js';
import { MAX_LABEL_JSON_SIZE, MediaContentHeader } from '../format/content-header.js';
import {
  type ContentKind,
  contentKindOf,
  PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0,
  sameBytes,
} from '../format/magics.js';
import type { TapeFileReader } from '../tape/tape-file-reader.js';
import { formatUuid } from '../uuid.js';

/** The start of every tape file: its MediaContentHeader and JSON header (§1). */
export interface TapeContent {
  readonly kind: ContentKind;
  /** The content uuid of this tape file (what catalogs record in A/E/S). */
  readonly uuid: string;
  readonly ctime: bigint;
  /** The parsed JSON header data. */
  readonly header: Record<string, unknown>;
}

/** Largest JSON header accepted for archives (labels: §1's 65536). */
const MAX_HEADER_JSON = 1 << 20;

/** Reads the MediaContentHeader and its JSON from the start of a tape file. */
export async function readTapeContent(reader: TapeFileReader): Promise<TapeContent> {
  const headerBytes = await reader.readExact(MediaContentHeader.size, 'MediaContentHeader');
  const at = reader.where('MediaContentHeader');
  const header = MediaContentHeader.decode(headerBytes);
  const atHeader = { ...at, offset: Number(at.offset) - MediaContentHeader.size };
  if (!sameBytes(header.magic, PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0)) {
    throw new TapeRestoreError(
      'BAD_MAGIC',
      'the tape file does not start with a MediaContentHeader magic',
      atHeader,
    );
  }
  const kind = contentKindOf(header.contentMagic);
  if (kind === undefined) {
    throw new TapeRestoreError(
      'BAD_MAGIC',
      `unknown content magic ${Buffer.from(header.contentMagic).toString('hex')}`,
      atHeader,
    );
  }
  const isLabel = kind === 'media-label' || kind === 'media-set-label';
  const limit = isLabel ? MAX_LABEL_JSON_SIZE : MAX_HEADER_JSON;
  if ((isLabel && header.size < 1) || header.size > limit) {
    throw new TapeRestoreError(
      'BAD_HEADER',
      `the JSON header size ${header.size} is outside 1..${limit}`,
      atHeader,
    );
  }
  const jsonWhere = reader.where('content header JSON');
  const jsonBytes = await reader.readExact(header.size, 'content header JSON');
  let json: unknown;
  try {
    json = JSON.parse(jsonBytes.toString('utf8'));
  } catch (error) {
    throw new TapeRestoreError(
      'BAD_HEADER',
      `the ${kind} header is not JSON: ${(error as Error).message}`,
      {
        ...jsonWhere,
        cause: error,
      },
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TapeRestoreError('BAD_HEADER', `the ${kind} header is not a JSON object`, jsonWhere);
  }
  return {
    kind,
    uuid: formatUuid(header.uuid),
    ctime: header.ctime,
    header: json as Record<string, unknown>,
  };
}

/** A header's string field, or BAD_HEADER naming the tape file. */
export function headerString(content: TapeContent, reader: TapeFileReader, field: string): string {
  const value = content.header[field];
  if (typeof value !== 'string') {
    throw new TapeRestoreError(
      'BAD_HEADER',
      `the ${content.kind} header has no string "${field}"`,
      reader.where('content header JSON'),
    );
  }
  return value;
}
