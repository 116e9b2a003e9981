# SPDX-License-Identifier: Apache-2.0
"""Check a benchmark run (benchmarks/run.py's JSON) against the performance targets of
docs/performance.md, and say of each miss why it misses.

    python benchmarks/targets.py reports/bench-cuda.json      # the verdict, as markdown

The targets: on a GPU, in bf16, each case's own (its `Targets` in the op's module: a
percentage of the copy bandwidth on prefill shapes, a speedup over torch.compile or over
eager), and for every case: prefill shapes no more than 3% slower than torch.compile,
decode shapes under CUDA graphs no slower than torch.compile's kernels; on the CPU, every
case no slower than eager.

A miss is put in one of three classes:

- past the memory's peak: meeting the target would move the case's bytes between the chip
  and its memory faster than the memory's peak rate (2 x its clock x its bus width, as the
  device reports them). The bytes are the minimal ones, or where the case gives
  `dram_bytes` the least that any implementation moves on a chip of this one's on-chip
  capacity. No kernel meets such a target on this device;
- at the same-size ceiling: a device copy of the same traffic, timed the same way, itself
  takes longer than the target allows (a launch, the first wave's ramp-up and the last
  wave's tail cost a copy of this size as much as any kernel; for a speedup target, the
  reference is already about as fast as a copy). Evidence, not proof: a kernel may beat
  that copy;
- the kernel: neither of the above; the shortfall is the kernel's to close.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from stablekernels.ops._registry import BenchCase

# The dtypes a GPU run is held to its targets in (the others are measured, not checked).
GPU_DTYPES = ("bf16",)
# Prefill shapes: at most this much slower than torch.compile.
COMPILE_SLACK = 1.03

PEAK, SIZE, KERNEL = "past the memory's peak", "at the same-size ceiling", "the kernel"


@dataclasses.dataclass(frozen=True)
class Check:
    """One target checked on one row of a run."""

    target: str  # the target in words, e.g. ">= 90% of copy"
    row: dict
    measured: str  # what the row reached, in the target's terms
    holds: bool
    reason: str = ""  # for misses: PEAK, SIZE or KERNEL
    why: str = ""  # for misses: the figures behind the reason

    @property
    def case(self) -> str:
        return f"{self.row['op']} {self.row['dtype']} {self.row['shape']}"


def _miss(result: dict, row: dict, needed_s: float, target_pct: float | None) -> tuple[str, str]:
    """The class and figures of a row's miss of a target that needs it to take `needed_s`
    seconds (`target_pct`: the target's percentage of copy, for bandwidth targets)."""
    peak = result.get("dram_peak_gbps")
    dram = row.get("dram_bytes", row["bytes"])
    if peak:
        needed_gbps = dram / needed_s / 1e9
        if needed_gbps > peak:
            moved = "" if dram == row["bytes"] else f" (the {dram / 1e6:.0f} MB it must move)"
            return PEAK, (
                f"needs {needed_gbps:.0f} GB/s to and from memory{moved}; "
                f"its peak is {peak:.0f} GB/s"
            )
    same = _same_pct(result, row)
    if same is not None and row["copy_same_us"] * 1e-6 > needed_s:
        if target_pct is not None:
            return SIZE, f"a copy of the same traffic reaches {same:.0f}% of copy"
        return SIZE, (
            f"a copy of the same traffic takes {row['copy_same_us']:.1f} us; "
            f"the target allows {needed_s * 1e6:.1f}"
        )
    context = f"; a copy of the same traffic reaches {same:.0f}% of copy" if same else ""
    return KERNEL, f"{row['ours_us']:.1f} us, needs {needed_s * 1e6:.1f}{context}"


def _same_pct(result: dict, row: dict) -> float | None:
    """The percentage of the large copy's bandwidth that a copy of the row's traffic reaches."""
    if not row.get("copy_same_us"):
        return None
    return 100 * row["bytes"] / (row["copy_same_us"] * 1e-6) / (result["copy_gbps"] * 1e9)


def with_figures(row: dict, copy_gbps: float) -> dict:
    """`row` given the figures its times give (benchmarks/run.py for a run, merge_runs.py for
    the median times of several): the GB/s of its minimal traffic, that as a percentage of
    the copy bandwidth, the speedup over torch.compile and, where a copy of the same traffic
    was timed, the percentage of that copy's speed."""
    row["ours_gbps"] = row["bytes"] / (row["ours_us"] * 1e-6) / 1e9
    row["pct_copy"] = 100 * row["ours_gbps"] / copy_gbps
    row["speedup_vs_compile"] = row["compile_us"] / row["ours_us"]
    if "copy_same_us" in row:
        row["pct_copy_same"] = 100 * row["copy_same_us"] / row["ours_us"]
    return row


def case_fields(case: BenchCase, dtype: torch.dtype, onchip: int | None) -> dict:
    """What a report's row carries of its BenchCase for the check: its targets and, where
    the case gives them and the device's on-chip capacity is known, its dram_bytes."""
    fields: dict = {"targets": case.targets.as_dict()}
    if case.dram_bytes is not None and onchip:
        fields["dram_bytes"] = case.dram_bytes(dtype, onchip)
    return fields


def attach(result: dict) -> int:
    """Give the rows of a report written before rows carried their targets those of the
    registry's case of the same op and label; returns how many rows it gave them to."""
    import torch
    from stablekernels.ops import REGISTRY

    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    given = 0
    for row in result["rows"]:
        if "targets" in row or row["op"] not in REGISTRY:
            continue
        spec = REGISTRY[row["op"]]
        case = next((c for c in spec.bench + spec.bench_quick if c.label == row["shape"]), None)
        if case is not None:
            row.update(case_fields(case, dtypes[row["dtype"]], result.get("onchip_bytes")))
            given += 1
    return given


def is_gpu(result: dict) -> bool:
    """Whether `result` is a GPU run (runs before "device_kind" was recorded: whether any
    row was timed under CUDA graphs)."""
    if "device_kind" in result:
        return result["device_kind"] == "cuda"
    return any("ours_graph_us" in r for r in result["rows"])


def _check(target: str, row: dict, measured: str, holds: bool, miss: tuple[str, str]) -> Check:
    return Check(target, row, measured, holds, *(() if holds else miss))


def _timed(
    result: dict,
    row: dict,
    target: str,
    measured: str,
    holds: bool,
    needed_s: float,
    pct: float | None = None,
) -> Check:
    """A target that the row would meet in `needed_s` seconds."""
    return _check(target, row, measured, holds, () if holds else _miss(result, row, needed_s, pct))


def check(result: dict) -> list[Check]:
    """Every target that applies to a row of `result` (a benchmark run's JSON), checked."""
    checks: list[Check] = []
    gpu = is_gpu(result)
    for row in result["rows"]:
        ours = row["ours_us"]
        if not gpu:
            checks.append(
                _check(
                    "CPU: no slower than eager",
                    row,
                    f"{row['eager_us'] / ours:.2f}x eager",
                    ours <= row["eager_us"],
                    (KERNEL, f"{ours:.1f} us, eager {row['eager_us']:.1f}"),
                )
            )
            continue
        if row["dtype"] not in GPU_DTYPES:
            continue
        own = row.get("targets", {})
        if "pct_copy" in own:
            pct = own["pct_copy"]
            needed = row["bytes"] / (pct / 100 * result["copy_gbps"] * 1e9)
            measured, holds = f"{row['pct_copy']:.1f}%", row["pct_copy"] >= pct
            target = f">= {pct:.0f}% of copy"
            checks.append(_timed(result, row, target, measured, holds, needed, pct))
        if "vs_compile" in own:
            want = own["vs_compile"]
            measured, holds = f"{row['compile_us'] / ours:.2f}x", row["compile_us"] / ours >= want
            needed = row["compile_us"] * 1e-6 / want
            target = f">= {want:g}x torch.compile"
            checks.append(_timed(result, row, target, measured, holds, needed))
        if "vs_eager" in own:
            want = own["vs_eager"]
            checks.append(
                _check(
                    "faster than eager" if want == 1 else f"> {want:g}x eager",
                    row,
                    f"{row['eager_us'] / ours:.2f}x",
                    row["eager_us"] / ours > want,
                    (KERNEL, f"{ours:.1f} us, eager {row['eager_us']:.1f}"),
                )
            )
        if row["regime"] == "prefill":
            measured = f"{row['compile_us'] / ours:.2f}x"
            needed = COMPILE_SLACK * row["compile_us"] * 1e-6
            holds = ours * 1e-6 <= needed
            target = "<= 3% slower than torch.compile"
            checks.append(_timed(result, row, target, measured, holds, needed))
        elif "ours_graph_us" in row:
            checks.append(
                _check(
                    "CUDA graphs: no slower than torch.compile",
                    row,
                    f"{row['ours_graph_us']:.2f} us, compile {row['compile_graph_us']:.2f}",
                    row["ours_graph_us"] <= row["compile_graph_us"],
                    (KERNEL, ""),
                )
            )
    return checks


def markdown(result: dict, checks: list[Check] | None = None) -> str:
    """The verdict: a table of the targets (rows checked, rows held, misses by class) and
    every miss with its figures."""
    checks = check(result) if checks is None else checks
    if not checks:
        return "No row of this run is held to a target.\n"
    targets = list(dict.fromkeys(c.target for c in checks))
    lines = [
        f"| target | rows | hold | miss: {PEAK} | miss: {SIZE} | miss: {KERNEL} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in targets:
        mine = [c for c in checks if c.target == t]
        count = {r: sum(c.reason == r for c in mine) for r in (PEAK, SIZE, KERNEL)}
        lines.append(
            f"| {t} | {len(mine)} | {sum(c.holds for c in mine)} | "
            + " | ".join(str(count[r] or "-") for r in (PEAK, SIZE, KERNEL))
            + " |"
        )
    misses = [c for c in checks if not c.holds]
    if misses:
        lines += ["", "| miss | target | reached | class | why |", "|---|---|---:|---|---|"]
        lines += [
            f"| {c.case} | {c.target} | {c.measured} | {c.reason} | {c.why} |" for c in misses
        ]
    else:
        lines += ["", "Every target holds on every row it applies to."]
    if is_gpu(result):
        skipped = sorted({r["dtype"] for r in result["rows"]} - set(GPU_DTYPES))
        if skipped:
            lines += ["", f"Rows in {', '.join(skipped)} are measured, not held to the targets."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("report", type=Path, help="a benchmarks/run.py JSON report")
    p.add_argument(
        "--dram-peak",
        type=float,
        help="the memory's peak GB/s, for reports written before runs recorded it",
    )
    p.add_argument(
        "--onchip",
        type=int,
        help="bytes the GPU holds on chip (L2, shared memory, registers), for such reports",
    )
    args = p.parse_args(argv)
    try:
        result = json.loads(args.report.read_text())
    except (OSError, json.JSONDecodeError) as e:
        p.error(f"report: cannot read {args.report} as a benchmark JSON report: {e}")
    if not isinstance(result, dict) or "rows" not in result or "copy_gbps" not in result:
        p.error(
            f"report: {args.report} has no 'rows' and 'copy_gbps': not a benchmarks/run.py report"
        )
    for key, value in (("dram_peak_gbps", args.dram_peak), ("onchip_bytes", args.onchip)):
        if value is not None:
            result[key] = value
    if any("targets" not in r for r in result["rows"]):
        print(f"(targets of {attach(result)} rows taken from the registry)", file=sys.stderr)
    print(markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
