# SPDX-License-Identifier: Apache-2.0
"""Lint: ruff (check + format) on the Python, clang-format on the C++/CUDA
(called by `nox -s lint`; `--fix` rewrites instead of checking)."""

from __future__ import annotations

import argparse
import sys

from _common import ROOT, log, run

PY_PATHS = ["python", "tests", "ci", "cmake", "noxfile.py"]
CXX_SUFFIXES = {".h", ".cpp", ".cu", ".cuh"}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--fix", action="store_true")
    args = p.parse_args(argv)
    failed = []
    ruff = [sys.executable, "-m", "ruff"]
    for cmd in (
        [*ruff, "check", *(["--fix"] if args.fix else []), *PY_PATHS],
        [*ruff, "format", *([] if args.fix else ["--check", "--diff"]), *PY_PATHS],
    ):
        if run(cmd, cwd=ROOT, check=False).returncode:
            failed.append(cmd[3])
    sources = sorted(p for p in (ROOT / "csrc").rglob("*") if p.suffix in CXX_SUFFIXES)
    fmt = ["clang-format", *(["-i"] if args.fix else ["--dry-run", "-Werror"]), *sources]
    if run(fmt, cwd=ROOT, check=False).returncode:
        failed.append("clang-format")
    log(
        f"lint: {'failed: ' + ', '.join(failed) if failed else 'clean'} "
        f"({len(sources)} C++/CUDA files)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
