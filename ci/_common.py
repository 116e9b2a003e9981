# SPDX-License-Identifier: Apache-2.0
"""Small helpers shared by the ci/ scripts."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"


def log(msg: str) -> None:
    print(f"[stablekernels] {msg}", flush=True)


def run(cmd: list, *, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    log("$ " + shlex.join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=check, **kwargs)


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """`a b -- c d` -> ([a, b], [c, d]): the script's own arguments, and those it passes on."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def uv() -> str:
    path = shutil.which("uv")
    if not path:
        sys.exit("uv is needed (pip install uv)")
    return path


def uv_pip_install(*args: str, python: str = sys.executable) -> None:
    run([uv(), "pip", "install", "--python", python, *args])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_wheels(dist: Path = DIST) -> list[Path]:
    return sorted(dist.glob("stablekernels-*.whl"))


def single_wheel(dist: Path = DIST) -> Path:
    wheels = find_wheels(dist)
    if len(wheels) != 1:
        sys.exit(
            f"expected exactly one stablekernels wheel in {dist}, found {[w.name for w in wheels]}; "
            "pass --wheel PATH"
        )
    return wheels[0]


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("STABLEKERNELS_GIT_REVISION", "unknown")


def wheel_info(wheel: Path) -> dict:
    """Name, sha256 and the build record of a wheel, read from the file itself."""
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read("stablekernels/_build_info.py").decode()
    ns: dict = {}
    exec(compile(text, "_build_info.py", "exec"), ns)  # our own generated constants
    return {
        "name": wheel.name,
        "sha256": sha256(wheel),
        "size": wheel.stat().st_size,
        "version": ns["VERSION"],
        "variant": ns["CUDA_VARIANT"],
        "cuda": ns["CUDA_VERSION"],
        "sass_archs": list(ns["SASS_ARCHS"]),
        "ptx_archs": list(ns["PTX_ARCHS"]),
        "torch_floor": ns["TORCH_MIN"],
        "torch_headers": ns["TORCH_HEADER_VERSION"],
        "git_revision": ns["GIT_REVISION"],
    }


def write_manifest(wheel: Path, manifest: Path) -> dict:
    """Record a built wheel (wheel_info) in a build-manifest.json, which the torch
    matrix checks the wheel against before testing it."""
    info = wheel_info(wheel)
    manifest.write_text(json.dumps(info, indent=2) + "\n")
    return info


def dependency_group(name: str) -> list[str]:
    """The requirements of a dependency group of pyproject.toml (included groups left out)."""
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        groups = tomllib.load(f)["dependency-groups"]
    return [r for r in groups[name] if isinstance(r, str)]


def test_requirements() -> list[str]:
    """The `test` dependency group of pyproject.toml (what every test environment installs)."""
    return dependency_group("test")
