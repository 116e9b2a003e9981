# SPDX-License-Identifier: Apache-2.0
"""nox sessions of stablekernels. Sessions stay thin; the logic lives in ci/.

    nox -s build                 build dist/stablekernels-<v>-cp310-abi3-<platform>.whl
    nox -s build -- --archs sm90 --variant cu130 --cpu-only --cuda-toolchain pypi
    nox -s tests                 install that wheel with torch into a fresh venv, run pytest
    nox -s tests -- --torch 2.10.0 -- -k rms_norm
    nox -s lint                  ruff + clang-format (-- --fix to rewrite)
    nox -s docs                  mkdocs build --strict into site/
    nox -s audit                 the wheel gate on dist/*.whl (or -- path/to/x.whl ...)
    nox -s farm_tests            the wheel gate's own tests (ci/tests/)

Default sessions (plain `nox`): build, tests, lint, docs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv"
nox.options.sessions = ["build", "tests", "lint", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build the wheel (options: ci/build_wheel.py --help)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "build"), "uv")
    session.run("python", "ci/build_wheel.py", *session.posargs)
    if not {"-h", "--help"} & set(session.posargs):  # the gate, on the wheel just built
        session.install(*nox.project.dependency_groups(PYPROJECT, "audit"))
        session.run("python", "ci/audit.py", "--after-build", *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Test the wheel in dist/ (built first if missing) under one torch (ci/run_tests.py --help)."""
    session.install("uv")
    if not list(Path("dist").glob("stablekernels-*.whl")):
        session.log("no wheel in dist/: running `nox -s build` first")
        session.run(sys.executable, "-m", "nox", "-s", "build", external=True)
    session.run("python", "ci/run_tests.py", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff and clang-format (-- --fix rewrites files)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("python", "ci/lint.py", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)


@nox.session(python=PYTHON)
def audit(session: nox.Session) -> None:
    """The wheel gate on dist/*.whl, or on the wheels given (ci/audit.py --help)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "audit"))
    session.run("python", "ci/audit.py", *session.posargs)


@nox.session(python=PYTHON)
def farm_tests(session: nox.Session) -> None:
    """The wheel gate's own tests (ci/tests/) against the wheel in dist/ (built first if missing)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "audit"), "pytest>=8")
    if not list(Path("dist").glob("stablekernels-*.whl")):
        session.log("no wheel in dist/: running `nox -s build` first")
        session.run(sys.executable, "-m", "nox", "-s", "build", external=True)
    session.run("python", "-m", "pytest", "ci/tests", *session.posargs)
