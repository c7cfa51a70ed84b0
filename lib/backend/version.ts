// The package's version, as info() reports it.
import { packageRequire, packageRoot } from '../package-root.js';

export const version = (packageRequire(`${packageRoot}/package.json`) as { version: string }).version;
