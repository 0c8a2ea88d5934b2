#!/usr/bin/env bash
# gpu_check.sh — everything worth doing in a few minutes on a machine with an NVIDIA GPU, in one call.
#
#   bash benchmarks/gpu_check.sh [--dry]        (from the repository root)
#
# Needs nvcc, CuPy, PyTorch, pybind11, compute-sanitizer and ncu already installed (no network).
# Parts, each under its own `timeout`, a failing part never stopping the rest (total ≤ 8 min):
#   build        pygan._cuda (nvcc) and pygan._cuda_emu in place              120 s
#   gpu-tests    every backend against numpy, the kernels on the GPU           100 s
#   memcheck     the GPU kernel tests under compute-sanitizer --tool memcheck   60 s
#   racecheck    the same under compute-sanitizer --tool racecheck              60 s
#   kernels      every kernel and W3 shape against cuBLAS / PyTorch             70 s
#   train-steps  W1 steps on the cupy and cuda backends against PyTorch CUDA    50 s
# Dry mode (--dry or PYGAN_GPU_CHECK_DRY=1) runs the CPU parts only: the emulator build and the
# kernel tests on the emulator (with its race check), and this script's own logic.
# Output in $OUT (default ./gpu_check_out): gpu_check.log (every part's output) and
# gpu_check.json ({"dry", "parts": [{"name", "rc", "seconds", "limit_s", "timed_out"}]}).
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
OUT="${OUT:-./gpu_check_out}"
mkdir -p "$OUT"
DRY="${PYGAN_GPU_CHECK_DRY:-0}"
[ "${1:-}" = "--dry" ] && DRY=1
PY="${PYTHON:-python3}"
LOG="$OUT/gpu_check.log"
PARTS="$OUT/.parts.tsv"
: > "$LOG"
: > "$PARTS"

part() {            # part NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    local start end rc
    start=$(date +%s.%N)
    echo "=== $name (limit ${limit}s): $*" >> "$LOG"
    timeout --kill-after=5 "$limit" "$@" >> "$LOG" 2>&1
    rc=$?
    end=$(date +%s.%N)
    echo "=== $name: exit $rc" >> "$LOG"
    printf "%s\t%s\t%s\t%s\n" "$name" "$rc" "$(awk "BEGIN { print $end - $start }")" "$limit" >> "$PARTS"
}

if [ "$DRY" = "1" ]; then
    part build 300 env PYGAN_CUDA=0 "$PY" setup.py build_ext --inplace
    part emulator-tests 300 "$PY" -m pytest -q -p no:cacheprovider tests/test_emulator.py
else
    part build 120 env PYGAN_CUDA=1 "$PY" setup.py build_ext --inplace
    part gpu-tests 100 "$PY" -m pytest -q -p no:cacheprovider tests/test_backends.py tests/test_cuda_emu.py \
        tests/test_cupy_backend.py -k "cuda or cupy or gpu"
    part memcheck 60 compute-sanitizer --tool memcheck --error-exitcode 1 "$PY" -m pytest -q -p no:cacheprovider \
        tests/test_cuda_emu.py -k gpu
    part racecheck 60 compute-sanitizer --tool racecheck --error-exitcode 1 "$PY" -m pytest -q -p no:cacheprovider \
        tests/test_cuda_emu.py -k gpu
    part kernels 70 "$PY" benchmarks/bench_kernels.py --quick --repeat 10
    part train-steps 50 "$PY" benchmarks/gpu_train_steps.py --steps 20
fi

"$PY" - "$PARTS" "$OUT/gpu_check.json" "$DRY" <<'PYEOF'
import json, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
parts = [{"name": n, "rc": int(rc), "seconds": round(float(s), 2), "limit_s": int(lim),
          "timed_out": int(rc) in (124, 137)} for n, rc, s, lim in rows]
json.dump({"dry": sys.argv[3] == "1", "parts": parts}, open(sys.argv[2], "w"), indent=1)
print(json.dumps({p["name"]: p["rc"] for p in parts}))
PYEOF
rm -f "$PARTS"
