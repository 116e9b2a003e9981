# SPDX-License-Identifier: Apache-2.0
"""Every nvcc translation unit (csrc/**/*.cu) must be torch-free: no chain of
#include lines resolvable under csrc/ may reach a torch header (torch/, ATen/, c10/).

Why (docs/farm.md, compile cache): sccache re-runs nvcc's host and per-arch device
preprocessing on every call, hit or miss, and torch's headers make each of those
passes slow; a torch-free .cu is a cheap hit. The torch-facing glue of a family
lives in its <family>_cuda.cpp, compiled by the C++ compiler.

An include is followed when it resolves, relative to the including file's folder
(quoted includes only) or to one of csrc/ and csrc/include/ (the build's include
dirs); includes that resolve nowhere under csrc/ (the CUDA toolkit, the standard
library) are system headers and are not followed, except that one naming torch/,
ATen/ or c10/ is the violation itself.

    python ci/nvcc_includes.py             # check csrc/ of this checkout
    python ci/nvcc_includes.py path/to/csrc
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TORCH_PREFIXES = ("torch/", "ATen/", "c10/")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)


def strip_comments(text: str) -> str:
    """The C/C++ text without comments; a block comment leaves its newlines (line numbers hold)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def includes(path: Path) -> list[tuple[str, str]]:
    """(delimiter, name) of every #include of `path`, in order; comments ignored."""
    return INCLUDE.findall(strip_comments(path.read_text(errors="replace")))


def resolve(name: str, quoted: bool, including: Path, roots: list[Path]) -> Path | None:
    """The file under csrc/ an include names, or None (a system header)."""
    candidates = ([including.parent] if quoted else []) + roots
    for base in candidates:
        p = base / name
        if p.is_file():
            return p.resolve()
    return None


def torch_chain(tu: Path, csrc: Path) -> list[str] | None:
    """The include chain from `tu` to its first torch header, or None if torch-free."""
    roots = [csrc, csrc / "include"]
    seen: set[Path] = set()

    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(csrc.parent))
        except ValueError:
            return str(p)

    def walk(f: Path, chain: list[str]) -> list[str] | None:
        if f in seen:
            return None
        seen.add(f)
        for delim, name in includes(f):
            if name.startswith(TORCH_PREFIXES):
                return [*chain, name]
            target = resolve(name, delim == '"', f, roots)
            if target is not None:
                found = walk(target, [*chain, rel(target)])
                if found:
                    return found
        return None

    start = tu.resolve()
    return walk(start, [rel(start)])


def check(csrc: Path) -> list[str]:
    """One message per .cu under `csrc` that reaches torch, naming the include chain."""
    csrc = csrc.resolve()
    errors = []
    for tu in sorted(csrc.rglob("*.cu")):
        chain = torch_chain(tu, csrc)
        if chain:
            errors.append(
                f"{chain[0]}: nvcc translation units must be torch-free, but it reaches "
                f"{chain[-1]} via {' -> '.join(chain)} (move the torch code into the "
                "family's _cuda.cpp: docs/adding-an-op.md)"
            )
    return errors


def main(argv: list[str]) -> int:
    csrc = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "csrc"
    errors = check(csrc)
    for e in errors:
        print(e)
    n = len(list(csrc.rglob("*.cu")))
    print(f"nvcc includes: {len(errors)} of {n} .cu files reach torch")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
