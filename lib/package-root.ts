// Where the package is installed, for the two files that need it (lib/backend/native.ts: the addon;
// lib/backend/version.ts: package.json). This is the only module that uses import.meta: the CommonJS build
// (scripts/build-cjs.cjs) replaces its compiled form in dist/cjs/ with one based on __dirname,
// because import.meta is a syntax error in a CommonJS module.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The package root: this file is lib/package-root.ts in the source tree, dist/package-root.js when built. */
// @ts-ignore TS1343 in the CommonJS program only (tsconfig.cjs.json), whose output of this file is replaced
export const packageRoot: string = fileURLToPath(new URL('..', import.meta.url));

/** A require() for .node binaries and JSON files, resolving relative to this module. */
// @ts-ignore as above
export const packageRequire: (id: string) => unknown = createRequire(import.meta.url);
