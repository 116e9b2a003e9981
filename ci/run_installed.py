# SPDX-License-Identifier: Apache-2.0
"""Test a wheel against the torch already installed on a machine with no package
index (the GPU machine): install it with pip --no-deps --no-index next to that
torch, run the test suite, and write a report cell like the matrix's.

    python ci/run_installed.py WHEEL [--manifest dist/build-manifest.json] [--out DIR] [-- PYTEST ARGS]

Needs only the Python standard library, pip, pytest and torch. The cell lands in
reports/cells/ (or --out); copy it into a checkout's reports/cells/ and run
`python ci/compat_report.py` there to merge it into the compatibility report.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matrix
from _common import ROOT, log, run, split_passthrough, wheel_info


def main(argv: list[str]) -> int:
    argv, pytest_args = split_passthrough(argv)
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("wheel", type=Path)
    p.add_argument(
        "--manifest", type=Path, help="build-manifest.json whose sha256 the wheel must match"
    )
    p.add_argument("--out", type=Path, default=matrix.CELLS_DIR, help="where the cell JSON goes")
    p.add_argument("--python", default=sys.executable, help="the interpreter whose torch to use")
    args = p.parse_args(argv)
    start = time.monotonic()
    info = wheel_info(args.wheel)
    if args.manifest:
        expected = json.loads(args.manifest.read_text())["sha256"]
        if expected != info["sha256"]:
            sys.exit(
                f"{args.wheel.name}: sha256 {info['sha256']} is not the built one ({expected})"
            )
    py = args.python
    run(
        [
            py,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--force-reinstall",
            args.wheel,
        ]
    )
    matrix.check_installed_libraries(py, args.wheel)
    facts = matrix.torch_facts(py)
    host = matrix.gpu_label(py)
    pyver = subprocess.run(
        [py, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    short_py = ".".join(pyver.split(".")[:2])
    release = ".".join(facts["torch"].split("+")[0].split(".")[:2])
    slug = "".join(ch if ch.isalnum() else "-" for ch in host).strip("-").lower()[:40]
    cell_id = f"installed-torch-{facts['torch'].replace('+', '-')}-py{short_py}-{slug}"
    counts, rc = matrix.run_pytest(py, cell_id, pytest_args)
    ok = rc == 0 and counts["failed"] == 0 and counts["errors"] == 0 and counts["passed"] > 0
    cell = {
        "id": cell_id,
        "release": release,
        "torch": facts["torch"],
        "torch_cuda": facts["torch_cuda"],
        "python": short_py,
        "host": host,
        "wheel_sha256": info["sha256"],
        "expect": "pass",
        **counts,
        "result": "passed" if ok else "failed",
        "detail": f"installed-torch runner on {host} ({platform.node()}), pytest exit code {rc}",
        "duration_s": round(time.monotonic() - start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{cell_id}.json").write_text(json.dumps(cell, indent=2) + "\n")
    xml = matrix.CELLS_DIR / f"{cell_id}.xml"
    if xml.exists() and args.out != matrix.CELLS_DIR:
        shutil.copy(xml, args.out / xml.name)
    log(
        f"cell {cell_id}: {cell['result'].upper()} (passed {cell['passed']}, failed {cell['failed']}, "
        f"errors {cell['errors']}, skipped {cell['skipped']}) -> {args.out / (cell_id + '.json')}"
    )
    if args.out == matrix.CELLS_DIR and (ROOT / "ci" / "matrix.toml").exists():
        import compat_report

        compat_report.render(info)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
