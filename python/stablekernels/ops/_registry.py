# SPDX-License-Identifier: Apache-2.0
"""The Python-side registry of ops: one `OpSpec` per op in ``torch.ops.stablekernels``.

Tests (opcheck, schema parity, numerics), benchmarks and docs iterate over it,
so adding an op means adding its spec next to its wrapper and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

# Default tolerances per dtype for comparing an op's output with its float64
# reference rounded to the output dtype: about two units in the last place.
TOLERANCES: dict[torch.dtype, dict[str, float]] = {
    torch.float32: {"atol": 1e-5, "rtol": 1e-5},
    torch.float16: {"atol": 2e-3, "rtol": 2e-3},
    torch.bfloat16: {"atol": 1.6e-2, "rtol": 1.6e-2},
}

FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)

# Benchmark shapes of at most this many rows (tokens, sequences) are decode-sized.
DECODE_MAX_ROWS = 64


def regime(rows: int) -> str:
    """The BenchCase regime of a shape with `rows` rows: "decode" or "prefill"."""
    return "decode" if rows <= DECODE_MAX_ROWS else "prefill"


def element_size(dtype: torch.dtype) -> int:
    """Bytes per element of `dtype` (for BenchCase.nbytes)."""
    return torch.empty((), dtype=dtype).element_size()


@dataclasses.dataclass(frozen=True)
class BenchCase:
    """One benchmark shape of an op (benchmarks/run.py times it).

    label:     shape as people say it, e.g. "tokens=32 hidden=8192".
    regime:    "decode" (latency-bound, also timed under CUDA graphs) or "prefill".
    make_args: (device, dtype) -> arguments of the wrapper and of `native`.
    nbytes:    (dtype) -> the minimal bytes the op moves: each input read once,
               each output written once.
    """

    label: str
    regime: str
    make_args: Callable[[torch.device, torch.dtype], tuple[Any, ...]]
    nbytes: Callable[[torch.dtype], int]


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """What the project knows about one op.

    name:      the op's name in ``torch.ops.stablekernels``.
    family:    the op family (its csrc/ops/<family> directory and Python module).
    wrapper:   the public functional API (allocates outputs).
    reference: a pure-torch function with the wrapper's signature, computing in float64.
    outputs:   schema arguments that are outputs only (the wrapper allocates them).
    sample_args: (device, dtype) -> iterator of argument tuples for the raw op.
    dtypes:    dtypes the op accepts.
    tolerances: per-dtype overrides of TOLERANCES.
    native:    what a user would write in pure torch (the wrapper's signature, float32
               math, outputs in the input dtype): the bar eager and torch.compile set.
               Where `bench_fn` works in place, the in-place form (it writes the same
               tensors and returns None): the same reads and writes as ours.
    bench:     benchmark shapes; `quick` ones run in the CPU smoke benchmark.
    bench_fn:  what the benchmark times as ours (default: the wrapper; an in-place
               variant where the wrapper only adds copies).
    """

    name: str
    family: str
    wrapper: Callable[..., Any]
    reference: Callable[..., Any]
    outputs: tuple[str, ...]
    sample_args: Callable[[torch.device, torch.dtype], Iterator[tuple[Any, ...]]]
    dtypes: Sequence[torch.dtype] = FLOAT_DTYPES
    tolerances: dict[torch.dtype, dict[str, float]] = dataclasses.field(default_factory=dict)
    native: Callable[..., Any] | None = None
    bench: tuple[BenchCase, ...] = ()
    bench_quick: tuple[BenchCase, ...] = ()
    bench_fn: Callable[..., Any] | None = None

    @property
    def op(self) -> torch._ops.OpOverload:
        return getattr(torch.ops.stablekernels, self.name).default

    def tol(self, dtype: torch.dtype) -> dict[str, float]:
        return self.tolerances.get(dtype, TOLERANCES[dtype])


REGISTRY: dict[str, OpSpec] = {}


def register(spec: OpSpec) -> OpSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"op {spec.name!r} registered twice")
    REGISTRY[spec.name] = spec
    return spec
