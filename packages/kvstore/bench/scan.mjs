// One timed contender of bench.mjs: open a store with @x/kvstore and read every entry
// (what `ldb scan` and a plyvel iteration do), printing the count and bytes.
import { openKvStore } from '../dist/index.js';

const store = await openKvStore(process.argv[2]);
let entries = 0;
let bytes = 0;
for await (const { key, value } of store.entries()) {
  entries++;
  bytes += key.length + value.length;
}
await store.close();
console.log(`${entries} entries, ${bytes} bytes`);
