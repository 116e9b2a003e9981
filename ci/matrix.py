# SPDX-License-Identifier: Apache-2.0
"""The torch matrix: the same wheel file, installed with --no-deps under each torch
release from PyPI, running the same test suite unchanged (called by `nox -s test_matrix`).

    python ci/matrix.py --release 2.12 [torch=2.11,2.13] [python=3.11] [wheel=PATH]

A cell is one (torch release, Python) pair in a fresh uv venv under .nox/matrix/.
Before testing, the cell checks that the wheel file's sha256 is the one
`nox -s build` recorded in dist/build-manifest.json, and after installing, that
the compiled libraries on disk are byte-identical to the wheel's. Each cell
writes reports/cells/<cell>.json; the report (reports/compat.{json,md,html}) is
rendered after every cell from all cells of the same wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import compat_report
import tomllib
from _common import (
    DIST,
    ROOT,
    log,
    run,
    sha256,
    single_wheel,
    split_passthrough,
    test_requirements,
    uv,
    wheel_info,
)

CONFIG = Path(__file__).with_name("matrix.toml")
CELLS_DIR = compat_report.CELLS_DIR
VENVS = ROOT / ".nox" / "matrix"
MANIFEST = DIST / "build-manifest.json"


def load_config() -> dict:
    with open(CONFIG, "rb") as f:
        return tomllib.load(f)


def release_keys() -> list[str]:
    return [r["key"] for r in load_config()["release"]]


def parse_selection(posargs: list[str]) -> dict[str, list[str] | str]:
    """`torch=2.11,2.13 python=3.11 wheel=PATH` -> {"torch": [...], "python": [...], "wheel": "PATH"}."""
    sel: dict[str, list[str] | str] = {}
    for arg in posargs:
        m = re.fullmatch(r"(torch|python|wheel)=(.+)", arg)
        if not m:
            raise SystemExit(
                f"unknown matrix argument {arg!r}: expected torch=..., python=... or wheel=..."
            )
        key, value = m.groups()
        sel[key] = value if key == "wheel" else [v.strip() for v in value.split(",") if v.strip()]
    known = set(release_keys())
    for key in sel.get("torch", []):
        if key not in known:
            raise SystemExit(
                f"torch={key} is not in ci/matrix.toml (known: {', '.join(sorted(known))})"
            )
    return sel


def selected(release_key: str, posargs: list[str]) -> bool:
    chosen = parse_selection(posargs).get("torch")
    return not chosen or release_key in chosen


def _python_ok(version: str, spec: str) -> bool:
    v = tuple(int(x) for x in version.split("."))
    for clause in spec.split(","):
        m = re.fullmatch(r"\s*(>=|<=|<|>|==)\s*(\d+)\.(\d+)\s*", clause)
        if not m:
            raise SystemExit(f"unsupported requires-python clause {clause!r} in {CONFIG.name}")
        op, other = m.group(1), (int(m.group(2)), int(m.group(3)))
        ok = {">=": v >= other, "<=": v <= other, "<": v < other, ">": v > other, "==": v == other}[
            op
        ]
        if not ok:
            return False
    return True


def find_python(version: str) -> str | None:
    """An interpreter of `version` already on this machine (never downloaded)."""
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    proc = subprocess.run(
        [uv(), "python", "find", version], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def check_manifest(wheel: Path, info: dict) -> None:
    """The wheel is the one its build recorded: build-manifest.json beside the wheel
    (the release builds each variant into its own folder), else dist/'s."""
    path = wheel.parent / "build-manifest.json"
    path = path if path.exists() else MANIFEST
    if not path.exists():
        raise SystemExit(f"{path} is missing: build the wheel with `nox -s build`")
    manifest = json.loads(path.read_text())
    if manifest.get("name") != wheel.name or manifest.get("sha256") != info["sha256"]:
        raise SystemExit(
            f"{wheel.name} (sha256 {info['sha256']}) is not the wheel the build produced "
            f"({manifest.get('name')}, sha256 {manifest.get('sha256')}); rebuild with `nox -s build`"
        )


def check_installed_libraries(python: str, wheel: Path) -> None:
    """The compiled libraries in the venv are byte-identical to the wheel's."""
    site = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('stablekernels').origin))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.endswith(".so"):
                installed = Path(site) / Path(member).name
                if hashlib.sha256(zf.read(member)).hexdigest() != sha256(installed):
                    raise SystemExit(f"{installed} differs from {member} in {wheel.name}")


def torch_facts(python: str) -> dict:
    code = "import json, torch; print(json.dumps({'torch': torch.__version__, 'torch_cuda': torch.version.cuda}))"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {"torch": "?", "torch_cuda": None}


def gpu_label(python: str) -> str:
    code = (
        "import torch\n"
        "if torch.version.cuda and torch.cuda.is_available():\n"
        "    c = torch.cuda.get_device_capability()\n"
        "    print(f'{torch.cuda.get_device_name()} (sm_{c[0]}{c[1]})')\n"
        "else:\n"
        "    print('cpu')\n"
    )
    return (
        subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip() or "?"
    )


