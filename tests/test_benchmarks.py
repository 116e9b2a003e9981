# SPDX-License-Identifier: Apache-2.0
"""benchmarks/run.py: a real CPU smoke run (report files, same-size copy columns,
host overhead, the chart), the --match shape filter, the markdown rendering, and
benchmarks/bench_chart.py's panels and command line."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest
from helpers import load_script
from stablekernels.ops import REGISTRY

RUN_PY = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
OP = "rms_norm"  # cheap to compile on CPU; two quick shapes
STEM = "bench-cpu-quick"
SAME_HEADER = "% of same-size copy"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script(RUN_PY, "stablekernels_bench_run")


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
def smoke(
    bench: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, dict, str, str]:
    out = tmp_path_factory.mktemp("bench")
    rc = bench.main(_argv(out))
    paths = [out / f"{STEM}.{ext}" for ext in ("json", "md", "svg")]
    for path in paths:
        assert path.is_file(), f"no {path.name} in {sorted(p.name for p in out.iterdir())}"
    json_path, md_path, svg_path = paths
    return rc, json.loads(json_path.read_text()), md_path.read_text(), svg_path.read_text()


def _unique_label() -> str:
    """A quick-case label of OP that no other quick label of OP contains."""
    labels = [case.label for case in REGISTRY[OP].bench_quick]
    for label in labels:
        if sum(label in other for other in labels) == 1:
            return label
    raise AssertionError(f"{OP}: no quick label selects exactly one shape: {labels}")


def test_cpu_quick_run_writes_rows_with_same_size_copy(
    smoke: tuple[int, dict, str, str],
) -> None:
    rc, result, md, _ = smoke
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


def test_cpu_quick_run_checks_its_targets(smoke: tuple[int, dict, str, str]) -> None:
    _, result, md, _ = smoke
    assert result["device_kind"] == "cpu"
    cases = {case.label: case for case in REGISTRY[OP].bench_quick}
    for r in result["rows"]:
        assert r["targets"] == cases[r["shape"]].targets.as_dict(), r
    # a CPU run holds every row to eager, and the report ends with that verdict
    verdict = md[md.index("Targets (benchmarks/targets.py):") :]
    rows = len(result["rows"])
    held = sum(r["ours_us"] <= r["eager_us"] for r in result["rows"])
    assert f"| CPU: no slower than eager | {rows} | {held} |" in verdict


def test_cpu_quick_run_measures_host_overhead(smoke: tuple[int, dict, str, str]) -> None:
    _, result, md, _ = smoke
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


SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: str, panel: str) -> dict[str, list[float]]:
    """Widths of the `ours` and `compile` bars of one panel (a <g class=...>) of a chart."""
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == panel]
    assert len(groups) <= 1, f"{len(groups)} panels named {panel}"
    widths: dict[str, list[float]] = {"ours": [], "compile": []}
    for g in groups:
        for rect in g.iter(f"{SVG}rect"):
            widths[rect.get("class", "")].append(float(rect.get("width", "nan")))
    return widths


def test_cpu_quick_run_writes_chart_of_its_rows(
    bench: ModuleType, smoke: tuple[int, dict, str, str]
) -> None:
    _, result, _, svg = smoke
    bars = _bars(svg, "bandwidth")
    # a CPU run has no graph times: every row is in the bandwidth panel, ours then compile
    assert len(bars["ours"]) == len(bars["compile"]) == len(result["rows"]) > 0
    xmax = bench.bench_chart.panels(result)[0].xmax
    for r, w_ours, w_comp in zip(result["rows"], bars["ours"], bars["compile"], strict=True):
        full = bench.bench_chart.PLOT_W
        assert w_ours == pytest.approx(full * min(r["pct_copy"], xmax) / xmax, abs=0.01)
        theirs = bench.bench_chart.compile_pct(r, result["copy_gbps"])
        assert w_comp == pytest.approx(full * min(theirs, xmax) / xmax, abs=0.01)
    assert _bars(svg, "graph") == {"ours": [], "compile": []}


def test_chart_panels_bar_lengths_and_target(bench: ModuleType) -> None:
    chart = bench.bench_chart
    rows = [
        _row("a", "prefill", pct_copy=45.0),  # compile: 1 MiB in 23.4 us of 1000 GB/s: 4.48%
        _row("x<y & z", "prefill", pct_copy=112.0),
        _row("c", "decode", ours_graph_us=1.5, compile_graph_us=6.0),
    ]
    svg = chart.svg(_result(rows))
    bw = _bars(svg, "bandwidth")
    assert len(bw["ours"]) == len(bw["compile"]) == 2  # the decode row is in the graph panel
    # the axis: 0 to 125% (the next 25% past 112%)
    # widths are written to 0.01
    assert bw["ours"] == pytest.approx(
        [chart.PLOT_W * 45 / 125, chart.PLOT_W * 112 / 125], abs=0.01
    )
    comp = 100 * (1 << 20) / 23.4e-6 / 1e12
    assert bw["compile"] == pytest.approx([chart.PLOT_W * comp / 125] * 2, abs=0.01)
    root = ET.fromstring(svg)
    target = [e for e in root.iter(f"{SVG}line") if e.get("class") == "target"]
    assert [float(e.get("x1", "nan")) for e in target] == pytest.approx(
        [chart.LABEL_W + chart.PLOT_W * 90 / 125]
    )
    assert "x<y & z" in "".join(root.itertext())  # escaped in the file, text when parsed
    # graph panel: log2 axis from 1 to 8 us
    g = _bars(svg, "graph")
    span = math.log2(8) - math.log2(1)
    assert g["ours"] == pytest.approx([chart.PLOT_W * math.log2(1.5) / span], abs=0.01)
    assert g["compile"] == pytest.approx([chart.PLOT_W * math.log2(6.0) / span], abs=0.01)


def test_chart_without_graph_times_puts_decode_rows_in_bandwidth(bench: ModuleType) -> None:
    svg = bench.bench_chart.svg(_result([_row("a", "decode"), _row("b", "prefill")]))
    assert len(_bars(svg, "bandwidth")["ours"]) == 2
    assert _bars(svg, "graph")["ours"] == []


def test_chart_command_line(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "bench-x.json"
    report.write_text(json.dumps(_result([_row("a", "prefill")])))
    assert bench.bench_chart.main([str(report)]) == 0
    assert len(_bars((tmp_path / "bench-x.svg").read_text(), "bandwidth")["ours"]) == 1
    for text in ("{not json", json.dumps({"rows": []})):
        report.write_text(text)
        with pytest.raises(SystemExit) as exc:
            bench.bench_chart.main([str(report), "-o", str(tmp_path / "bad.svg")])
        assert exc.value.code == 2
        assert "report:" in capsys.readouterr().err
    assert not (tmp_path / "bad.svg").exists()


def test_docs_chart_is_drawn_from_the_docs_report(bench: ModuleType) -> None:
    # docs/performance.md shows docs/img/bench-cuda.svg and links the run's JSON beside it:
    # the chart must be what bench_chart draws from that JSON (a table and chart of one run)
    docs = RUN_PY.parent.parent / "docs"
    result = json.loads((docs / "data" / "bench-cuda.json").read_text())
    assert result["rows"] and all(
        "ours_graph_us" in r for r in result["rows"] if r["regime"] == "decode"
    )
    assert (docs / "img" / "bench-cuda.svg").read_text() == bench.bench_chart.svg(result)
    table = (docs / "performance.md").read_text()
    assert result["date"] in table, (
        "docs/performance.md's table is not from docs/data/bench-cuda.json"
    )
