# SPDX-License-Identifier: Apache-2.0
"""Numerics of the norm family against the float64 references, every device x dtype x layout."""

from __future__ import annotations

import pytest
import stablekernels
import torch
from helpers import DEVICES, LAYOUTS, make_tensor, nan_like
from stablekernels.ops import REGISTRY
from stablekernels.ops.norm import fused_add_rms_norm_ref, rms_norm_ref

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# hidden sizes: tiny, odd, not a multiple of 8, typical, and ones past the CUDA
# register kernels (generic two-pass path) for both the vector and scalar access.
SHAPES = [(1, 8), (7, 111), (2, 3, 1000), (5, 4096), (3, 5, 4100), (2, 8200), (2, 40000)]
EPS = [1e-6, 1e-2]


def _tol(op: str, dtype: torch.dtype) -> dict[str, float]:
    return REGISTRY[op].tol(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_rms_norm(device: str, dtype: torch.dtype, shape: tuple[int, ...], layout: str) -> None:
    x = make_tensor(shape, layout, dtype, device, seed=1)
    w = make_tensor(shape[-1:], "contiguous", dtype, device, seed=2)
    out = nan_like(x)
    torch.ops.stablekernels.rms_norm(out, x, w, 1e-6)
    expected = rms_norm_ref(x, w, 1e-6)
    torch.testing.assert_close(out, expected, **_tol("rms_norm", dtype))
    # the functional wrapper agrees with the raw op bit for bit
    torch.testing.assert_close(stablekernels.rms_norm(x, w, 1e-6), out, atol=0, rtol=0)


# More rows than the decode path takes (64): the persistent kernel (<= 4096 rows, rows of
# <= 512 16-byte vectors) and, beyond, one block per row (256-thread blocks); the two-pass
# kernel for rows of 513-2048 16-byte vectors in 512-thread blocks (2 vectors a thread:
# 6000 and 8192 bf16/fp16, 4096 fp32; 4: 8200, 12288, 16384 bf16/fp16, 6000 and 8192 fp32;
# 6000, 8200 and 12288 end inside a thread's items; on a device whose memory peaks under 30
# GB/s per SM, such as the H100, rows of 1025-2048 vectors take 1024 x 2 instead: 8200,
# 12288 and 16384 bf16/fp16, 6000 and 8192 fp32) and of 2049-4096 in 1024-thread blocks
# (12288 and 16384 fp32, 20000 and 32768 bf16/fp16; 12288 and 20000 end inside a thread's
# items), with rows as one stride or as several dims (row_dims); the generic kernel beyond
# (40000; 20000 and 32768 fp32).
MANY_ROW_SHAPES = [
    (65, 4096),
    (300, 12288),
    (4097, 1000),
    (4097, 8200),
    (4097, 16384),
    (70, 8192),
    (80, 6000),
    (66, 20000),
    (70, 32768),
    (65, 40000),
]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", MANY_ROW_SHAPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "row_strided"])
def test_rms_norm_many_rows(dtype: torch.dtype, shape: tuple[int, ...], layout: str) -> None:
    x = make_tensor(shape, layout, dtype, "cuda", seed=13)
    w = make_tensor(shape[-1:], "contiguous", dtype, "cuda", seed=14)
    expected = rms_norm_ref(x, w, 1e-6)
    out = nan_like(x)
    torch.ops.stablekernels.rms_norm(out, x, w, 1e-6)
    torch.testing.assert_close(out, expected, **_tol("rms_norm", dtype))
    torch.ops.stablekernels.rms_norm(x, x, w, 1e-6)  # in place
    torch.testing.assert_close(x, expected, **_tol("rms_norm", dtype))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [8192, 12288, 16384])
