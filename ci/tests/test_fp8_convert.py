# SPDX-License-Identifier: Apache-2.0
"""The CPU quantizers' float32 -> float8_e4m3fn conversion (fp8_e4m3_bits in
csrc/ops/quantization/quantization_math.h) against a reference built from the format's
definition, for every float32 bit pattern (fp8_convert_check.cpp). About half a minute on
two cores; exhaustive on purpose."""

from __future__ import annotations

import re
from pathlib import Path

from host_checks import build_and_run

HERE = Path(__file__).resolve().parent
CHECK = HERE / "fp8_convert_check.cpp"
CSRC = HERE.parent.parent / "csrc"
CXXFLAGS = ["-O2", "-fopenmp", "-std=c++17", f"-I{CSRC}", f"-I{CSRC / 'include'}"]
SUMMARY = re.compile(r"^(\d+) mismatches of (\d+) floats$", flags=re.M)


def test_every_float_converts_as_the_reference(tmp_path: Path) -> None:
    run = build_and_run(CHECK, CXXFLAGS, tmp_path, timeout=1800)
    assert SUMMARY.findall(run.stdout) == [("0", str(1 << 32))], run.stdout + run.stderr
    assert run.returncode == 0, run.stdout + run.stderr
