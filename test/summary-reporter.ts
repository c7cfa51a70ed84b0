// Prints the closing `N passed, N failed, N skipped` line that CI reads (vitest has none), and
// before it one line saying what the suite ran on: the active backend with its kernel set, and the
// runners (test/helpers.ts) the backend-parametrized tests went through. The test workers report
// that (test/backend-selection.test.ts puts it in its task meta); this process loads no addon.
import type { Reporter, TestModule } from 'vitest/node';

declare module 'vitest' {
  interface TaskMeta {
    /** What the suite ran on: set by test/backend-selection.test.ts, printed below. */
    qkvTested?: { backend: string; simd: string; runners: string[] };
  }
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    let tested: string | undefined;
    for (const mod of testModules) {
      // A file that failed to load has no tests but must still count as a failure.
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
        const t = test.meta().qkvTested;
        if (t) tested = `tested: backend ${t.backend} (kernel set ${t.simd}); runners ${t.runners.join(', ')}`;
      }
    }
    process.stdout.write(`\n${tested ?? 'tested: backend not reported (test/backend-selection.test.ts did not run)'}\n`);
    process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
