# SPDX-License-Identifier: Apache-2.0
"""torch.compile(fullgraph=True) traces every functional wrapper (through the fakes) and
the compiled result matches eager."""

from __future__ import annotations

import contextlib

import pytest
import stablekernels
import torch
from helpers import DEVICES, make_tensor
from stablekernels.ops._registry import TOLERANCES


@pytest.mark.parametrize("device", DEVICES)
def test_compile_norm(device: str) -> None:
    torch._dynamo.reset()

    def block(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        h, res = stablekernels.fused_add_rms_norm(x, r, w, 1e-6)
        return stablekernels.rms_norm(h * 2, w, 1e-5) + res

    x = make_tensor((3, 5, 64), "contiguous", torch.float32, device, seed=1)
    r = make_tensor((3, 5, 64), "contiguous", torch.float32, device, seed=2)
    w = make_tensor((64,), "contiguous", torch.float32, device, seed=3)
    compiled = torch.compile(block, fullgraph=True, backend="inductor")
    torch.testing.assert_close(compiled(x, r, w), block(x, r, w))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_activation(device: str) -> None:
    torch._dynamo.reset()

    def mlp(x: torch.Tensor) -> torch.Tensor:
        return (
            stablekernels.silu_and_mul(x)
            + stablekernels.gelu_and_mul(x)
            + stablekernels.gelu_tanh_and_mul(x)
        )

    x = make_tensor((4, 2 * 48), "contiguous", torch.float32, device, seed=4)
    compiled = torch.compile(mlp, fullgraph=True, backend="inductor")
    torch.testing.assert_close(compiled(x), mlp(x))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_in_place_op(device: str) -> None:
    torch._dynamo.reset()

    def step(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        stablekernels.fused_add_rms_norm_(x, r, w, 1e-6)
        return x + r

    args = [make_tensor((2, 32), "contiguous", torch.float32, device, seed=s) for s in (5, 6)]
    w = make_tensor((32,), "contiguous", torch.float32, device, seed=7)
    eager_args = [a.clone() for a in args]
    expected = step(*eager_args, w)
    got = torch.compile(step, fullgraph=True)(*args, w)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(args[0], eager_args[0])
    torch.testing.assert_close(args[1], eager_args[1])


def _strict_custom_op_aliasing():
    """torch.compile's check that custom op outputs do not alias inputs, as an error (it
    warns by default and errors in torch's CI; newer torch releases may make it an error)."""
    from torch._functorch import config

    if hasattr(config, "error_on_custom_op_aliasing"):
        return config.patch(error_on_custom_op_aliasing=True)
    return contextlib.nullcontext()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compile_hadamard(device: str, dtype: torch.dtype) -> None:
    torch._dynamo.reset()

    def rotate(x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = stablekernels.hadacore_transform(x, False)  # x unchanged
        z = stablekernels.hadacore_transform(h, True)  # h transformed, returned
        z.mul_(2)  # the returned tensor is h: h sees this too
        return y + 1, z

    x = make_tensor((3, 5, 256), "contiguous", dtype, device, seed=8)
    h = make_tensor((4, 1024), "row_strided", dtype, device, seed=9)
    x0 = x.clone()
    h_eager = h.clone()
    expected = rotate(x0.clone(), h_eager)
    with _strict_custom_op_aliasing():
        got = torch.compile(rotate, fullgraph=True)(x, h)
    # h is row-strided and its eager copy contiguous: the kernels take different paths (the
    # strided rows a stage-by-stage one), whose float32 sums may round differently
    tol = TOLERANCES[dtype]
    torch.testing.assert_close(got, expected, **tol)
    assert torch.equal(x, x0), "inplace=False modified its input under torch.compile"
    torch.testing.assert_close(h, h_eager, **tol)
    torch.testing.assert_close(h, got[1], atol=0, rtol=0)