def test_rms_norm_many_rows_row_dims(dtype: torch.dtype, hidden: int) -> None:
    """Rows whose offsets take two dims (a slice of the middle dim: 16-byte aligned rows that
    no single stride reaches), on more rows than the decode path takes."""
    g = torch.Generator().manual_seed(15)
    x = torch.randn(33, 5, hidden, generator=g).to(dtype).to("cuda")[:, 1:4]
    w = torch.randn(hidden, generator=g).to(dtype).to("cuda")
    expected = rms_norm_ref(x, w, 1e-6)
    out = torch.full((33, 5, hidden), float("nan"), dtype=dtype, device="cuda")[:, 2:5]
    torch.ops.stablekernels.rms_norm(out, x, w, 1e-6)
    torch.testing.assert_close(out, expected, **_tol("rms_norm", dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", EPS)
def test_rms_norm_epsilon_and_output_layout(device: str, dtype: torch.dtype, eps: float) -> None:
    # small values make epsilon matter; the output is itself a strided view
    x = make_tensor((6, 3, 72), "contiguous", dtype, device, seed=3) * 0.05
    w = make_tensor((72,), "contiguous", dtype, device, seed=4)
    big_out = nan_like(x, (6, 3, 90))
    out = big_out[..., 9:81]
    torch.ops.stablekernels.rms_norm(out, x, w, eps)
    torch.testing.assert_close(out, rms_norm_ref(x, w, eps), **_tol("rms_norm", dtype))
    assert big_out[..., :9].isnan().all() and big_out[..., 81:].isnan().all(), (
        "wrote outside 'result'"
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_in_place(device: str, dtype: torch.dtype) -> None:
    x = make_tensor((9, 257), "row_strided", dtype, device, seed=5)
    w = make_tensor((257,), "contiguous", dtype, device, seed=6)
    expected = rms_norm_ref(x, w, 1e-6)
    torch.ops.stablekernels.rms_norm(x, x, w, 1e-6)  # result aliases input
    torch.testing.assert_close(x, expected, **_tol("rms_norm", dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_empty(device: str, dtype: torch.dtype) -> None:
    x = torch.empty((0, 64), dtype=dtype, device=device)
    w = torch.ones(64, dtype=dtype, device=device)
    assert stablekernels.rms_norm(x, w).shape == (0, 64)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_fused_add_rms_norm(
    device: str, dtype: torch.dtype, shape: tuple[int, ...], layout: str
) -> None:
    x = make_tensor(shape, layout, dtype, device, seed=7)
    r = make_tensor(shape, layout, dtype, device, seed=8)
    w = make_tensor(shape[-1:], "contiguous", dtype, device, seed=9)
    exp_out, exp_res = fused_add_rms_norm_ref(x, r, w, 1e-6)
    got_out, got_res = stablekernels.fused_add_rms_norm(x, r, w, 1e-6)
    # the new residual is x + r rounded once to the dtype: exact
    torch.testing.assert_close(got_res, exp_res, atol=0, rtol=0)
    torch.testing.assert_close(got_out, exp_out, **_tol("fused_add_rms_norm", dtype))
    # in place, through the raw op, on the strided tensors themselves (the wrapper
    # ran on contiguous copies, which may take another kernel path: compare with
    # the reference, not bit for bit)
    torch.ops.stablekernels.fused_add_rms_norm(x, r, w, 1e-6)
    torch.testing.assert_close(r, exp_res, atol=0, rtol=0)
    torch.testing.assert_close(x, exp_out, **_tol("fused_add_rms_norm", dtype))


# fused_add_rms_norm past the decode rows (64): up to 4096 rows the decode kernel's one block
# a row (rows of up to 2048 16-byte vectors: 4096 and 16384 bf16/fp16, 8192 fp32; 8200 ends
# inside a thread's vectors; 20000 bf16 and 16384 fp32 are past it and take the generic
# kernel), past 4096 rows the register kernels (1000, 4096) and the generic kernel (8200);
# rows as one stride, as several dims (noncollapsible, on the 3-dim shape), and of scalar
# access (row_strided: rows 13 elements apart).
FUSED_MANY_ROW_SHAPES = [
    (65, 4096),
    (300, 8200),
    (70, 16384),
    (66, 20000),
    (33, 3, 1000),
    (4097, 1000),
    (4097, 4096),
    (4097, 8200),
]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", FUSED_MANY_ROW_SHAPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "row_strided", "noncollapsible"])
def test_fused_add_rms_norm_many_rows(
    dtype: torch.dtype, shape: tuple[int, ...], layout: str
) -> None:
    x = make_tensor(shape, layout, dtype, "cuda", seed=31)
    r = make_tensor(shape, layout, dtype, "cuda", seed=32)
    w = make_tensor(shape[-1:], "contiguous", dtype, "cuda", seed=33)
    exp_out, exp_res = fused_add_rms_norm_ref(x, r, w, 1e-6)
    torch.ops.stablekernels.fused_add_rms_norm(x, r, w, 1e-6)  # in place, on x and r as laid out
    torch.testing.assert_close(r, exp_res, atol=0, rtol=0)
    torch.testing.assert_close(x, exp_out, **_tol("fused_add_rms_norm", dtype))


# A non-finite value in a row's first vector. Threads whose slice runs past the row end load
# that vector in its place (always valid memory) and must leave it out of the sum: an inf
# times 0 there would turn the row's sum into NaN (rows of 8200: 1025 vectors, blocks of 544
# threads x 2, and on 65 rows the two-pass kernel's 512 x 4; rows of 8: one vector, 32
# threads).
NON_FINITE_SHAPES = [(1, 8), (2, 8200), (3, 1000), (33, 4104), (65, 8200)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", NON_FINITE_SHAPES, ids=str)
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=str)
def test_norms_non_finite_first_vector(
    device: str, dtype: torch.dtype, shape: tuple[int, ...], value: float
) -> None:
    x = make_tensor(shape, "contiguous", dtype, device, seed=21)
    r = make_tensor(shape, "contiguous", dtype, device, seed=22)
    w = make_tensor(shape[-1:], "contiguous", dtype, device, seed=23)
    x[0, 0] = value
    exp_out, exp_res = fused_add_rms_norm_ref(x, r, w, 1e-6)
    got_out, got_res = stablekernels.fused_add_rms_norm(x, r, w, 1e-6)
    torch.testing.assert_close(got_res, exp_res, atol=0, rtol=0, equal_nan=True)
    torch.testing.assert_close(
        got_out, exp_out, equal_nan=True, **_tol("fused_add_rms_norm", dtype)
    )
    # inf: the row's sum is inf, its finite elements normalize to 0 (not NaN)
    if value != value:
        assert got_out[0].isnan().all()
    else:
        assert got_out[0, 0].isnan() and (got_out[0, 1:] == 0).all()
    torch.testing.assert_close(
        stablekernels.rms_norm(x, w, 1e-6),
        rms_norm_ref(x, w, 1e-6),
        equal_nan=True,
        **_tol("rms_norm", dtype),
    )


@pytest.mark.parametrize("device", DEVICES)
def test_fused_add_rms_norm_leaves_arguments(device: str) -> None:
    x = make_tensor((4, 48), "contiguous", torch.float32, device, seed=10)
    r = make_tensor((4, 48), "contiguous", torch.float32, device, seed=11)
    w = make_tensor((48,), "contiguous", torch.float32, device, seed=12)
    x0, r0 = x.clone(), r.clone()
    stablekernels.fused_add_rms_norm(x, r, w)
    assert torch.equal(x, x0) and torch.equal(r, r0)
    stablekernels.fused_add_rms_norm_(x, r, w)
    assert torch.equal(r, x0 + r0)
