# SPDX-License-Identifier: Apache-2.0
"""Versions the farm builds and tests with, in one place."""

from __future__ import annotations

# The torch whose stable-ABI headers the wheel is compiled against: the newest
# release. The floor (what the wheel runs on) is set by pyproject's torch>=.
TORCH_HEADERS = "2.15.0"

# The torch `nox -s tests` runs the suite under by default.
TORCH_TEST_DEFAULT = "2.15.0"
