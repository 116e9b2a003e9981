# SPDX-License-Identifier: Apache-2.0
"""Hadamard transform: ``hadacore_transform``.

The normalized Walsh-Hadamard transform over the last dimension in Sylvester (natural)
order: ``x @ H_n / sqrt(n)`` with ``H_1 = [1]`` and ``H_2m = [[H_m, H_m], [H_m, -H_m]]``,
for ``n`` a power of two from 1 to 32768. ``H_n / sqrt(n)`` is orthogonal and symmetric,
so the transform is its own inverse.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from ._registry import (
    BenchCase,
    OpSpec,
    Targets,
    element_size,
    memory_bound,
    regime,
    register,
)

__all__ = ["hadacore_transform"]

MAX_N = 32768


def hadacore_transform(x: Tensor, inplace: bool = False) -> Tensor:
    """Normalized Hadamard transform over the last dimension: ``x @ H_n / sqrt(n)``.

    ``H_n`` is the Sylvester-ordered Hadamard matrix (``H_1 = [1]``,
    ``H_2m = [[H_m, H_m], [H_m, -H_m]]``); the transform is computed in float32 and
    rounded once to the dtype of ``x``. Applying it twice gives ``x`` back (up to
    rounding).

    Args:
        x: ``[..., n]``, float32, float16 or bfloat16, on the CPU or a CUDA GPU, with
            ``n`` a power of two from 1 to 32768. Any number of leading dims with any
            strides; the last dim must be contiguous.
        inplace: if True, the result is written into ``x`` and ``x`` itself is returned
            (the rows of ``x`` must not share memory). If False, ``x`` is left unchanged
            and a new contiguous tensor is returned.

    Returns:
        The transformed tensor, shaped like ``x`` and of its dtype: ``x`` itself when
        ``inplace`` is True, else a new tensor.

    Under ``torch.compile``, ``inplace=True`` runs the op out of place and copies the
    result into ``x``: the schema (vLLM's) does not declare that the op returns an
    alias of ``x``, and torch.compile rejects custom ops whose outputs alias their
    inputs.
    """
    if inplace and torch.compiler.is_compiling():
        return x.copy_(torch.ops.stablekernels.hadacore_transform.default(x, False))
    return torch.ops.stablekernels.hadacore_transform.default(x, inplace)


@torch.library.register_fake("stablekernels::hadacore_transform")
def _hadacore_transform_fake(x: Tensor, inplace: bool) -> Tensor:
    # What the kernels return: `x` itself in place, else a new contiguous tensor.
    return x if inplace else x.new_empty(x.shape)


# --- reference and native -------------------------------------------------------------


def _fwht(y: Tensor) -> Tensor:
    """Unnormalized transform over the last dim of `y` ([rows, n]), one stage per bit."""
    rows, n = y.shape
    h = 1
    while h < n:
        y = y.reshape(rows, n // (2 * h), 2, h)
        lo, hi = y[:, :, 0, :], y[:, :, 1, :]
        y = torch.stack((lo + hi, lo - hi), dim=2)
        h *= 2
    return y.reshape(rows, n)


def _finish(x: Tensor, y: Tensor, inplace: bool) -> Tensor:
    y = y.reshape(x.shape).to(x.dtype)
    if inplace:
        return x.copy_(y)
    return y


def hadacore_transform_ref(x: Tensor, inplace: bool = False) -> Tensor:
    """Pure-torch reference of `hadacore_transform`, in float64 (with inplace=True it
    writes into `x` as the op does)."""
    n = x.shape[-1]
    y = _fwht(x.double().reshape(-1, n)) / math.sqrt(n)
    return _finish(x, y, inplace)


_SYLVESTER: dict[tuple[int, torch.device], Tensor] = {}


def sylvester_matrix(n: int, device: torch.device | str = "cpu") -> Tensor:
    """The float32 Sylvester-ordered Hadamard matrix ``H_n`` (entries +-1), cached."""
    key = (n, torch.device(device))
    h = _SYLVESTER.get(key)
    if h is None:
        h = torch.ones(1, 1, dtype=torch.float32, device=device)
        while h.shape[0] < n:
            h = torch.cat((torch.cat((h, h), 1), torch.cat((h, -h), 1)), 0)
        _SYLVESTER[key] = h
    return h


# Up to this n, `native` multiplies by the cached matrix; above it, the matrix (n^2
# floats) and the product (2n flops per element) cost more than log2(n) elementwise passes.
_NATIVE_MATMUL_MAX_N = 256


def hadacore_transform_native(x: Tensor, inplace: bool = False) -> Tensor:
    """`hadacore_transform` as a user would write it in pure torch, in float32: a product
    with the cached matrix for n <= 256, a reshape-based transform (one pass per bit)
    above."""
    n = x.shape[-1]
    y = x.float().reshape(-1, n)
    y = y @ sylvester_matrix(n, x.device) if n <= _NATIVE_MATMUL_MAX_N else _fwht(y)
    return _finish(x, y * (1.0 / math.sqrt(n)), inplace)


# --- samples and benchmarks ------------------------------------------------------------


def _samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple[Tensor, bool]]:
    g = torch.Generator().manual_seed(0)
    for shape, inplace in [((3, 16), False), ((2, 3, 128), False), ((5, 64), True), ((1,), True)]:
        yield torch.randn(shape, generator=g).to(device=device, dtype=dtype), inplace


def _bench(tokens: list[int], sizes: list[int]) -> tuple[BenchCase, ...]:
    """Cases over rows x n: read a [rows, n] input, write a new [rows, n] output."""

    def case(t: int, n: int) -> BenchCase:
        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            return (torch.randn(t, n, device=device, dtype=dtype), False)

        def nbytes(dtype: torch.dtype) -> int:
            return 2 * t * n * element_size(dtype)

        # 80% of the copy bandwidth from n = 1024 on, on large shapes
        targets = memory_bound(t, pct_copy=80.0) if n >= 1024 else Targets()
        return BenchCase(f"rows={t} n={n}", regime(t), make, nbytes, targets)

    return tuple(case(t, n) for t in tokens for n in sizes)


register(
    OpSpec(
        name="hadacore_transform",
        family="hadamard",
        wrapper=hadacore_transform,
        reference=hadacore_transform_ref,
        outputs=(),
        sample_args=_samples,
        native=hadacore_transform_native,
        bench=_bench([1, 64], [128, 1024, 4096, 16384])
        + _bench([4096, 16384], [128, 1024, 4096, 16384, 32768])
        + _bench([32768], [4096]),
        bench_quick=_bench([4, 512], [128, 1024]),
    )
)
