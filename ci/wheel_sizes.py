# SPDX-License-Identifier: Apache-2.0
"""Wheel size per CUDA arch set, with and without fatbin compression (called by
`nox -s wheel_sizes`).

Builds the wheel once per (arch preset, nvcc --compress-mode) with
ci/build_wheel.py into a scratch folder and prints, for each, the size of the
CUDA library (_C_cuda.abi3.so, what an install puts on disk) and of the wheel
(what is downloaded, zip-deflated). With `--cache sccache` (the default) the
device code of an arch is compiled once and reused by every build that has it:
--compress-mode only changes the fatbinary step.

    python ci/wheel_sizes.py                          sm80 sm90 sm100 default x default size
    python ci/wheel_sizes.py --archs default --modes none,default,speed,balance,size
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from _common import ROOT, find_wheels, log, run

MiB = 2**20


def measure(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        cuda = [i.file_size for i in zf.infolist() if i.filename.endswith("_C_cuda.abi3.so")]
        total = sum(i.file_size for i in zf.infolist())
    return {"wheel": wheel.stat().st_size, "cuda_so": cuda[0] if cuda else 0, "installed": total}


def table(rows: list[dict], modes: list[str]) -> str:
    head = (
        "| arch set | compress-mode | _C_cuda.abi3.so (MiB) | installed (MiB) | wheel (MiB) | wheel vs "
        + modes[0]
        + " |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|"]
    base = {r["archs"]: r["wheel"] for r in rows if r["mode"] == modes[0]}
    for r in rows:
        rel = r["wheel"] / base[r["archs"]] if base.get(r["archs"]) else 1.0
        lines.append(
            f"| {r['archs']} | {r['mode']} | {r['cuda_so'] / MiB:.2f} | {r['installed'] / MiB:.2f} | "
            f"{r['wheel'] / MiB:.2f} | {100 * rel:.0f} % |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--archs", default="sm80,sm90,sm100,default", help="comma-separated presets")
    p.add_argument(
        "--modes",
        default="default,size",
        help="comma-separated --compress-mode values; the first is the baseline (default: %(default)s)",
    )
    p.add_argument("--cache", default="sccache", choices=["none", "sccache", "ccache"])
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    presets = [a for a in args.archs.split(",") if a]
    modes = [m for m in args.modes.split(",") if m]
    rows = []
    work = Path(tempfile.mkdtemp(prefix="sk-wheel-sizes-"))
    try:
        for archs in presets:
            for mode in modes:
                out = work / f"{archs}-{mode}"
                run(
                    [
                        sys.executable,
                        ROOT / "ci" / "build_wheel.py",
                        "--archs",
                        archs,
                        "--compress",
                        mode,
                        "--cache",
                        args.cache,
                        "--out",
                        out,
                    ],
                    stdout=sys.stderr,
                )
                (wheel,) = find_wheels(out)
                rows.append({"archs": archs, "mode": mode, **measure(wheel)})
                log(f"{archs} / {mode}: wheel {rows[-1]['wheel'] / MiB:.2f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(rows, modes))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
