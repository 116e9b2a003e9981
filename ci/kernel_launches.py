# SPDX-License-Identifier: Apache-2.0
"""Every CUDA kernel under csrc/ops/ is launched with programmatic dependent launch where the
device allows (csrc/include/stablekernels/kernel_launch.cuh), so each must wait for the
kernel ahead of it before touching memory: the body of every `__global__` function starts
with `pdl_enter()` (static_asserts may come first; the first statement must name it), and
no launch goes around `launch_kernel` with `<<<...>>>`.

    python ci/kernel_launches.py             # check csrc/ of this checkout
    python ci/kernel_launches.py path/to/csrc
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from nvcc_includes import strip_comments

SUFFIXES = {".cu", ".cuh", ".h"}
CSRC = Path(__file__).resolve().parents[1] / "csrc"
GLOBAL = re.compile(r"__global__")


def _body_start(text: str, at: int) -> int | None:
    """The index just past the `{` that opens the body of the __global__ function at `at`
    (after its parameter list and any __launch_bounds__(...)), or None for a declaration."""
    i = at
    while True:
        open_paren = text.find("(", i)
        if open_paren < 0:
            return None
        depth, j = 0, open_paren
        while j < len(text):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        if text[i:open_paren].rstrip().endswith("__launch_bounds__"):
            i = j + 1
            continue
        rest = text[j + 1 :].lstrip()
        if not rest.startswith("{"):
            return None
        return len(text) - len(rest) + 1


def check(csrc: Path) -> list[str]:
    errors = []
    for path in sorted(p for p in (csrc / "ops").rglob("*") if p.suffix in SUFFIXES):
        text = strip_comments(path.read_text())
        name = path.relative_to(csrc.parent)
        for m in re.finditer(r"<<<", text):
            line = text.count("\n", 0, m.start()) + 1
            errors.append(f"{name}:{line}: a <<<...>>> launch (use launch_kernel)")
        for m in GLOBAL.finditer(text):
            start = _body_start(text, m.end())
            if start is None:
                continue
            statements = [s.strip() for s in text[start:].split(";")]
            first = next((s for s in statements if not s.startswith("static_assert")), "")
            if "pdl_enter" not in first:
                line = text.count("\n", 0, m.start()) + 1
                errors.append(f"{name}:{line}: a kernel whose body does not start with pdl_enter()")
    return errors


def main(argv: list[str]) -> int:
    errors = check(Path(argv[0]) if argv else CSRC)
    print("\n".join([*errors, f"kernel launches: {len(errors)} problems"]))
    return int(bool(errors))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
