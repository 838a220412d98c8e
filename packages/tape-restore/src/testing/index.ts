/**
 * Fixture support for tests, demos and benchmarks: builds PBS datastores and writes
 * them to media sets on virtual tapes as a PBS backup job would. It follows
 * pbs-tape.md independently of the restore's code paths (only the field tables are
 * shared), so a restore test checks the reader against a second reading of the spec.
 */
export {
  chunkDigest,
  type EncodeBlobOptions,
  encodeDataBlob,
  type FixtureKey,
  fixtureKey,
} from './blob-encoder.js';
export {
  DatastoreBuilder,
  type FixtureArchive,
  type FixtureSnapshot,
  fixtureSnapshotPath,
} from './datastore-builder.js';
export {
  type MediaSetSource,
  type WriteMediaSetOptions,
  type WrittenMediaSet,
  type WrittenTape,
  writeMediaSet,
} from './media-set-writer.js';
export { encodeFlatPxar, goodbyeOrder, type PxarWriterFile } from './pxar-writer.js';
export { BlockStreamWriter, copyTapeAsDump, VirtualTapeWriter } from './tape-writer.js';
export { encodeZstdFrame } from './zstd-frame.js';
