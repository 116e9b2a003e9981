# SPDX-License-Identifier: Apache-2.0
"""Render the compatibility report from the matrix cells of one wheel:
reports/compat.json (machine-readable), reports/compat.md and reports/compat.html
(one self-contained page) for people.

    python ci/compat_report.py [wheel=PATH]     # re-render from reports/cells/*.json
"""

from __future__ import annotations

import datetime
import html
import json
import os
import sys
from pathlib import Path

from _common import ROOT, log

# STABLEKERNELS_REPORTS moves the reports elsewhere (the release tests keep theirs apart)
REPORTS = Path(os.environ.get("STABLEKERNELS_REPORTS") or ROOT / "reports")
CELLS_DIR = REPORTS / "cells"

RESULT_TEXT = {
    "passed": "passed",
    "refused": "refused as expected",
    "failed": "FAILED",
}


def _release_order() -> list[str]:
    import matrix

    return matrix.release_keys()


def load_cells(sha: str) -> tuple[list[dict], int]:
    """Cells of the wheel with this sha256, in matrix order; and how many stale cells were ignored."""
    cells, stale = [], 0
    for path in sorted(CELLS_DIR.glob("*.json")):
        cell = json.loads(path.read_text())
        if cell.get("wheel_sha256") == sha:
            cells.append(cell)
        else:
            stale += 1
    order = {k: i for i, k in enumerate(_release_order())}
    cells.sort(key=lambda c: (order.get(c["release"], 999), c["python"], c.get("host", "")))
    return cells, stale


def _counts(c: dict) -> str:
    return f"{c['passed']} / {c['failed'] + c['errors']} / {c['skipped']}"


def render(info: dict) -> dict:
    cells, stale = load_cells(info["sha256"])
    ok = all(c["result"] in ("passed", "refused") for c in cells)
    run_keys = {c["release"] for c in cells}
    not_run = [k for k in _release_order() if k not in run_keys]
    report = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wheel": info,
        "cells": cells,
        "not_run": not_run,
        "all_passed": ok and bool(cells),
        "distinct_wheel_sha256": sorted({c["wheel_sha256"] for c in cells}),
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "compat.json").write_text(json.dumps(report, indent=2) + "\n")
    (REPORTS / "compat.md").write_text(_markdown(report))
    (REPORTS / "compat.html").write_text(_html(report))
    log(
        f"compatibility report: {len(cells)} cell(s), "
        f"{'all passed' if report['all_passed'] else 'NOT all passed'}"
        f"{f', {stale} cell(s) of other wheels ignored' if stale else ''} -> reports/compat.{{md,html,json}}"
    )
    return report


def _wheel_lines(w: dict) -> list[tuple[str, str]]:
    return [
        ("wheel", w["name"]),
        ("sha256", w["sha256"]),
        ("variant", f"{w['variant']} (CUDA {w['cuda'] or 'none'})"),
        (
            "archs",
            f"SASS {', '.join('sm_' + a for a in w['sass_archs']) or 'none'}; "
            f"PTX {', '.join('compute_' + a for a in w['ptx_archs']) or 'none'}",
        ),
        (
            "torch floor",
            f"{w['torch_floor']} (compiled against torch {w['torch_headers']} headers)",
        ),
        ("git", w["git_revision"]),
    ]


def _markdown(r: dict) -> str:
    lines = ["# stablekernels compatibility matrix", ""]
    lines += [f"- **{k}**: `{v}`" for k, v in _wheel_lines(r["wheel"])]
    lines += [
        "",
        f"One wheel file for every cell (distinct sha256 across cells: {len(r['distinct_wheel_sha256'])}). "
        f"Generated {r['generated']}.",
        "",
    ]
    lines += [
        "| torch | torch CUDA | Python | device | result | passed / failed / skipped | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in r["cells"]:
        lines.append(
            f"| {c['torch']} | {c['torch_cuda'] or 'cpu'} | {c['python']} | {c.get('host', 'cpu')} | "
            f"{RESULT_TEXT.get(c['result'], c['result'])} | {_counts(c)} | {c['duration_s']:.0f} s |"
        )
    if r["not_run"]:
        lines += ["", f"Not run in this report: {', '.join(r['not_run'])}."]
    refused = [c for c in r["cells"] if c["result"] == "refused"]
    for c in refused:
        lines += ["", f"torch {c['torch']} (below the floor): `{c['detail']}`"]
    lines += ["", f"**Overall: {'all cells passed' if r['all_passed'] else 'FAILED'}**", ""]
    return "\n".join(lines)


def _html(r: dict) -> str:
    e = html.escape
    rows = []
    for c in r["cells"]:
        cls = {"passed": "ok", "refused": "ok", "failed": "bad"}.get(c["result"], "bad")
        rows.append(
            f"<tr class='{cls}'><td>{e(c['torch'])}</td><td>{e(c['torch_cuda'] or 'cpu')}</td>"
            f"<td>{e(c['python'])}</td><td>{e(c.get('host', 'cpu'))}</td><td>{e(RESULT_TEXT.get(c['result'], c['result']))}</td>"
            f"<td class='n'>{c['passed']}</td><td class='n'>{c['failed'] + c['errors']}</td>"
            f"<td class='n'>{c['skipped']}</td><td class='n'>{c['duration_s']:.0f} s</td>"
            f"<td class='d'>{e(c['detail'])}</td></tr>"
        )
    meta = "".join(
        f"<tr><th>{e(k)}</th><td><code>{e(v)}</code></td></tr>" for k, v in _wheel_lines(r["wheel"])
    )
    verdict = "All cells passed" if r["all_passed"] else "Some cells FAILED"
    not_run = (
        f"<p>Not run in this report: {e(', '.join(r['not_run']))}.</p>" if r["not_run"] else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stablekernels compatibility matrix</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1b1f24; }}
h1 {{ font-size: 1.5rem; }} table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ padding: .35rem .7rem; border-bottom: 1px solid #d0d7de; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }} td.d {{ color: #57606a; font-size: .85rem; }}
tr.ok td:nth-child(5) {{ color: #1a7f37; font-weight: 600; }} tr.bad td {{ background: #ffebe9; }}
tr.bad td:nth-child(5) {{ color: #cf222e; font-weight: 700; }} code {{ font-size: .85rem; }}
.verdict {{ font-weight: 700; color: {"#1a7f37" if r["all_passed"] else "#cf222e"}; }}
</style></head><body>
<h1>stablekernels compatibility matrix</h1>
<table class="meta">{meta}</table>
<p>The same wheel file in every cell (distinct sha256 across cells: {len(r["distinct_wheel_sha256"])}),
installed with <code>--no-deps</code> next to each torch release, running the same tests.
Generated {e(r["generated"])}.</p>
<table><thead><tr><th>torch</th><th>torch CUDA</th><th>Python</th><th>device</th><th>result</th><th>passed</th>
<th>failed</th><th>skipped</th><th>time</th><th>detail</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table>{not_run}
<p class="verdict">{verdict}</p>
</body></html>
"""


def main(argv: list[str]) -> int:
    import matrix
    from _common import single_wheel

    sel = matrix.parse_selection(argv)
    wheel = Path(sel["wheel"]) if "wheel" in sel else single_wheel()
    report = render(matrix.wheel_info(wheel))
    print((REPORTS / "compat.md").read_text())
    return 0 if report["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
