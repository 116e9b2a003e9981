# SPDX-License-Identifier: Apache-2.0
"""The CPU quantizers' float32 -> float8_e4m3fn conversion (fp8_e4m3_bits in
csrc/ops/quantization/quantization_math.h) against a reference built from the format's
definition, for every float32 bit pattern (fp8_convert_check.cpp). About half a minute on
two cores; exhaustive on purpose."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECK = HERE / "fp8_convert_check.cpp"
CSRC = HERE.parent.parent / "csrc"
CXXFLAGS = ["-O2", "-fopenmp", "-std=c++17", f"-I{CSRC}", f"-I{CSRC / 'include'}"]
SUMMARY = re.compile(r"^(\d+) mismatches of (\d+) floats$", flags=re.M)


def test_every_float_converts_as_the_reference(tmp_path: Path) -> None:
    # CI has g++: a missing compiler is a broken machine, so it fails (FileNotFoundError)
    # rather than skipping the check
    gxx = shutil.which("g++") or "g++"
    exe = tmp_path / "fp8_convert_check"
    build = subprocess.run(
        [gxx, *CXXFLAGS, CHECK, "-o", exe], capture_output=True, text=True, check=False
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([exe], capture_output=True, text=True, timeout=1800, check=False)
    assert SUMMARY.findall(run.stdout) == [("0", str(1 << 32))], run.stdout + run.stderr
    assert run.returncode == 0, run.stdout + run.stderr
