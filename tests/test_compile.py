# SPDX-License-Identifier: Apache-2.0
"""torch.compile(fullgraph=True) traces every functional wrapper (through the fakes) and
the compiled result matches eager."""

from __future__ import annotations

import pytest
import stablekernels
import torch
from helpers import DEVICES, make_tensor


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
