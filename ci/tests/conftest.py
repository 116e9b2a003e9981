# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the wheel gate's tests: the real wheel and its report, the gate
configuration, and a builder of bad inputs. No binary fixture is committed: every
bad library is compiled at test time, every bad wheel is a mutated copy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # ci/ (the gate) and ci/tests/ (helpers)

from gate import load_config, run_audit  # noqa: E402
from gate_fixtures import Builder, find_real_wheel  # noqa: E402


@pytest.fixture(scope="session")
def real_wheel() -> Path:
    return find_real_wheel()


@pytest.fixture(scope="session")
def gate_config() -> dict:
    return load_config()


@pytest.fixture(scope="session")
def real_report(real_wheel: Path, gate_config: dict):
    return run_audit(real_wheel, gate_config)


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(tmp_path_factory.mktemp("fixture-libs"))
