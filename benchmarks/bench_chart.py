# SPDX-License-Identifier: Apache-2.0
"""Render a report of benchmarks/run.py (its JSON) as an SVG chart, a panel each:

- bandwidth: every shape past the decode sizes (every shape where the run has no graph
  times: CPU runs), ours and torch.compile as a percentage of the device copy bandwidth
  measured in the same run, with the target line (90%);
- decode under CUDA graphs (GPU runs): the time a call, ours and torch.compile, on a log
  axis (powers of two).

benchmarks/run.py writes it beside the JSON and the markdown table; to redraw a report:

    python benchmarks/bench_chart.py reports/bench-cuda.json      # -> reports/bench-cuda.svg
    python benchmarks/bench_chart.py reports/bench-cuda.json -o docs/img/bench-cuda.svg

Plain SVG, no plotting library: the GPU machines that run the benchmark have no package
index.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

TARGET_PCT = 90.0
OURS, THEIRS, TARGET = "#1f6fb4", "#a7adb3", "#c0392b"
WIDTH, LABEL_W, VALUE_W = 960, 250, 60
PLOT_W = WIDTH - LABEL_W - VALUE_W - 20
BAR_H, ROW_GAP, OP_GAP = 7, 5, 18
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def compile_pct(row: dict, copy_gbps: float) -> float:
    """torch.compile's bandwidth on `row` as a percentage of the copy bandwidth."""
    return 100.0 * row["bytes"] / (row["compile_us"] * 1e-6) / (copy_gbps * 1e9)


