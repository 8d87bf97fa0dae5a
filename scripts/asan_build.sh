# Sourced by scripts/sanitize.sh and scripts/fuzz.sh: configures build-asan/ (clang, ASan +
# UBSan, the libFuzzer targets) and names the targets.
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++ -DCOCO_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo ${COCO_ASAN_CMAKE_ARGS:-} > /dev/null
# Leaks are not reported: libtorch keeps its operator registry and thread pools until exit.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan_fuzz_targets() { sed -n 's/^ *set(COCO_FUZZ_TARGETS \(.*\))$/\1/p' fuzz/CMakeLists.txt; }
