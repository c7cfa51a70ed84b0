#!/usr/bin/env bash
# npm run test:soak: the bounded soak run (test/soak/soak.ts) with --expose-gc. Its last line is
# "N passed, N failed". QKV_SOAK_SCALE scales the call counts; QKV_SOAK_MAX_GROWTH_MIB the bound.
set -uo pipefail
cd "$(dirname "$0")/.."
exec node --expose-gc --import tsx test/soak/soak.ts "$@"
