# SPDX-License-Identifier: Apache-2.0
"""The lint check that every kernel waits for the one ahead before touching memory
(ci/kernel_launches.py): clean on this checkout, and it names a kernel that does not start
with pdl_enter() and a <<<...>>> launch."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kernel_launches

ROOT = Path(__file__).resolve().parents[2]


def test_checkout_is_clean() -> None:
    assert kernel_launches.check(ROOT / "csrc") == []
    kernels = sum(
        p.read_text().count("__global__") for p in (ROOT / "csrc" / "ops").rglob("*_kernels.cuh")
    )
    assert kernels >= 20, "too few kernels found: the check would check nothing"


def test_catches_a_kernel_that_reads_first_and_a_plain_launch(tmp_path: Path) -> None:
    ops = tmp_path / "csrc" / "ops" / "foo"
    ops.mkdir(parents=True)
    (ops / "foo_kernels.cuh").write_text(
        "template <typename T>\n"
        "__global__ void __launch_bounds__(256)\n"
        "    good_kernel(T* out, const T* in) {\n"
        '  static_assert(sizeof(T) <= 4, "small");\n'
        "  stablekernels::cuda::pdl_enter();\n"
        "  out[0] = in[0];\n"
        "}\n"
        "// a comment naming pdl_enter() does not count\n"
        "__global__ void bad_kernel(float* out, const float* in) {\n"
        "  const float x = in[0];  // pdl_enter() too late\n"
        "  stablekernels::cuda::pdl_enter();\n"
        "  out[0] = x;\n"
        "}\n"
    )
    (ops / "foo_cuda.cu").write_text(
        "void launch(float* o, const float* i) {\n"
        "  launch_kernel(&bad_kernel, 1, 1, 0, nullptr, o, i);\n"
        "  bad_kernel<<<1, 1, 0, nullptr>>>(o, i);\n"
        "}\n"
    )
    errors = kernel_launches.check(tmp_path / "csrc")
    assert errors == [
        "csrc/ops/foo/foo_cuda.cu:3: a <<<...>>> launch (use launch_kernel)",
        "csrc/ops/foo/foo_kernels.cuh:9: a kernel whose body does not start with pdl_enter()",
    ], errors
