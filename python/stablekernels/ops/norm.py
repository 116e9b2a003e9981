# SPDX-License-Identifier: Apache-2.0
"""RMS normalization: ``rms_norm`` and ``fused_add_rms_norm``.

Both normalize over the last dimension with float32 accumulation:
``y = x / sqrt(mean(x**2, -1) + epsilon) * weight``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ._registry import BenchCase, OpSpec, element_size, memory_bound, regime, register

__all__ = ["fused_add_rms_norm", "fused_add_rms_norm_", "rms_norm"]


def rms_norm(input: Tensor, weight: Tensor, epsilon: float = 1e-6) -> Tensor:
    """Root-mean-square normalization over the last dimension.

    Args:
        input: ``[..., hidden]``, float32, float16 or bfloat16, on the CPU or a CUDA
            GPU. Any number of leading dims, with any strides; the last dim must
            be contiguous.
        weight: ``[hidden]``, same dtype and device as ``input``, contiguous.
        epsilon: added to the mean square before the square root; finite, >= 0.

    Returns:
        A new tensor shaped like ``input``, of its dtype:
        ``input * rsqrt(mean(input**2, -1) + epsilon) * weight``, computed in float32.

    Same as ``torch.ops.stablekernels.rms_norm(result, input, weight, epsilon)``
    with a freshly allocated ``result``.
    """
    result = torch.empty_like(input, memory_format=torch.contiguous_format)
    torch.ops.stablekernels.rms_norm.default(result, input, weight, epsilon)
    return result


def fused_add_rms_norm(
    input: Tensor, residual: Tensor, weight: Tensor, epsilon: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """Residual add followed by RMS normalization, without modifying the arguments.

    Args:
        input: ``[..., hidden]``, float32, float16 or bfloat16; last dim contiguous.
        residual: same shape, dtype and device as ``input``.
        weight: ``[hidden]``, same dtype and device, contiguous.
        epsilon: finite, >= 0.

    Returns:
        ``(output, new_residual)`` where ``new_residual = input + residual`` (rounded
        to the dtype) and ``output = rms_norm(new_residual, weight, epsilon)``.
    """
    out = input.clone(memory_format=torch.contiguous_format)
    res = residual.clone(memory_format=torch.contiguous_format)
    torch.ops.stablekernels.fused_add_rms_norm.default(out, res, weight, epsilon)
    return out, res


def fused_add_rms_norm_(
    input: Tensor, residual: Tensor, weight: Tensor, epsilon: float = 1e-6
) -> None:
    """In-place `fused_add_rms_norm`, as vLLM's op of the same name.

    ``residual`` becomes ``input + residual``; ``input`` becomes
    ``rms_norm(residual, weight, epsilon)``. Arguments as in `fused_add_rms_norm`.
    """
    torch.ops.stablekernels.fused_add_rms_norm.default(input, residual, weight, epsilon)


@torch.library.register_fake("stablekernels::rms_norm")
def _rms_norm_fake(result: Tensor, input: Tensor, weight: Tensor, epsilon: float) -> None:
    return None


@torch.library.register_fake("stablekernels::fused_add_rms_norm")
def _fused_add_rms_norm_fake(
    input: Tensor, residual: Tensor, weight: Tensor, epsilon: float
) -> None:
    return None


def rms_norm_ref(input: Tensor, weight: Tensor, epsilon: float = 1e-6) -> Tensor:
    """Pure-torch reference of `rms_norm`, in float64."""
    x = input.double()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + epsilon) * weight.double()
    return y.to(input.dtype)


def fused_add_rms_norm_ref(
    input: Tensor, residual: Tensor, weight: Tensor, epsilon: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """Pure-torch reference of `fused_add_rms_norm`."""
    z = (input.double() + residual.double()).to(input.dtype)
    return rms_norm_ref(z, weight, epsilon), z


def rms_norm_native(input: Tensor, weight: Tensor, epsilon: float = 1e-6) -> Tensor:
    """`rms_norm` as a user would write it in pure torch (float32 math)."""
    x = input.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + epsilon) * weight.float()).to(
        input.dtype
    )


def fused_add_rms_norm_native(
    input: Tensor, residual: Tensor, weight: Tensor, epsilon: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """`fused_add_rms_norm` as a user would write it in pure torch (float32 math)."""
    z = (input.float() + residual.float()).to(input.dtype)
    return rms_norm_native(z, weight, epsilon), z


def _bench(n_rows_inputs: int, tokens: list[int], hiddens: list[int]) -> tuple[BenchCase, ...]:
    """Cases over tokens x hidden. Each case reads `n_rows_inputs` [tokens, hidden]
    tensors and the weight, and writes as many [tokens, hidden] tensors."""

    def case(t: int, h: int) -> BenchCase:
        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            xs = [torch.randn(t, h, device=device, dtype=dtype) for _ in range(n_rows_inputs)]
            return (*xs, torch.randn(h, device=device, dtype=dtype), 1e-6)

        def nbytes(dtype: torch.dtype) -> int:
            size = element_size(dtype)
            return (2 * n_rows_inputs * t * h + h) * size

        return BenchCase(f"tokens={t} hidden={h}", regime(t), make, nbytes, memory_bound(t))

    return tuple(case(t, h) for t in tokens for h in hiddens)


_DECODE = [1, 32]
_PREFILL = [4096, 16384]
_HIDDEN = [4096, 8192, 16384]
_LONG = [32768]  # the longest prefill, at one hidden size


def _samples(
    device: torch.device, dtype: torch.dtype, n_inputs: int
) -> Iterator[tuple[Tensor, ...]]:
    g = torch.Generator().manual_seed(0)
    for shape in [(3, 24), (2, 3, 111)]:
        hidden = shape[-1]
        ts = [
            torch.randn(shape, generator=g).to(device=device, dtype=dtype) for _ in range(n_inputs)
        ]
        w = torch.randn(hidden, generator=g).to(device=device, dtype=dtype)
        yield (*ts, w, 1e-5)


register(
    OpSpec(
        name="rms_norm",
        family="norm",
        wrapper=rms_norm,
        reference=rms_norm_ref,
        outputs=("result",),
        sample_args=lambda device, dtype: _samples(device, dtype, 2),
        native=rms_norm_native,
        bench=_bench(1, _DECODE + _PREFILL, _HIDDEN) + _bench(1, _LONG, [8192]),
        bench_quick=_bench(1, [4, 512], [1024]),
    )
)
register(
    OpSpec(
        name="fused_add_rms_norm",
        family="norm",
        wrapper=fused_add_rms_norm,
        reference=fused_add_rms_norm_ref,
        outputs=(),
        sample_args=lambda device, dtype: _samples(device, dtype, 2),
        native=fused_add_rms_norm_native,
        bench_fn=fused_add_rms_norm_,
        bench=_bench(2, _DECODE + _PREFILL, _HIDDEN) + _bench(2, _LONG, [8192]),
        bench_quick=_bench(2, [4, 512], [1024]),
    )
)
