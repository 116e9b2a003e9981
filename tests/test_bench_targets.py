# SPDX-License-Identifier: Apache-2.0
"""benchmarks/targets.py: which targets apply to which rows, the classes of a miss (past
the memory's peak, at the same-size ceiling, the kernel's), the rendered verdict and the
command line; the targets and memory traffic the registry's cases declare; the verdicts in
docs/performance.md against the runs they come from."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch
from helpers import load_script
from stablekernels.ops import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
TARGETS_PY = ROOT / "benchmarks" / "targets.py"
MB = 1_000_000


@pytest.fixture(scope="module")
def tg() -> ModuleType:
    return load_script(TARGETS_PY, "stablekernels_bench_targets")


def _row(shape: str = "s", regime: str = "prefill", **extra: object) -> dict:
    # 100 MB in 100 us: 1000 GB/s, 50% of the 2000 GB/s copy; compile 100 us
    row = {
        "op": "fake_op", "dtype": "bf16", "shape": shape, "regime": regime, "bytes": 100 * MB,
        "ours_us": 100.0, "eager_us": 400.0, "compile_us": 100.0, "ours_gbps": 1000.0,
        "pct_copy": 50.0, "targets": {},
    }  # fmt: skip
    row.update(extra)
    return row


def _gpu(rows: list[dict], **facts: object) -> dict:
    result = {"device": "GPU", "device_kind": "cuda", "copy_gbps": 2000.0, "rows": rows}
    result.update(facts)
    return result


def _only(checks: list, target: str) -> object:
    mine = [c for c in checks if c.target == target]
    assert len(mine) == 1, [(c.target, c.case) for c in checks]
    return mine[0]


def test_bandwidth_target_holds_at_and_above_its_percentage(tg: ModuleType) -> None:
    rows = [_row("at", pct_copy=90.0, targets={"pct_copy": 90.0})]
    rows.append(_row("under", pct_copy=89.9, targets={"pct_copy": 90.0}))
    checks = [c for c in tg.check(_gpu(rows)) if c.target == ">= 90% of copy"]
    assert [(c.row["shape"], c.holds) for c in checks] == [("at", True), ("under", False)]
    assert checks[1].measured == "89.9%"


def test_miss_past_the_memorys_peak(tg: ModuleType) -> None:
    # 90% of a 2000 GB/s copy over 100 MB takes 55.6 us; moving the 150 MB the case must
    # move in that time needs 2700 GB/s, past a 2500 GB/s peak
    row = _row(targets={"pct_copy": 90.0}, dram_bytes=150 * MB, copy_same_us=55.0)
    miss = _only(tg.check(_gpu([row], dram_peak_gbps=2500.0)), ">= 90% of copy")
    assert not miss.holds and miss.reason == tg.PEAK
    assert "needs 2700 GB/s" in miss.why and "the 150 MB it must move" in miss.why
    assert "its peak is 2500 GB/s" in miss.why
    # with a faster memory the same miss is the kernel's (its same-size copy reaches 91%)
    miss = _only(tg.check(_gpu([row], dram_peak_gbps=3000.0)), ">= 90% of copy")
    assert miss.reason == tg.KERNEL and "reaches 91% of copy" in miss.why


def test_miss_at_the_same_size_ceiling(tg: ModuleType) -> None:
    # a copy of the row's 100 MB in 62.5 us reaches 80% of the 2000 GB/s copy: under 90%
    row = _row(targets={"pct_copy": 90.0}, copy_same_us=62.5)
    miss = _only(tg.check(_gpu([row], dram_peak_gbps=2500.0)), ">= 90% of copy")
    assert miss.reason == tg.SIZE and miss.why == "a copy of the same traffic reaches 80% of copy"
    # the same copy clears an 80% target's bar: a miss of that one is the kernel's
    row["targets"] = {"pct_copy": 80.0}
    miss = _only(tg.check(_gpu([row])), ">= 80% of copy")
    assert miss.reason == tg.KERNEL


def test_speedup_over_compile_target(tg: ModuleType) -> None:
    # 1.2x a compile of 100 us: 83.3 us; the 100 MB in that time need 1200 GB/s
    row = _row(targets={"vs_compile": 1.2})
    miss = _only(tg.check(_gpu([row], dram_peak_gbps=1100.0)), ">= 1.2x torch.compile")
    assert miss.measured == "1.00x" and miss.reason == tg.PEAK and "needs 1200 GB/s" in miss.why
    assert _only(tg.check(_gpu([row], dram_peak_gbps=1300.0)), ">= 1.2x torch.compile").reason == (
        tg.KERNEL
    )
    # a copy of the same 100 MB in 90 us takes longer than the 83.3 us the target allows
    row["copy_same_us"] = 90.0
    miss = _only(tg.check(_gpu([row], dram_peak_gbps=1300.0)), ">= 1.2x torch.compile")
    assert miss.reason == tg.SIZE
    assert miss.why == "a copy of the same traffic takes 90.0 us; the target allows 83.3"
    row["copy_same_us"] = 83.0  # a copy fits in time: the kernel's
    miss = _only(tg.check(_gpu([row], dram_peak_gbps=1300.0)), ">= 1.2x torch.compile")
    assert miss.reason == tg.KERNEL and "reaches 60% of copy" in miss.why
    row["ours_us"] = 100 / 1.2
    assert _only(tg.check(_gpu([row])), ">= 1.2x torch.compile").holds


def test_every_prefill_row_within_three_percent_of_compile(tg: ModuleType) -> None:
    rows = [_row("level", ours_us=103.0), _row("behind", ours_us=103.1)]
    checks = [c for c in tg.check(_gpu(rows)) if c.target == "<= 3% slower than torch.compile"]
    assert [(c.row["shape"], c.holds) for c in checks] == [("level", True), ("behind", False)]
    assert checks[1].reason == tg.KERNEL


def test_decode_rows_under_graphs_and_eager_speedup(tg: ModuleType) -> None:
    rows = [
        _row("d1", "decode", ours_graph_us=1.0, compile_graph_us=1.0),
        _row("d2", "decode", ours_graph_us=1.1, compile_graph_us=1.0),
        _row("d3", "decode"),  # not timed under graphs: no graph target
        _row("k", "decode", eager_us=100.0, targets={"vs_eager": 1.0}),
    ]
    checks = tg.check(_gpu(rows))
    graph = [c for c in checks if c.target == "CUDA graphs: no slower than torch.compile"]
    assert [(c.row["shape"], c.holds) for c in graph] == [("d1", True), ("d2", False)]
    eager = _only(checks, "faster than eager")
    assert not eager.holds and eager.measured == "1.00x"  # level is not faster
    # decode rows are not held to the prefill rule
    assert not [c for c in checks if c.target == "<= 3% slower than torch.compile"]


def test_only_bf16_rows_of_a_gpu_run_are_held(tg: ModuleType) -> None:
    rows = [_row(targets={"pct_copy": 90.0}), _row(dtype="fp32", targets={"pct_copy": 90.0})]
    checks = tg.check(_gpu(rows))
    assert {c.row["dtype"] for c in checks} == {"bf16"}
    assert "Rows in fp32 are measured, not held to the targets." in tg.markdown(_gpu(rows))


def test_cpu_run_holds_every_row_to_eager(tg: ModuleType) -> None:
    rows = [_row("fast", dtype="fp32"), _row("slow", eager_us=99.0, targets={"pct_copy": 90.0})]
    result = {"device": "x86_64", "device_kind": "cpu", "copy_gbps": 20.0, "rows": rows}
    checks = tg.check(result)
    assert [(c.target, c.row["shape"], c.holds) for c in checks] == [
        ("CPU: no slower than eager", "fast", True),
        ("CPU: no slower than eager", "slow", False),
    ]


def test_markdown_counts_and_lists_the_misses(tg: ModuleType) -> None:
    rows = [
        _row("ok", pct_copy=95.0, targets={"pct_copy": 90.0}),
        _row("small", targets={"pct_copy": 90.0}, copy_same_us=62.5),
        _row("slow", targets={"pct_copy": 90.0}, copy_same_us=52.0),
    ]
    md = tg.markdown(_gpu(rows))
    lines = md.splitlines()
    assert ">= 90% of copy | 3 | 1 | - | 1 | 1 |" in md
    assert "| <= 3% slower than torch.compile | 3 | 3 | - | - | - |" in lines
    misses = [line for line in lines if line.startswith("| fake_op bf16 ")]
    assert [m.split(" | ")[0] for m in misses] == ["| fake_op bf16 small", "| fake_op bf16 slow"]
    assert tg.SIZE in misses[0] and tg.KERNEL in misses[1]
    rows = [_row(pct_copy=95.0, targets={"pct_copy": 90.0})]
    assert "Every target holds on every row it applies to." in tg.markdown(_gpu(rows))


def test_command_line(tg: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "bench-cuda.json"
    report.write_text(json.dumps(_gpu([_row(targets={"pct_copy": 90.0}, dram_bytes=150 * MB)])))
    assert tg.main([str(report), "--dram-peak", "2500"]) == 0
    assert tg.PEAK in capsys.readouterr().out
    for text in ("{not json", json.dumps({"rows": []})):
        report.write_text(text)
        with pytest.raises(SystemExit) as exc:
            tg.main([str(report)])
        assert exc.value.code == 2
        assert "report:" in capsys.readouterr().err


def test_reports_without_targets_take_the_registrys(
    tg: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a report written before rows carried their targets: the command line gives each row
    # the targets (and, with --onchip, the memory traffic) of the registry's case
    label = "tokens=16384 hidden=8192"
    case = next(c for c in _cases("dynamic_scaled_fp8_quant") if c.label == label)
    nbytes = case.nbytes(torch.bfloat16)
    row = _row(label, op="dynamic_scaled_fp8_quant", bytes=nbytes, pct_copy=61.0)
    row.pop("targets")
    row["ours_us"] = nbytes / (0.61 * 2000e9) * 1e6
    row["copy_same_us"] = nbytes / (0.95 * 2000e9) * 1e6
    result = _gpu([row])
    report = tmp_path / "old.json"
    report.write_text(json.dumps(result))
    onchip = 100 << 20
    assert tg.main([str(report), "--dram-peak", "2200", "--onchip", str(onchip)]) == 0
    out = capsys.readouterr()
    assert "(targets of 1 rows taken from the registry)" in out.err
    # 16384 x 8192 bf16 must move its minimal bytes and the 156 MiB past 100 MiB again
    moved = (nbytes + 16384 * 8192 * 2 - onchip) / 1e6
    assert f"(the {moved:.0f} MB it must move); its peak is 2200 GB/s" in out.out
    assert tg.attach(result) == 1 and result["rows"][0]["targets"] == {"pct_copy": 90.0}
    assert "dram_bytes" not in result["rows"][0]  # no on-chip size known: the minimal bytes


def _cases(name: str) -> list:
    return list(REGISTRY[name].bench)


def test_registry_declares_the_issue_targets() -> None:
    memory_bound = [
        "rms_norm", "fused_add_rms_norm", "silu_and_mul", "gelu_and_mul", "gelu_tanh_and_mul",
        "rotary_embedding", "merge_attn_states", "static_scaled_fp8_quant",
        "dynamic_scaled_fp8_quant", "dynamic_per_token_scaled_fp8_quant",
        "reshape_and_cache_flash", "apply_repetition_penalties_",
    ]  # fmt: skip
    for name in memory_bound:
        held = [c for c in _cases(name) if c.targets.pct_copy is not None]
        assert held, f"{name}: no case held to the copy bandwidth target"
        assert {c.targets.pct_copy for c in held} == {90.0}, name
        assert all(c.regime == "prefill" for c in held), name
        assert all(c.targets.pct_copy is None for c in _cases(name) if c.regime == "decode")
    per_token = _cases("dynamic_per_token_scaled_fp8_quant")
    assert {c.targets.vs_compile for c in per_token if c.targets.pct_copy} == {1.2}
    hadamard = [c for c in _cases("hadacore_transform") if c.targets.pct_copy is not None]
    assert {c.targets.pct_copy for c in hadamard} == {80.0}
    assert all(int(c.label.split("n=")[1]) >= 1024 for c in hadamard)
    assert any("n=128" in c.label and c.regime == "prefill" for c in _cases("hadacore_transform"))
    top_k = _cases("top_k_per_row")
    assert top_k and all(c.targets.vs_eager == 1.0 for c in top_k)


def test_dynamic_per_tensor_traffic_past_the_chip() -> None:
    case = next(
        c for c in _cases("dynamic_scaled_fp8_quant") if c.label == "tokens=4096 hidden=4096"
    )
    input_bytes = 4096 * 4096 * 2
    assert case.dram_bytes is not None
    minimal = case.nbytes(torch.bfloat16)
    assert case.dram_bytes(torch.bfloat16, input_bytes) == minimal
    assert case.dram_bytes(torch.bfloat16, input_bytes - 1000) == minimal + 1000
    assert case.dram_bytes(torch.float32, 0) == case.nbytes(torch.float32) + 2 * input_bytes
    # the other quantizers read their input once, whatever the chip holds
    for name in ("static_scaled_fp8_quant", "dynamic_per_token_scaled_fp8_quant"):
        assert all(c.dram_bytes is None for c in _cases(name))


@pytest.mark.parametrize(
    ("gpu", "report"), [("H200", "bench-cuda.json"), ("H100", "bench-cuda-h100.json")]
)
def test_docs_verdicts_are_those_of_the_docs_runs(tg: ModuleType, gpu: str, report: str) -> None:
    # docs/performance.md shows each GPU's verdict beside that run's table: the verdict must
    # be what the check gives for the run's JSON, and the table must be of that run
    doc = (ROOT / "docs" / "performance.md").read_text()
    result = json.loads((ROOT / "docs" / "data" / report).read_text())
    assert result["device_kind"] == "cuda" and result["dram_peak_gbps"] > result["copy_gbps"]
    assert all("targets" in r for r in result["rows"]), f"{report}: rows without targets"
    begin, end = f"<!-- targets {gpu}: begin -->", f"<!-- targets {gpu}: end -->"
    shown = doc[doc.index(begin) + len(begin) : doc.index(end)]
    assert shown == "\n\n" + tg.markdown(result) + "\n", f"the {gpu} verdict is not of {report}"
    assert f"Measured {result['date']} on {result['device']}" in doc
