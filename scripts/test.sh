#!/usr/bin/env bash
# Runs every test: C++ (release, TSan, and clang ASan+UBSan beside the fuzz targets), the fuzz
# targets briefly, and Python.
#   FERRY_FUZZ_SECONDS=N   seconds per fuzz target (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
export PATH="$PWD/.venv/bin:$PATH"
jobs=$(nproc)
configure() {  # configure BUILD_DIR [cmake args...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DPython3_EXECUTABLE="$PWD/.venv/bin/python" "$@" >/dev/null
}

echo "== C++ tests (release)"
configure build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build/release -j "$jobs"
ctest --test-dir build/release -j "$jobs" --output-on-failure

echo "== C++ tests (ThreadSanitizer)"
# The pipeline, the loaders and the parallel readers under TSan. TSan cannot start threads in a
# child forked from a multi-threaded process, so the fork test runs in the builds above only.
configure build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_SANITIZE=thread \
  -DFERRY_BUILD_BENCH=OFF -DFERRY_BUILD_CLI=OFF -DFERRY_CUDA=OFF
cmake --build build/tsan -j "$jobs" --target ferry_tests
build/tsan/tests/ferry_tests --gtest_brief=1 --gtest_filter='-WindowSchedulerTest.WorksInAForkedChild'

echo "== C++ tests (AddressSanitizer + UndefinedBehaviorSanitizer, clang) and fuzz targets"
# One clang build serves both: FERRY_FUZZ instruments every target with ASan + UBSan, so the unit
# tests built beside the fuzzers are the sanitizer run. -O1 without NDEBUG keeps assert() on.
configure build/fuzz -DCMAKE_CXX_COMPILER=clang++-14 -DFERRY_FUZZ=ON -DFERRY_CUDA=OFF \
  -DFERRY_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g"
cmake --build build/fuzz -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build/fuzz -j "$jobs" --output-on-failure

echo "== fuzz targets (${FERRY_FUZZ_SECONDS:-20} s each, $jobs at a time)"
fuzz_one() {  # fuzz_one NAME: runs one target on its seeds; prints its result line
  local name=$1 work
  work=$(mktemp -d)
  # Text seeds are in git; binary ones are generated (fuzz/make_seeds.py).
  [[ -d fuzz/corpus/$name ]] && cp fuzz/corpus/"$name"/* "$work"/
  .venv/bin/python fuzz/make_seeds.py "$name" "$work"
  [[ -n $(ls -A "$work") ]] || { echo "fuzz target ${name}_fuzzer has no seeds"; return 1; }
  if ! build/fuzz/fuzz/${name}_fuzzer "$work" -max_total_time="${FERRY_FUZZ_SECONDS:-20}" \
      -print_final_stats=1 >"$work.log" 2>&1; then
    tail -n 40 "$work.log"
    echo "fuzz target ${name}_fuzzer failed; reproducer and log above"
    return 1
  fi
  echo "${name}_fuzzer: $(grep -o 'number_of_executed_units: [0-9]*' "$work.log") without a finding"
  rm -rf "$work" "$work.log"
}
pids=()
for target in fuzz/*_fuzzer.cc; do
  fuzz_one "$(basename "$target" _fuzzer.cc)" &
  pids+=($!)
  if (( ${#pids[@]} >= jobs )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

echo "== Python tests"
scripts/build.sh
# nanobind reports Python objects still alive at exit ("nanobind: leaked ..."): a leak is a failure.
log=$(mktemp)
status=0
# One process per core, each test file in one process (its module fixtures start once). A
# process's "leaked" report at exit reaches this log too.
python -m pytest -q -n "$jobs" --dist loadfile python/tests 2>&1 | tee "$log" || status=$?
if grep -q "nanobind: leaked" "$log"; then
  echo "nanobind reported leaked objects at exit (above)"
  status=1
fi
rm -f "$log"
exit "$status"
