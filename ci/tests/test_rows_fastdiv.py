# SPDX-License-Identifier: Apache-2.0
"""FastDivU31 (csrc/include/stablekernels/rows.h), the CUDA kernels' division by a divisor fixed
at launch, against integer division: rows_fastdiv_check.cpp compiles the header on the host
and checks every divisor below 2^16 and a million larger ones at the dividends where a quotient
changes (about a second)."""

from __future__ import annotations

import re
from pathlib import Path

from host_checks import build_and_run

HERE = Path(__file__).resolve().parent
CHECK = HERE / "rows_fastdiv_check.cpp"
INCLUDE = HERE.parents[1] / "csrc" / "include"


def test_fast_division_matches_integer_division(tmp_path: Path) -> None:
    run = build_and_run(CHECK, ["-O2", "-std=c++17", f"-I{INCLUDE}"], tmp_path, timeout=300)
    summary = re.search(r"^(\d+) pairs, (\d+) mismatches$", run.stdout, flags=re.M)
    assert summary, run.stdout + run.stderr
    pairs, bad = int(summary[1]), int(summary[2])
    assert bad == 0 and run.returncode == 0, run.stdout
    assert pairs > 60_000_000  # every divisor of the sweep was reached
