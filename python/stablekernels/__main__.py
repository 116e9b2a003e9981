# SPDX-License-Identifier: Apache-2.0
"""``python -m stablekernels``: what this wheel holds, what is running, and whether it can run."""

from __future__ import annotations

import sys

from ._info import main

if __name__ == "__main__":
    sys.exit(main())