def junit_counts(xml_path: Path) -> dict:
    root = ET.parse(xml_path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tot = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for k in tot:
            tot[k] += int(s.get(k, 0))
    return {
        "passed": tot["tests"] - tot["failures"] - tot["errors"] - tot["skipped"],
        "failed": tot["failures"],
        "errors": tot["errors"],
        "skipped": tot["skipped"],
    }


def run_pytest(python: str, cell_id: str, pytest_args: list[str]) -> tuple[dict, int]:
    CELLS_DIR.mkdir(parents=True, exist_ok=True)
    xml = CELLS_DIR / f"{cell_id}.xml"
    xml.unlink(missing_ok=True)
    cmd = [
        python,
        "-m",
        "pytest",
        "-c",
        ROOT / "pyproject.toml",
        "--rootdir",
        ROOT,
        ROOT / "tests",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={xml}",
        *pytest_args,
    ]
    rc = run(cmd, cwd=ROOT, check=False).returncode
    counts = (
        junit_counts(xml) if xml.exists() else {"passed": 0, "failed": 0, "errors": 1, "skipped": 0}
    )
    return counts, rc


def check_refusal(python: str, floor: str) -> tuple[str, str]:
    """The import must fail with the floor message; returns (result, detail)."""
    proc = subprocess.run(
        [python, "-c", "import stablekernels"], capture_output=True, text=True, cwd="/"
    )
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    if proc.returncode != 0 and f"needs torch>={floor}" in last and last.startswith("ImportError"):
        return "refused", last
    if proc.returncode == 0:
        return "failed", "import succeeded on a torch older than the floor"
    return "failed", f"import failed without the floor message: {last}"


def write_cell(cell: dict) -> None:
    CELLS_DIR.mkdir(parents=True, exist_ok=True)
    (CELLS_DIR / f"{cell['id']}.json").write_text(json.dumps(cell, indent=2) + "\n")


def run_cell(
    release: dict,
    py_version: str,
    python_exe: str,
    wheel: Path,
    info: dict,
    pytest_args: list[str],
    position: str,
) -> dict:
    cell_id = f"torch-{release['key']}-py{py_version}"
    log(f"{position} cell {cell_id}: torch {release['torch']} on Python {py_version}")
    start = time.monotonic()
    venv = VENVS / cell_id
    shutil.rmtree(venv, ignore_errors=True)
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    run([uv(), "venv", "-q", "--python", python_exe, venv], env=env)
    py = str(venv / "bin" / "python")
    extra = ["--find-links", release["find-links"]] if release.get("find-links") else []
    run(
        [
            uv(),
            "pip",
            "install",
            "-q",
            "--python",
            py,
            *extra,
            f"torch=={release['torch']}",
            *test_requirements(),
        ]
    )
    if sha256(wheel) != info["sha256"]:
        raise SystemExit(f"{wheel} changed while the matrix ran")
    run([uv(), "pip", "install", "-q", "--python", py, "--no-deps", "--reinstall", wheel])
    check_installed_libraries(py, wheel)
    facts = torch_facts(py)
    cell = {
        "id": cell_id,
        "release": release["key"],
        "torch": facts["torch"],
        "torch_cuda": facts["torch_cuda"],
        "python": py_version,
        "host": gpu_label(py),
        "wheel_sha256": info["sha256"],
        "expect": release.get("expect", "pass"),
    }
    if release.get("expect") == "refused":
        result, detail = check_refusal(py, info["torch_floor"])
        cell.update(
            result=result,
            detail=detail,
            passed=0,
            failed=0 if result == "refused" else 1,
            errors=0,
            skipped=0,
        )
    else:
        counts, rc = run_pytest(py, cell_id, pytest_args)
        ok = rc == 0 and counts["failed"] == 0 and counts["errors"] == 0 and counts["passed"] > 0
        cell.update(counts, result="passed" if ok else "failed", detail=f"pytest exit code {rc}")
    cell["duration_s"] = round(time.monotonic() - start, 1)
    write_cell(cell)
    if not os.environ.get("STABLEKERNELS_MATRIX_KEEP_VENVS"):
        # a cell's venv is several GB where uv cannot hardlink from its cache
        shutil.rmtree(venv, ignore_errors=True)
    log(
        f"{position} cell {cell_id}: {cell['result'].upper()} (passed {cell['passed']}, failed "
        f"{cell['failed']}, errors {cell['errors']}, skipped {cell['skipped']}) in {cell['duration_s']:.0f} s"
    )
    return cell


def main(argv: list[str]) -> int:
    argv, pytest_args = split_passthrough(argv)
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--release", required=True, help="key of a [[release]] in ci/matrix.toml")
    p.add_argument("selection", nargs="*", help="torch=K1,K2  python=3.11  wheel=PATH")
    args = p.parse_args(argv)
    config = load_config()
    sel = parse_selection(args.selection)
    releases = {r["key"]: r for r in config["release"]}
    release = releases[args.release]
    wheel = Path(sel["wheel"]) if "wheel" in sel else single_wheel()
    info = wheel_info(wheel)
    check_manifest(wheel, info)
    keys = list(releases)
    position = f"[{keys.index(args.release) + 1}/{len(keys)}]"
    if release.get("find-links") and not Path(release["find-links"]).is_dir():
        log(
            f"{position} {args.release}: {release['find-links']} is not on this machine; optional cell not run"
        )
        return 0
    pythons = sel.get("python") or config["python"]
    supported = [v for v in pythons if _python_ok(v, release["requires-python"])]
    found = {v: find_python(v) for v in supported}
    missing = [v for v, exe in found.items() if exe is None]
    if missing:
        log(
            f"{position} {args.release}: Python {', '.join(missing)} not on this machine; those cells are not run"
        )
    cells = [
        run_cell(release, v, exe, wheel, info, pytest_args, position)
        for v, exe in found.items()
        if exe
    ]
    compat_report.render(info)
    if not cells:
        log(
            f"{position} {args.release}: no Python of {pythons} is both on this machine and supported "
            f"({release['requires-python']})"
        )
        return 1
    return 0 if all(c["result"] in ("passed", "refused") for c in cells) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
