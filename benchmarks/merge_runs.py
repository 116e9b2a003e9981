# SPDX-License-Identifier: Apache-2.0
"""Merge benchmark runs of one wheel on one device into one report: each row's times are the
median over the runs, the figures derived from them recomputed.

    python benchmarks/merge_runs.py run1.json run2.json run3.json -o merged.json

A run can be disturbed for a stretch of rows (another process, a clock drop): the rows
timed then read 2-5x slower on both sides or on one, and the run's check reports misses
that are not the kernels'. The median of three runs leaves out one disturbed value a row.
The merged report keeps the first run's facts (device, torch, copy bandwidth as a median)
and names the runs it comes from; benchmarks/targets.py and the markdown of run.py read it
as they read a single run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets  # benchmarks/targets.py, beside this script

# The timed fields of a row; the others are the case's (shape, bytes, targets) or derived.
TIMES = ("ours_us", "eager_us", "compile_us", "copy_same_us", "ours_graph_us", "compile_graph_us")
FACTS = ("device", "device_kind", "torch", "stablekernels", "quick")


def _key(row: dict) -> tuple[str, str, str]:
    return row["op"], row["dtype"], row["shape"]


def merge(results: list[dict]) -> dict:
    """One report of `results` (runs of the same cases on the same device and software)."""
    if not results:
        raise ValueError("no runs to merge")
    first = results[0]
    for r in results[1:]:
        for fact in FACTS:
            if r.get(fact) != first.get(fact):
                raise ValueError(f"runs differ in {fact}: {first.get(fact)!r} / {r.get(fact)!r}")
        if [_key(x) for x in r["rows"]] != [_key(x) for x in first["rows"]]:
            raise ValueError("runs differ in their rows (ops, dtypes or shapes)")
    merged = {k: v for k, v in first.items() if k != "rows"}
    merged["copy_gbps"] = statistics.median(r["copy_gbps"] for r in results)
    merged["runs"] = [r["date"] for r in results]
    rows = []
    for i, base in enumerate(first["rows"]):
        row = dict(base)
        for field in TIMES:
            values = [r["rows"][i][field] for r in results if field in r["rows"][i]]
            if values:
                row[field] = statistics.median(values)
        rows.append(targets.with_figures(row, merged["copy_gbps"]))
    merged["rows"] = rows
    return merged


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("runs", nargs="+", type=Path, help="run.py JSON reports")
    p.add_argument("-o", "--out", type=Path, required=True, help="the merged JSON")
    args = p.parse_args(argv)
    try:
        merged = merge([json.loads(path.read_text()) for path in args.runs])
    except ValueError as e:
        print(f"merge_runs: {e}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"wrote {args.out}: {len(merged['rows'])} rows, the median of {len(args.runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
