export {
  allocatedBytes,
  filesEqual,
  pokeBytes,
  pokeU32BE,
  pokeU64BE,
  readBytes,
  readU32BE,
  readU64BE,
  seededBytes,
  sha256File,
} from './bytes.js';
export { type ClosedReaderResult, runWithClosedReader } from './closed-reader.js';
export {
  FakeSheep,
  type FakeVdi,
  type SheepFault,
  SheepOp,
  type SheepRequest,
  SheepResult,
  sheepVdiHash,
} from './fake-sheep.js';
export { cachedFixture } from './fixture-cache.js';
export { FUZZ_SEED, FuzzOutcomes, fuzzParameters, type TypedFailure } from './fuzz.js';
export { findPeer, type PeerResult, requirePeer, runPeer, runPeerOk } from './peers.js';
export {
  describeReadmeExamples,
  type ReadmeExample,
  type ReadmeSuiteOptions,
  type RunExampleOptions,
  readmeExamples,
  runReadmeExample,
} from './readme-examples.js';
export { type BinResult, runBin } from './run-bin.js';
export { sharedFixtureDirectory } from './shared-fixtures.js';
export { type SshdOptions, type SshdServer, startSshd } from './sshd.js';
export { makeTempDir, type TempDir } from './temp-dir.js';
