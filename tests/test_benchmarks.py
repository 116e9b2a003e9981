# SPDX-License-Identifier: Apache-2.0
"""benchmarks/run.py: a real CPU smoke run (report files, same-size copy columns,
host overhead), the --match shape filter, and the markdown rendering."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from stablekernels.ops import REGISTRY

RUN_PY = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
OP = "rms_norm"  # cheap to compile on CPU; two quick shapes
STEM = "bench-cpu-quick"
SAME_HEADER = "% of same-size copy"


def _load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stablekernels_bench_run", RUN_PY)
    assert spec is not None and spec.loader is not None, f"cannot load {RUN_PY}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load_run()


def _argv(out: Path, *extra: str, dtypes: str = "fp32") -> list[str]:
    return [
        "--device", "cpu", "--quick", "--ops", OP, "--dtypes", dtypes,
        "--reps", "1", "--warmup", "0", "--out", str(out), *extra,
    ]  # fmt: skip


def _op_lines(md: str, op: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith(f"| {op} |")]


def _cells(line: str) -> int:
    return line.strip().count("|") - 1


@pytest.fixture(scope="module")
def smoke(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str]:
    out = tmp_path_factory.mktemp("bench")
    rc = bench.main(_argv(out))
    json_path, md_path = out / f"{STEM}.json", out / f"{STEM}.md"
    assert json_path.is_file(), f"no {json_path.name} in {sorted(p.name for p in out.iterdir())}"
    assert md_path.is_file(), f"no {md_path.name} in {sorted(p.name for p in out.iterdir())}"
    return rc, json.loads(json_path.read_text()), md_path.read_text()


def _unique_label() -> str:
    """A quick-case label of OP that no other quick label of OP contains."""
    labels = [case.label for case in REGISTRY[OP].bench_quick]
    for label in labels:
        if sum(label in other for other in labels) == 1:
            return label
    raise AssertionError(f"{OP}: no quick label selects exactly one shape: {labels}")


def test_cpu_quick_run_writes_rows_with_same_size_copy(smoke: tuple[int, dict, str]) -> None:
    rc, result, md = smoke
    assert rc == 0
    rows = [r for r in result["rows"] if r["op"] == OP]
    expected = [case.label for case in REGISTRY[OP].bench_quick]
    assert [r["shape"] for r in rows] == expected
    assert all(r["dtype"] == "fp32" for r in rows)
    for r in rows:
        assert r["ours_us"] > 0, r
        assert r["copy_same_us"] > 0, r
        assert r["pct_copy_same"] == pytest.approx(100 * r["copy_same_us"] / r["ours_us"], rel=1e-9)

    header = next(line for line in md.splitlines() if line.startswith("| op |"))
    assert SAME_HEADER in header
    lines = _op_lines(md, OP)
    assert len(lines) == len(rows)
    for line, r in zip(lines, rows, strict=True):
        assert f"| {r['shape']} |" in line
        assert f"| {r['pct_copy_same']:.0f}% |" in line
        assert _cells(line) == _cells(header)


def test_cpu_quick_run_measures_host_overhead(smoke: tuple[int, dict, str]) -> None:
    _, result, md = smoke
    overhead = result.get("host_overhead")
    assert overhead, "no host_overhead rows in the CPU report"
    for r in overhead:
        assert r["us_per_call"] > 0, r
        assert f"| {r['call']} | {r['us_per_call']:.2f} |" in md


def test_match_keeps_only_matching_shapes(bench: ModuleType, tmp_path: Path) -> None:
    label = _unique_label()
    assert bench.main(_argv(tmp_path, "--match", label, dtypes="fp32,bf16")) == 0
    rows = json.loads((tmp_path / f"{STEM}.json").read_text())["rows"]
    assert [(r["op"], r["dtype"], r["shape"]) for r in rows] == [
        (OP, "fp32", label),
        (OP, "bf16", label),
    ]


def test_match_nothing_gives_no_rows(bench: ModuleType, tmp_path: Path) -> None:
    assert bench.main(_argv(tmp_path, "--match", "no-such-shape")) == 0
    result = json.loads((tmp_path / f"{STEM}.json").read_text())
    assert [r for r in result["rows"] if r["op"] == OP] == []
    assert _op_lines((tmp_path / f"{STEM}.md").read_text(), OP) == []


def _row(shape: str, regime: str, **extra: float) -> dict:
    return {
        "op": "fake_op", "dtype": "bf16", "shape": shape, "regime": regime, "bytes": 1 << 20,
        "ours_us": 12.34, "eager_us": 45.6, "compile_us": 23.4, "ours_gbps": 85.0,
        "pct_copy": 42.0, "speedup_vs_compile": 1.9, **extra,
    }  # fmt: skip


def _result(rows: list[dict]) -> dict:
    return {
        "date": "2025-01-01T00:00:00+00:00", "device": "test device", "torch": "0.0",
        "stablekernels": "0.0", "copy_gbps": 1000.0, "quick": True, "rows": rows,
    }  # fmt: skip


def _table(md: str) -> tuple[str, str, list[str]]:
    lines = md.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("| op |"))
    return lines[i], lines[i + 1], _op_lines(md, "fake_op")


def test_markdown_same_size_column_only_when_measured(bench: ModuleType) -> None:
    head, sep, lines = _table(bench.markdown(_result([_row("a", "prefill")])))
    assert SAME_HEADER not in head
    assert _cells(head) == _cells(sep) == _cells(lines[0]) == 9

    rows = [_row("a", "prefill", copy_same_us=10.8, pct_copy_same=87.4), _row("b", "prefill")]
    head, sep, lines = _table(bench.markdown(_result(rows)))
    assert SAME_HEADER in head
    assert _cells(head) == _cells(sep) == 10
    assert lines[0] == "| fake_op | bf16 | a | 12.3 | 85 | 42% | 87% | 45.6 | 23.4 | 1.90x |"
    assert lines[1] == "| fake_op | bf16 | b | 12.3 | 85 | 42% | | 45.6 | 23.4 | 1.90x |"


def test_markdown_graph_columns_for_decode_rows(bench: ModuleType) -> None:
    head, _, _ = _table(bench.markdown(_result([_row("a", "decode")])))
    assert "graph" not in head

    rows = [
        _row("a", "decode", ours_graph_us=3.21, compile_graph_us=4.56),
        _row("b", "prefill"),
    ]
    head, sep, lines = _table(bench.markdown(_result(rows)))
    assert head.endswith("| ours, graph (us) | compile, graph (us) |")
    assert _cells(head) == _cells(sep) == _cells(lines[0]) == _cells(lines[1]) == 11
    assert lines[0].endswith("| 1.90x | 3.21 | 4.56 |")
    assert lines[1].endswith("| 1.90x | | |")


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--ops", "no_such_op", "--ops: unknown op(s) no_such_op"),
        ("--dtypes", "fp8", "--dtypes: unknown fp8"),
    ],
)
def test_unknown_names_are_usage_errors(
    bench: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    message: str,
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--device", "cpu", "--quick", flag, value, "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "a usage error must not write reports"