def _text(x: float, y: float, text: str, size: int, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" {FONT} font-size="{size}"{extra}>{escape(text)}</text>'


def _nice_max(value: float, step: float) -> float:
    return max(step, math.ceil(value / step) * step)


@dataclass
class Panel:
    """Paired horizontal bars a row (ours, then torch.compile), grouped under their op's
    name. `rows` are (op, shape label, ours, torch.compile); the axis runs from 0 to `xmax`
    in ticks of `step`, or with `log`, from `xmin` to `xmax` (powers of two) in ticks of a
    power of two."""

    name: str
    title: str
    unit: str
    rows: list[tuple[str, str, float, float]]
    xmax: float
    step: float = 0.0
    target: float | None = None
    log: bool = False
    xmin: float = 0.0

    def x(self, value: float) -> float:
        v = min(max(value, self.xmin), self.xmax)
        if self.log:
            span = math.log2(self.xmax) - math.log2(self.xmin)
            return LABEL_W + PLOT_W * (math.log2(v) - math.log2(self.xmin)) / span
        return LABEL_W + PLOT_W * v / self.xmax

    def ticks(self) -> list[float]:
        if self.log:
            lo, hi = round(math.log2(self.xmin)), round(math.log2(self.xmax))
            return [2.0**k for k in range(lo, hi + 1)]
        return [i * self.step for i in range(round(self.xmax / self.step) + 1)]

    def draw(self, top: float) -> tuple[list[str], float]:
        """SVG elements of the panel from height `top` down, and the height below it."""
        y = axis_top = top + 30
        bars: list[str] = []
        last_op = None
        for op, label, ours, theirs in self.rows:
            if op != last_op:  # the op's name above its rows
                y += OP_GAP
                bars.append(_text(10, y - 4, op, 11, ' font-weight="bold"'))
            last_op = op
            bars.append(_text(LABEL_W - 8, y + BAR_H + 4, label, 11, ' text-anchor="end"'))
            for k, (value, color, cls) in enumerate(
                ((ours, OURS, "ours"), (theirs, THEIRS, "compile"))
            ):
                by, w = y + k * BAR_H, self.x(value) - LABEL_W
                tip = escape(f"{op} {label}: {cls} {value:.3g} {self.unit}")
                bars.append(
                    f'<rect class="{cls}" x="{LABEL_W}" y="{by:.1f}" width="{w:.2f}" '
                    f'height="{BAR_H}" fill="{color}"><title>{tip}</title></rect>'
                )
                bars.append(_text(LABEL_W + w + 4, by + BAR_H - 0.5, f"{value:.3g}", 9))
            y += 2 * BAR_H + ROW_GAP
        grid = []
        for tick in self.ticks():
            tx = self.x(tick)
            grid.append(
                f'<line x1="{tx:.1f}" y1="{axis_top - 4:.1f}" x2="{tx:.1f}" y2="{y:.1f}" '
                f'stroke="#e3e6e8"/>'
            )
            grid.append(
                _text(
                    tx,
                    axis_top - 7,
                    f"{tick:g}{self.unit if self.unit == '%' else ''}",
                    9,
                    ' text-anchor="middle"',
                )
            )
        if self.target is not None:
            tx = self.x(self.target)
            bars.append(
                f'<line class="target" x1="{tx:.1f}" y1="{axis_top - 4:.1f}" x2="{tx:.1f}" '
                f'y2="{y:.1f}" stroke="{TARGET}" stroke-dasharray="4 3"/>'
            )
        head = _text(10, top + 14, self.title, 13, ' font-weight="bold"')
        return [f'<g class="{self.name}">', head, *grid, *bars, "</g>"], y + 14


def panels(result: dict, target: float = TARGET_PCT) -> list[Panel]:
    """The chart's panels for a benchmark result (see the module's docstring)."""
    rows, copy_gbps = result["rows"], result["copy_gbps"]
    dtypes = len({r["dtype"] for r in rows})

    def label(r: dict) -> str:
        return f"{r['dtype']} {r['shape']}" if dtypes > 1 else r["shape"]

    graph = [r for r in rows if "ours_graph_us" in r]
    # with graph times (GPU runs) the decode shapes have a panel of their own
    wide = [r for r in rows if r.get("regime") != "decode"] if graph else rows
    found = []
    if wide:
        bw = [(r["op"], label(r), r["pct_copy"], compile_pct(r, copy_gbps)) for r in wide]
        top = max(max(o, t) for _, _, o, t in bw)
        title = f"Bandwidth, % of the device copy ({copy_gbps:.0f} GB/s); target {target:g}%"
        found.append(
            Panel("bandwidth", title, "%", bw, _nice_max(max(top, 100.0), 25.0), 25.0, target)
        )
    if graph:
        tg = [(r["op"], label(r), r["ours_graph_us"], r["compile_graph_us"]) for r in graph]
        # a log axis (powers of two): calls of 1 us and of 50 us side by side
        lo = min(min(o, t) for _, _, o, t in tg)
        hi = max(max(o, t) for _, _, o, t in tg)
        xmin, xmax = 2.0 ** math.floor(math.log2(lo)), 2.0 ** math.ceil(math.log2(hi))
        title = "Decode shapes under CUDA graphs, us a call (log scale; shorter is better)"
        found.append(Panel("graph", title, "us", tg, max(xmax, 2 * xmin), log=True, xmin=xmin))
    return found


def svg(result: dict, target: float = TARGET_PCT) -> str:
    """The chart of a benchmark result (the dict benchmarks/run.py writes as JSON)."""
    head = (
        f"stablekernels {result.get('stablekernels', '?')} on {result.get('device', '?')}, "
        f"torch {result.get('torch', '?')}, {result.get('date', '?')}"
    )
    body = [
        _text(10, 18, head, 12),
        f'<rect x="{LABEL_W}" y="28" width="12" height="8" fill="{OURS}"/>',
        _text(LABEL_W + 16, 36, "stablekernels", 11),
        f'<rect x="{LABEL_W + 110}" y="28" width="12" height="8" fill="{THEIRS}"/>',
        _text(LABEL_W + 126, 36, "torch.compile of the pure-torch op", 11),
    ]
    y = 46.0
    for panel in panels(result, target):
        part, y = panel.draw(y)
        body += part
    height = math.ceil(y)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}">\n<rect width="100%" height="100%" fill="white"/>\n'
        + "\n".join(body)
        + "\n</svg>\n"
    )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("report", type=Path, help="a JSON report of benchmarks/run.py")
    p.add_argument("-o", "--out", type=Path, help="SVG to write (default: the report's, .svg)")
    args = p.parse_args(argv)
    try:
        result = json.loads(args.report.read_text())
    except (OSError, ValueError) as e:
        p.error(f"report: cannot read {args.report} as JSON ({e})")
    if (
        not isinstance(result, dict)
        or not isinstance(result.get("rows"), list)
        or not result["rows"]
    ):
        p.error(
            f"report: {args.report} has no benchmark rows (expected the JSON of benchmarks/run.py)"
        )
    out = args.out or args.report.with_suffix(".svg")
    out.write_text(svg(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
