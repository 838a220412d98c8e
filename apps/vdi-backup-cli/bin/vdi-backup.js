#!/usr/bin/env node
// The compile cache (Node >= 22.1; absent on 20) spares re-compiling the bundle on every
// run. It never throws: a cache directory that cannot be written just leaves it off.
import module from 'node:module';

module.enableCompileCache?.();
// Dynamic, so the cache is on before the bundle is compiled (static imports load first).
await import('../dist/bundle/main.js');
