# SPDX-License-Identifier: Apache-2.0
"""FastDivU31 (csrc/include/stablekernels/rows.h), the CUDA kernels' division by a divisor fixed
at launch, against integer division: rows_fastdiv_check.cpp compiles the header on the host
and checks every divisor below 2^16 and a million larger ones at the dividends where a quotient
changes (about a second)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECK = HERE / "rows_fastdiv_check.cpp"
INCLUDE = HERE.parents[1] / "csrc" / "include"


def test_fast_division_matches_integer_division(tmp_path: Path) -> None:
    # CI has g++: a missing compiler is a broken machine, so it fails rather than skipping
    gxx = shutil.which("g++") or "g++"
    exe = tmp_path / "rows_fastdiv_check"
    build = subprocess.run(
        [gxx, "-O2", "-std=c++17", f"-I{INCLUDE}", CHECK, "-o", exe],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([exe], capture_output=True, text=True, timeout=300, check=False)
    summary = re.search(r"^(\d+) pairs, (\d+) mismatches$", run.stdout, flags=re.M)
    assert summary, run.stdout + run.stderr
    pairs, bad = int(summary[1]), int(summary[2])
    assert bad == 0 and run.returncode == 0, run.stdout
    assert pairs > 60_000_000  # every divisor of the sweep was reached
