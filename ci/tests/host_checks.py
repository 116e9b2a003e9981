# SPDX-License-Identifier: Apache-2.0
"""The farm's host check programs (ci/tests/*_check.cpp): compiled with g++ and run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def build_and_run(
    source: Path, flags: list[str], tmp_path: Path, timeout: int
) -> subprocess.CompletedProcess[str]:
    """Compiles `source` with `flags` (a failed build fails the test) and runs it."""
    # CI has g++: a missing compiler is a broken machine, so it fails (FileNotFoundError)
    # rather than skipping the check
    gxx = shutil.which("g++") or "g++"
    exe = tmp_path / source.stem
    build = subprocess.run(
        [gxx, *flags, source, "-o", exe], capture_output=True, text=True, check=False
    )
    assert build.returncode == 0, build.stderr
    return subprocess.run([exe], capture_output=True, text=True, timeout=timeout, check=False)
