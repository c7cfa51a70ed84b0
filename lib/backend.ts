// The interface both kernel sets sit behind, and the TypeScript one. No side effects: importing
// this does not load the addon (lib/select.ts does).
import { createRequire } from 'node:module';
import { sdpaJs } from './js/sdpa.js';
import type { SdpaPlan } from './plan.js';
import type { BackendInfo, BackendName } from './types.js';

export interface Backend {
  readonly name: BackendName;
  sdpa(plan: SdpaPlan): void;
  info(): BackendInfo;
}

export const version = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

export const jsBackend: Backend = {
  name: 'js',
  sdpa: sdpaJs,
  info: () => ({ backend: 'js', simd: 'js', threads: 1, version }),
};
