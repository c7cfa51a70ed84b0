#!/usr/bin/env bash
# npm run test:asan: builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into its
# own directory (build/ is never touched) and runs the whole vitest suite against that binary.
#   - the build: scripts/build-variant.sh <dir> -DQKV_SANITIZE=ON (cmake-js, CMakeLists.txt's option)
#   - the binary: lib/backend/native.ts loads QKV_ADDON_PATH before anything else
#   - node runs with libasan preloaded (node itself is not instrumented; the addon is)
#   - any ASan report or UB aborts the process (halt_on_error, -fno-sanitize-recover); leaks are
#     checked at exit, except the ones of vite's own native module (rolldown-binding, not ours)
# Prints vitest's closing "N passed, N failed, N skipped" line; exit status 0 only when all passed.
# QKV_ASAN_DIR: where to build (default: a per-user temp directory, rebuilt every run).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dir="${QKV_ASAN_DIR:-${TMPDIR:-/tmp}/qkv-asan-$(id -u)}"

echo "== building the ASan+UBSan addon in $dir"
if ! scripts/build-variant.sh "$dir" -DQKV_SANITIZE=ON >"$dir.log" 2>&1; then
  tail -40 "$dir.log"
  echo "ASan build failed (log: $dir.log)"
  echo "0 passed, 1 failed"
  exit 1
fi
addon="$dir/build/Release/qkv.node"

libasan="$(gcc -print-file-name=libasan.so)"
if [ ! -e "$libasan" ]; then
  echo "libasan.so not found (gcc -print-file-name=libasan.so gave '$libasan')"
  echo "0 passed, 1 failed"
  exit 1
fi

supp="$dir/lsan.supp"
printf 'leak:rolldown-binding\nleak:librolldown\n' >"$supp"
reports="$dir/reports"
rm -rf "$reports" && mkdir -p "$reports"
export QKV_ADDON_PATH="$addon"
export QKV_EXPECT_BACKEND=native
export QKV_SANITIZED=1
export LD_PRELOAD="$libasan"
# Reports go to files (one per process), read below: tests that spawn child processes keep their
# stdout/stderr, and a child that exits on an uncaught error (where Node does not tear V8 down,
# so V8's pages "leak") does not fail on leaks that are not ours.
# allocator_may_return_null: a huge allocation returns null (std::bad_alloc / a RangeError in V8)
# instead of an ASan abort, so the out-of-memory tests test our handling, not ASan's.
export ASAN_OPTIONS="log_path=$reports/asan:halt_on_error=1:abort_on_error=1:detect_leaks=1:allocator_may_return_null=1:print_summary=1"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0:exitcode=0"
export UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1"

# The suite must really be running the sanitized binary, not a fallback.
if ! node --import tsx --input-type=module -e "
  import { readFileSync } from 'node:fs';
  const { nativeBinding } = await import('./lib/backend/select.ts');
  const maps = readFileSync('/proc/self/maps', 'utf8');
  if (!nativeBinding || !maps.includes(process.env.QKV_ADDON_PATH)) {
    console.error('the sanitized addon did not load: ' + process.env.QKV_ADDON_PATH);
    process.exit(1);
  }
  console.log('sanitized addon loaded: ' + process.env.QKV_ADDON_PATH);
"; then
  echo "0 passed, 1 failed"
  exit 1
fi

echo "== vitest against the sanitized addon"
log="$(mktemp)"
node node_modules/vitest/vitest.mjs run "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Sanitizer reports: any ASan error or UB fails the run; a leak fails it when the addon made the
# allocation: the allocator's caller (frame #1, or #2 when #1 is in libstdc++) is in qkv.node.
# Other leaks are Node's and V8's own at exit (a process that exits without tearing V8 down, even
# when a V8 object was created on the addon's behalf, e.g. a property set while it registers):
# they are counted, not failed.
ours=0; theirs=0
for f in "$reports"/*; do
  [ -e "$f" ] || continue
  if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$f"; then
    echo "== sanitizer error ($f)"; head -60 "$f"; ours=$((ours + 1)); continue
  fi
  if grep -q 'ERROR: LeakSanitizer' "$f"; then
    ours_awk='function allocated_by_addon(block,   n, lines, i, f1, f2) {
        n = split(block, lines, "\n"); f1 = ""; f2 = "";
        for (i = 1; i <= n; i++) { if (lines[i] ~ /^ *#1 /) f1 = lines[i]; if (lines[i] ~ /^ *#2 /) f2 = lines[i]; }
        if (f1 ~ /libstdc\+\+/) f1 = f2;
        return f1 ~ /qkv\.node|qkv::|\/native\//;
      }
      BEGIN { RS = "" } /(Direct|Indirect) leak/ && allocated_by_addon($0)'
    n=$(awk "$ours_awk"' {c++} END {print c+0}' "$f")
    if [ "$n" -gt 0 ]; then
      echo "== $n leak(s) allocated by the addon ($f)"
      awk "$ours_awk"' {print; print ""}' "$f" | head -80
      ours=$((ours + 1))
    else
      theirs=$((theirs + 1))
    fi
  fi
done
echo "sanitizer reports: $ours against the addon, $theirs leak reports of Node/V8 itself (ignored; processes that exited on an error)"
[ $ours -eq 0 ] || rc=1
summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)"
rm -f "$log"
if [ -z "$summary" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
if [ $rc -ne 0 ] && echo "$summary" | grep -qE '^[0-9]+ passed, 0 failed'; then
  # vitest failed outside any test (a crashed fork, a sanitizer report at exit): count it.
  passed="${summary%% passed*}"
  echo "$passed passed, 1 failed"
  exit 1
fi
exit $rc
