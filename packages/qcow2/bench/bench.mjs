// @x/qcow2 benchmarks against qemu-img. Protocol and method: tools/bench/README.md;
// each case file documents its input and what is timed.
import { runCases } from '@x/bench';
import { checkCases } from './check-case.mjs';
import { convertCases } from './convert-cases.mjs';
import { startupCases } from './startup-case.mjs';

await runCases([...convertCases, ...checkCases, ...startupCases]);
