# SPDX-License-Identifier: Apache-2.0
"""The wheel gate: audits a built stablekernels wheel against ci/gate.toml.

`run_audit(wheel, config)` unpacks the wheel, runs the six check groups and
returns a `Report` (rows of check | result | detail, plus machine-readable data).
ci/audit.py is its command line; docs/wheel-gate.md describes the checks.
"""

from __future__ import annotations

from .config import DEFAULT_CONFIG, load_config
from .model import FAIL, INFO, PASS, WARN, Report, Row
from .runner import CHECK_GROUPS, run_audit

__all__ = [
    "CHECK_GROUPS",
    "DEFAULT_CONFIG",
    "FAIL",
    "INFO",
    "PASS",
    "WARN",
    "Report",
    "Row",
    "load_config",
    "run_audit",
]
