#!/usr/bin/env bash
# Builds the engine module with sanitizers into build/<kind>/ and runs pytest against it.
#   scripts/sanitized-tests.sh asan|tsan [pytest arguments...]
# asan: AddressSanitizer + UndefinedBehaviorSanitizer; tsan: ThreadSanitizer. Any report fails the
# run. FFmpeg and Python themselves are not instrumented: the reports are about the engine's code.
set -euo pipefail
kind=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
py=$root/.venv/bin/python
dir=$root/build/$kind

case $kind in
  asan)
    flags="-fsanitize=address,undefined -fno-sanitize-recover=all"
    runtime=libasan.so
    # Python keeps objects alive until exit by design: leak checking would report only those.
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_init_order=1:log_path=$dir/report
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$dir/report
    ;;
  tsan)
    flags="-fsanitize=thread"
    runtime=libtsan.so
    # FFmpeg, x264 and Python are not instrumented: TSan cannot see the atomics behind their
    # reference counts and frame-thread hand-offs, and would report every frame freed on another
    # thread than the one that wrote it. Races are checked in the engine's own code only (their
    # locks and thread starts still order it).
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:log_path=$dir/report
    ;;
  *)
    echo "usage: $0 asan|tsan [pytest arguments...]" >&2
    exit 2
    ;;
esac

cmake -S "$root" -B "$dir/cmake" -DFRAMEPRESS_PYTHON_MODULE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
  -DPython_EXECUTABLE="$py" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$dir/cmake" -j "$(nproc)"

# A package tree of the live Python sources with this module as framepress._engine, and a venv
# that sees it ahead of the project venv's packages (whose editable finder it does not load).
rm -rf "$dir/site"
mkdir -p "$dir/site"
cp -rs "$root/python/framepress" "$dir/site/"
cp "$dir"/cmake/_engine*.so "$dir/site/framepress/"
[ -x "$dir/venv/bin/python" ] || python3 -m venv --without-pip "$dir/venv"
purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'; }
printf '%s\n%s\n' "$dir/site" "$(purelib "$py")" >"$(purelib "$dir/venv/bin/python")/framepress-sanitized.pth"

# The sanitizer runtime must come first; libstdc++ with it, so that its exception interceptors
# find the real functions (python itself does not link libstdc++).
export LD_PRELOAD
LD_PRELOAD="$(g++ -print-file-name="$runtime") $(g++ -print-file-name=libstdc++.so)"
rm -f "$dir"/report.*
cd "$root"
status=0
"$dir/venv/bin/python" -m pytest -p no:cacheprovider "$@" || status=$?
# Reports go to files (pytest captures stderr, and loses it when a report aborts the process).
if compgen -G "$dir/report.*" >/dev/null; then
  cat "$dir"/report.*
  echo "$kind: sanitizer reports above (also in $dir/report.*)" >&2
  exit 1
fi
exit $status
