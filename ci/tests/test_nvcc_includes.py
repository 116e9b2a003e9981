# SPDX-License-Identifier: Apache-2.0
"""The lint check that every nvcc translation unit is torch-free (ci/nvcc_includes.py):
clean on this checkout, and it names the .cu and the include chain of a bad one."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nvcc_includes

ROOT = Path(__file__).resolve().parents[2]


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "csrc"


def test_checkout_is_clean() -> None:
    assert nvcc_includes.check(ROOT / "csrc") == []
    assert list((ROOT / "csrc").rglob("*.cu")), "no .cu found: the check would check nothing"


def test_catches_torch_through_a_chain(tmp_path: Path) -> None:
    csrc = _write(
        tmp_path,
        {
            "csrc/ops/foo/foo_cuda.cu": '#include <cstdint>\n#include "ops/foo/foo_launch.h"\n',
            "csrc/ops/foo/foo_launch.h": '#pragma once\n#include "core/glue.h"\n',
            "csrc/core/glue.h": "#pragma once\n#include <torch/csrc/stable/tensor.h>\n",
            "csrc/ops/bar/bar_cuda.cu": (
                "#include <cuda_runtime.h>\n"
                '#include "stablekernels/ok.h"\n'
                "// #include <torch/csrc/stable/library.h>\n"
                "/* #include <ATen/ATen.h> */\n"
            ),
            "csrc/include/stablekernels/ok.h": "#pragma once\n#include <cstdint>\n",
        },
    )
    errors = nvcc_includes.check(csrc)
    assert len(errors) == 1, errors
    assert errors[0].startswith("csrc/ops/foo/foo_cuda.cu:")
    assert (
        "csrc/ops/foo/foo_cuda.cu -> csrc/ops/foo/foo_launch.h -> csrc/core/glue.h"
        " -> torch/csrc/stable/tensor.h" in errors[0]
    )
    assert nvcc_includes.main([str(csrc)]) == 1


def test_quoted_includes_resolve_next_to_the_file_and_c10_aten_count(tmp_path: Path) -> None:
    csrc = _write(
        tmp_path,
        {
            "csrc/ops/foo/foo_cuda.cu": '#include "foo_math.h"\n',
            "csrc/ops/foo/foo_math.h": "#pragma once\n#include <c10/util/Half.h>\n",
            "csrc/ops/baz/baz_cuda.cu": '#include "ATen/cuda/CUDAContext.h"\n',
            "csrc/ops/cyc/cyc_cuda.cu": '#include "cyc_a.h"\n',
            "csrc/ops/cyc/cyc_a.h": '#include "cyc_b.h"\n',
            "csrc/ops/cyc/cyc_b.h": '#include "cyc_a.h"\n',
        },
    )
    errors = nvcc_includes.check(csrc)
    assert [e.split(":")[0] for e in errors] == [
        "csrc/ops/baz/baz_cuda.cu",
        "csrc/ops/foo/foo_cuda.cu",
    ]
    assert "-> csrc/ops/foo/foo_math.h -> c10/util/Half.h" in errors[1]
    assert nvcc_includes.main([str(csrc / "ops" / "cyc")]) == 0
