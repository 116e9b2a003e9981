# SPDX-License-Identifier: Apache-2.0
"""Tests of the matrix tooling itself (selection, Python axis, JUnit parsing, report)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import compat_report
import matrix


def test_every_release_is_well_formed() -> None:
    config = matrix.load_config()
    keys = [r["key"] for r in config["release"]]
    assert len(keys) == len(set(keys))
    for r in config["release"]:
        assert r["torch"].startswith(r["key"].split("-")[0] + "."), r
        assert r.get("expect", "pass") in ("pass", "refused")
    assert [r["key"] for r in config["release"] if r.get("expect") == "refused"] == ["2.9"]
    assert {"2.10", "2.11", "2.12", "2.13", "2.14", "2.15"} <= set(keys)


def test_selection() -> None:
    assert matrix.parse_selection(["torch=2.11,2.13", "python=3.11"]) == {
        "torch": ["2.11", "2.13"],
        "python": ["3.11"],
    }
    assert matrix.selected("2.12", []) and matrix.selected("2.12", ["torch=2.12"])
    assert not matrix.selected("2.12", ["torch=2.11,2.13"])
    with pytest.raises(SystemExit, match=r"torch=2\.99 is not in ci/matrix\.toml"):
        matrix.parse_selection(["torch=2.99"])
    with pytest.raises(SystemExit, match=r"unknown matrix argument 'cuda=13'"):
        matrix.parse_selection(["cuda=13"])


@pytest.mark.parametrize(
    ("py", "spec", "ok"),
    [
        ("3.10", ">=3.10", True),
        ("3.10", ">=3.11", False),
        ("3.11", ">=3.11,<3.12", True),
        ("3.12", ">=3.11,<3.12", False),
        ("3.14", ">=3.10", True),
    ],
)
def test_python_axis(py: str, spec: str, ok: bool) -> None:
    assert matrix._python_ok(py, spec) is ok


def test_junit_counts(tmp_path: Path) -> None:
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest" tests="10" failures="2" errors="1" '
        'skipped="3" time="1.0"></testsuite></testsuites>'
    )
    assert matrix.junit_counts(xml) == {"passed": 4, "failed": 2, "errors": 1, "skipped": 3}


def _cell(release: str, result: str, sha: str, **kw) -> dict:
    return {
        "id": f"torch-{release}-py3.11",
        "release": release,
        "torch": f"{release}.0",
        "torch_cuda": "13.0",
        "python": "3.11",
        "host": "cpu",
        "wheel_sha256": sha,
        "expect": "pass",
        "passed": 5,
        "failed": 0,
        "errors": 0,
        "skipped": 1,
        "result": result,
        "detail": "d",
        "duration_s": 3.0,
        **kw,
    }


def test_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat_report, "REPORTS", tmp_path)
    monkeypatch.setattr(compat_report, "CELLS_DIR", tmp_path / "cells")
    (tmp_path / "cells").mkdir()
    info = {
        "name": "stablekernels-0.1.0-cp310-abi3-linux_x86_64.whl",
        "sha256": "a" * 64,
        "size": 1,
        "version": "0.1.0",
        "variant": "cu130",
        "cuda": "13.0",
        "sass_archs": ["80", "90"],
        "ptx_archs": ["90"],
        "torch_floor": "2.10",
        "torch_headers": "2.15.0",
        "git_revision": "x",
    }
    cells = [
        _cell("2.10", "passed", "a" * 64),
        _cell("2.11", "failed", "a" * 64, failed=2),
        _cell("2.12", "passed", "b" * 64),
    ]  # another wheel's cell: ignored
    for c in cells:
        (tmp_path / "cells" / f"{c['id']}.json").write_text(json.dumps(c))
    report = compat_report.render(info)
    assert [c["release"] for c in report["cells"]] == ["2.10", "2.11"]
    assert report["all_passed"] is False
    assert report["distinct_wheel_sha256"] == ["a" * 64]
    md = (tmp_path / "compat.md").read_text()
    assert "| 2.11.0 | 13.0 | 3.11 | cpu | FAILED | 5 / 2 / 1 |" in md
    assert "**Overall: FAILED**" in md
    page = (tmp_path / "compat.html").read_text()
    assert "<tr class='bad'><td>2.11.0</td>" in page and "Some cells FAILED" in page
    assert json.loads((tmp_path / "compat.json").read_text())["wheel"]["sha256"] == "a" * 64
