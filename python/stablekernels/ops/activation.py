# SPDX-License-Identifier: Apache-2.0
"""Gated activations: ``silu_and_mul``, ``gelu_and_mul``, ``gelu_tanh_and_mul``.

Each takes ``input [..., 2 * d]`` and returns ``act(input[..., :d]) * input[..., d:]``
of shape ``[..., d]``, computed in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from ._registry import BenchCase, OpSpec, element_size, memory_bound, regime, register

__all__ = ["gelu_and_mul", "gelu_tanh_and_mul", "silu_and_mul"]


def _run(op: torch._ops.OpOverload, input: Tensor) -> Tensor:
    """Allocate ``result`` [..., d] for ``input`` [..., 2d] and run the op into it."""
    if input.dim() == 0:
        result = torch.empty_like(input)  # the op rejects 0-dim inputs with a clear error
    else:
        shape = (*input.shape[:-1], input.shape[-1] // 2)
        result = torch.empty(shape, dtype=input.dtype, device=input.device)
    op(result, input)
    return result


def silu_and_mul(input: Tensor) -> Tensor:
    """SiLU-gated product (SwiGLU): ``silu(x[..., :d]) * x[..., d:]``.

    Args:
        input: ``[..., 2 * d]``, float32, float16 or bfloat16, on the CPU or a CUDA
            GPU; any leading dims with any strides, last dim contiguous and even.

    Returns:
        A new ``[..., d]`` tensor of ``input``'s dtype, computed in float32. Same as
        ``torch.ops.stablekernels.silu_and_mul(result, input)`` with a fresh ``result``.
    """
    return _run(torch.ops.stablekernels.silu_and_mul.default, input)


def gelu_and_mul(input: Tensor) -> Tensor:
    """Exact (erf) GELU-gated product (GeGLU): ``gelu(x[..., :d]) * x[..., d:]``.

    Args:
        input: ``[..., 2 * d]``, float32, float16 or bfloat16, on the CPU or a CUDA
            GPU; any leading dims with any strides, last dim contiguous and even.

    Returns:
        A new ``[..., d]`` tensor of ``input``'s dtype, computed in float32, matching
        ``torch.nn.functional.gelu(approximate="none")``. Same as
        ``torch.ops.stablekernels.gelu_and_mul(result, input)`` with a fresh ``result``.
    """
    return _run(torch.ops.stablekernels.gelu_and_mul.default, input)


def gelu_tanh_and_mul(input: Tensor) -> Tensor:
    """Tanh-approximated GELU-gated product: ``gelu_tanh(x[..., :d]) * x[..., d:]``.

    Args:
        input: ``[..., 2 * d]``, float32, float16 or bfloat16, on the CPU or a CUDA
            GPU; any leading dims with any strides, last dim contiguous and even.

    Returns:
        A new ``[..., d]`` tensor of ``input``'s dtype, computed in float32, matching
        ``torch.nn.functional.gelu(approximate="tanh")``. Same as
        ``torch.ops.stablekernels.gelu_tanh_and_mul(result, input)`` with a fresh ``result``.
    """
    return _run(torch.ops.stablekernels.gelu_tanh_and_mul.default, input)


def _ref(act: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def reference(input: Tensor) -> Tensor:
        x = input.double()
        d = x.shape[-1] // 2
        return (act(x[..., :d]) * x[..., d:]).to(input.dtype)

    return reference


silu_and_mul_ref = _ref(F.silu)
gelu_and_mul_ref = _ref(lambda x: F.gelu(x, approximate="none"))
gelu_tanh_and_mul_ref = _ref(lambda x: F.gelu(x, approximate="tanh"))


def _native(act: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def native(input: Tensor) -> Tensor:
        d = input.shape[-1] // 2
        return (act(input[..., :d].float()) * input[..., d:].float()).to(input.dtype)

    return native


def _bench(tokens: list[int], ds: list[int]) -> tuple[BenchCase, ...]:
    """Cases over tokens x d: read [tokens, 2d], write [tokens, d]."""

    def case(t: int, d: int) -> BenchCase:
        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            return (torch.randn(t, 2 * d, device=device, dtype=dtype),)

        def nbytes(dtype: torch.dtype) -> int:
            return 3 * t * d * element_size(dtype)

        return BenchCase(f"tokens={t} d={d}", regime(t), make, nbytes, memory_bound(t))

    return tuple(case(t, d) for t in tokens for d in ds)


# the longest prefill (32768 tokens) at one width
_BENCH = _bench([1, 32, 4096, 16384], [8192, 14336]) + _bench([32768], [8192])
_BENCH_QUICK = _bench([4, 512], [1024])


def _samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(0)
    for shape in [(3, 2 * 16), (2, 3, 2 * 37)]:
        x = torch.randn(shape, generator=g).to(device=device, dtype=dtype)
        out = torch.empty((*shape[:-1], shape[-1] // 2), device=device, dtype=dtype)
        yield out, x


for _name, _wrapper, _reference, _act in [
    ("silu_and_mul", silu_and_mul, silu_and_mul_ref, F.silu),
    ("gelu_and_mul", gelu_and_mul, gelu_and_mul_ref, lambda x: F.gelu(x, approximate="none")),
    (
        "gelu_tanh_and_mul",
        gelu_tanh_and_mul,
        gelu_tanh_and_mul_ref,
        lambda x: F.gelu(x, approximate="tanh"),
    ),
]:
    torch.library.register_fake(f"stablekernels::{_name}")(lambda result, input: None)
    register(
        OpSpec(
            name=_name,
            family="activation",
            wrapper=_wrapper,
            reference=_reference,
            outputs=("result",),
            sample_args=_samples,
            native=_native(_act),
            bench=_BENCH,
            bench_quick=_BENCH_QUICK,
        )
    )
