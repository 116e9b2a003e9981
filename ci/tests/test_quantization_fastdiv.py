# SPDX-License-Identifier: Apache-2.0
"""The FP8 quantizers' fast division (Divider in csrc/ops/quantization/quantization_kernels.cuh)
against IEEE x / s, checked exhaustively on the host by quantization_fastdiv_check.cpp: every
bf16 and fp16 pair of its two sweeps gives the same fp8 bits. About a minute on two cores; the
exhaustive sweep is the point, so there is no smaller one."""

from __future__ import annotations

import re
from pathlib import Path

from host_checks import build_and_run

CHECK = Path(__file__).resolve().parent / "quantization_fastdiv_check.cpp"

# The program's flags (its header comment): -ffp-contract=off keeps every product and sum
# rounded on its own, as the device does; -mfma makes std::fma one instruction.
CXXFLAGS = ["-O2", "-mfma", "-ffp-contract=off", "-fopenmp", "-std=c++17"]

SUMMARY = re.compile(
    r"^(bf16|fp16): (\d+) mismatches \(A: (\d+) pairs, B: (\d+) pairs\)$", flags=re.M
)

# Sweep A: every x mantissa against every one of the 2^23 scale mantissas. Sweep B: all 65536
# 16-bit x against the scales m * 2^e (67 mantissas m) the kernels divide fast by: bf16 inside
# [2^-64, 2^64] (e in [-64, 63], and s = 2^64 itself), fp16 inside [2^-64, 64) (e in [-64, 5]).
MANTISSA_BITS = {"bf16": 7, "fp16": 10}
PAIRS_B = {"bf16": 65536 * (128 * 67 + 1), "fp16": 65536 * 70 * 67}


def test_fast_division_matches_ieee(tmp_path: Path) -> None:
    run = build_and_run(CHECK, CXXFLAGS, tmp_path, timeout=1800)
    summaries = {
        dtype: (int(bad), int(a), int(b)) for dtype, bad, a, b in SUMMARY.findall(run.stdout)
    }
    assert summaries == {
        dtype: (0, 1 << (bits + 23), PAIRS_B[dtype]) for dtype, bits in MANTISSA_BITS.items()
    }, run.stdout + run.stderr
    assert run.returncode == 0, run.stdout + run.stderr
