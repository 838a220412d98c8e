import type { CheckReport } from '../../src/index.js';

/** qemu-img check's verdict classes: what its exit code says. */
export type VerdictClass = 'clean' | 'leaks' | 'corruptions' | 'cannot-open';

/** qemu-img check's exit code as a class (0 clean, 3 leaks only, 2 corruptions, 1 failed). */
export function qemuVerdictClass(code: number): VerdictClass {
  return code === 0 ? 'clean' : code === 3 ? 'leaks' : code === 2 ? 'corruptions' : 'cannot-open';
}

/** Our verdict as one of qemu-img's classes (a set corrupt bit alone is "No errors" there). */
export function ourVerdictClass(report: CheckReport): VerdictClass {
  switch (report.verdict) {
    case 'clean':
    case 'flagged':
      return 'clean';
    case 'leaks':
      return 'leaks';
    case 'could-not-run':
      return 'cannot-open';
    default:
      return 'corruptions';
  }
}
