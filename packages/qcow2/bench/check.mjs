#!/usr/bin/env node
// Runs only the check rows (see check-case.mjs): node bench/check.mjs [--quick] [--runs N]
import { runCases } from '@x/bench';
import { checkCases } from './check-case.mjs';

await runCases(checkCases);
