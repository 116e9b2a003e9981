# SPDX-License-Identifier: Apache-2.0
"""benchmarks/merge_runs.py: runs of one wheel merged into one report, each time the median
over the runs and the derived figures recomputed; runs of different devices or cases
refused."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mr() -> ModuleType:
    return load_script(ROOT / "benchmarks" / "merge_runs.py", "stablekernels_bench_merge")


def _run(date: str, ours: float, compile_us: float = 100.0, copy_gbps: float = 2000.0) -> dict:
    row = {
        "op": "fake_op", "dtype": "bf16", "shape": "s", "regime": "prefill",
        "bytes": 100_000_000, "ours_us": ours, "eager_us": 400.0, "compile_us": compile_us,
        "copy_same_us": 55.0, "targets": {"pct_copy": 90.0},
    }  # fmt: skip
    decode = {
        "op": "fake_op", "dtype": "bf16", "shape": "d", "regime": "decode", "bytes": 1000,
        "ours_us": 4.0, "eager_us": 9.0, "compile_us": 5.0, "ours_graph_us": ours / 100,
        "compile_graph_us": 1.5,
    }  # fmt: skip
    return {
        "date": date, "device": "GPU", "device_kind": "cuda", "torch": "2.11", "stablekernels":
        "0.1.0", "quick": False, "copy_gbps": copy_gbps, "rows": [row, decode],
    }  # fmt: skip


def test_median_of_each_time_and_derived_figures(mr: ModuleType) -> None:
    # the second run was disturbed on the prefill row (4x); the median leaves it out
    runs = [_run("d1", 60.0, 90.0, 2000.0), _run("d2", 240.0, 100.0, 1990.0), _run("d3", 50.0)]
    merged = mr.merge(runs)
    assert merged["runs"] == ["d1", "d2", "d3"] and merged["copy_gbps"] == 2000.0
    prefill, decode = merged["rows"]
    assert prefill["ours_us"] == 60.0 and prefill["compile_us"] == 100.0
    assert prefill["ours_gbps"] == pytest.approx(100_000_000 / 60e-6 / 1e9)
    assert prefill["pct_copy"] == pytest.approx(100 * (100_000_000 / 60e-6) / 2000e9)
    assert prefill["speedup_vs_compile"] == pytest.approx(100 / 60)
    assert prefill["pct_copy_same"] == pytest.approx(100 * 55 / 60)
    assert prefill["targets"] == {"pct_copy": 90.0}
    assert decode["ours_graph_us"] == 0.6 and "pct_copy_same" not in decode


def test_runs_of_other_devices_or_cases_are_refused(mr: ModuleType) -> None:
    other = _run("d2", 60.0)
    other["device"] = "Another GPU"
    with pytest.raises(ValueError, match="runs differ in device"):
        mr.merge([_run("d1", 60.0), other])
    fewer = _run("d2", 60.0)
    fewer["rows"] = fewer["rows"][:1]
    with pytest.raises(ValueError, match="runs differ in their rows"):
        mr.merge([_run("d1", 60.0), fewer])
    with pytest.raises(ValueError, match="no runs"):
        mr.merge([])


def test_command_line_and_markdown_of_a_merged_report(mr: ModuleType, tmp_path: Path) -> None:
    paths = []
    for i, ours in enumerate((60.0, 240.0, 50.0)):
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps(_run(f"d{i}", ours)))
    out = tmp_path / "merged.json"
    assert mr.main([*map(str, paths), "-o", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["rows"][0]["ours_us"] == 60.0
    bench = load_script(ROOT / "benchmarks" / "run.py", "stablekernels_bench_run_for_merge")
    assert "Each time is the median of 3 runs (d0, d1, d2)." in bench.markdown(merged)
    bad = json.loads(paths[1].read_text())
    bad["device"] = "Another GPU"
    paths[1].write_text(json.dumps(bad))
    assert mr.main([*map(str, paths), "-o", str(out)]) == 2
