#!/usr/bin/env bash
# Verify a built wheel on a GPU machine whose torch is already installed and that
# has no package index: ci/run_installed.py installs the wheel with --no-deps next
# to that torch, runs the whole suite and writes a report cell; then the environment
# report, then the CUDA op tests again under compute-sanitizer memcheck. Logs and
# the cell JSON go to $OUT (or ./gpu-logs).
#
#   ci/gpu_verify.sh path/to/stablekernels-*.whl [--no-sanitizer]
set -uo pipefail
wheel="$1"; shift
sanitize=1
[[ "${1:-}" == "--no-sanitizer" ]] && sanitize=0
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${OUT:-$root/gpu-logs}"; mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1

echo "== wheel $(basename "$wheel") sha256 $(sha256sum "$wheel" | cut -d' ' -f1)"
# installs the wheel with --no-deps --no-index, runs the suite, writes a report cell
"$py" "$root/ci/run_installed.py" "$wheel" --out "$out" 2>&1 | tee "$out/pytest.txt" | tail -n 25
rc=${PIPESTATUS[0]}
(cd /tmp && "$py" -m stablekernels) | tee "$out/report.txt"
pytest=("$py" -m pytest -c "$root/pyproject.toml" --rootdir "$root" -p no:cacheprovider)
if (( sanitize )); then
  (cd "$root" && compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 \
      "${pytest[@]}" tests/ops tests/test_bad_inputs.py -q -m cuda 2>&1) | tee "$out/memcheck.txt" | tail -n 8
  src=${PIPESTATUS[0]}
  echo "== compute-sanitizer exit code $src"
  (( src != 0 )) && rc=$src
fi
exit "$rc"
