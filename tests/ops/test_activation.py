# SPDX-License-Identifier: Apache-2.0
"""Numerics of the activation family against the float64 references."""

from __future__ import annotations

import pytest
import torch
from helpers import DEVICES, LAYOUTS, make_tensor, nan_like
from stablekernels.ops import REGISTRY

OPS = ["silu_and_mul", "gelu_and_mul", "gelu_tanh_and_mul"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# input [..., 2d]: d tiny, odd, not a multiple of 8, typical, large
# Rows up to 64 take the CUDA decode launch (8-byte vectors), more rows the other one
# (16-byte vectors, two a thread): (64, ...) and (65, ...) sit either side of the limit.
SHAPES = [
    (1, 2),
    (7, 2 * 111),
    (2, 3, 2 * 1000),
    (5, 2 * 4096),
    (3, 5, 2 * 4099),
    (2, 2 * 20000),
    (64, 2 * 1000),
    (65, 2 * 1000),
    (2, 40, 2 * 4096),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", OPS)
def test_act_and_mul(
    op: str, device: str, dtype: torch.dtype, shape: tuple[int, ...], layout: str
) -> None:
    spec = REGISTRY[op]
    x = make_tensor(shape, layout, dtype, device, seed=1) * 3
    out = nan_like(x, (*shape[:-1], shape[-1] // 2))
    getattr(torch.ops.stablekernels, op)(out, x)
    torch.testing.assert_close(out, spec.reference(x), **spec.tol(dtype))
    torch.testing.assert_close(spec.wrapper(x), out, atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", OPS)
def test_act_and_mul_strided_result(op: str, device: str) -> None:
    x = make_tensor((4, 3, 2 * 40), "contiguous", torch.float32, device, seed=2)
    big = nan_like(x, (4, 3, 64))
    out = big[..., 8:48]
    getattr(torch.ops.stablekernels, op)(out, x)
    torch.testing.assert_close(out, REGISTRY[op].reference(x), **REGISTRY[op].tol(torch.float32))
    assert big[..., :8].isnan().all() and big[..., 48:].isnan().all(), "wrote outside 'result'"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_act_and_mul_extremes(op: str, device: str, dtype: torch.dtype) -> None:
    # large magnitudes: exp overflow must give the limits, not NaN (float16 and bfloat16
    # take the kernel's approximate 2^x and 1/x on CUDA, whose inf and 0 must cancel right)
    neg = [-1e4, -100.0, -88.5, -87.0, -50.0, -20.0, -1.0, -0.0]
    vals = torch.tensor([*neg, *[-v for v in reversed(neg)]])
    # d = 16, so that every dtype takes the 16-byte path of the CUDA kernel
    x = torch.cat([vals, torch.full_like(vals, 2.0)]).repeat(8, 1).to(device, dtype)
    out = REGISTRY[op].wrapper(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, REGISTRY[op].reference(x), **REGISTRY[op].tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_act_and_mul_sweep(op: str, device: str, dtype: torch.dtype) -> None:
    # every value on a fine grid of [-16, 16] (the tails included), gate 1: the activation
    # itself within the dtype's tolerance
    d = 1 << 15
    act = torch.linspace(-16.0, 16.0, d, dtype=torch.float64)
    x = torch.cat([act, torch.ones(d, dtype=torch.float64)]).reshape(1, -1).to(device, dtype)
    out = REGISTRY[op].wrapper(x)
    torch.testing.assert_close(out, REGISTRY[op].reference(x), **REGISTRY[op].tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", OPS)
def test_act_and_mul_empty(op: str, device: str) -> None:
    x = torch.empty((0, 3, 16), device=device)
    assert REGISTRY[op].wrapper(x).shape == (0, 3, 8)
