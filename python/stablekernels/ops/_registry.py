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
class Targets:
    """What benchmarks/targets.py holds one benchmark case to on a GPU, in bf16
    (docs/performance.md), besides what it holds every case to: prefill shapes no more
    than 3% slower than torch.compile, decode shapes under CUDA graphs no slower than
    torch.compile's kernels, and on the CPU no slower than eager.

    pct_copy:   at least this percentage of the device copy bandwidth (on `nbytes`).
    vs_compile: at least this many times as fast as torch.compile.
    vs_eager:   more than this many times as fast as eager.
    """

    pct_copy: float | None = None
    vs_compile: float | None = None
    vs_eager: float | None = None

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


# Benchmark shapes of at least this many rows are large: held to the bandwidth targets.
LARGE_MIN_ROWS = 4096


def memory_bound(
    rows: int, pct_copy: float = 90.0, large_rows: int = LARGE_MIN_ROWS, **more: float | None
) -> Targets:
    """The targets of a memory-bound op's case of `rows` rows: on large shapes (at least
    `large_rows` rows) `pct_copy` percent of the copy bandwidth and `more`; on the others
    only the ones every case has."""
    return Targets(pct_copy=pct_copy, **more) if rows >= large_rows else Targets()


@dataclasses.dataclass(frozen=True)
class BenchCase:
    """One benchmark shape of an op (benchmarks/run.py times it).

    label:     shape as people say it, e.g. "tokens=32 hidden=8192".
    regime:    "decode" (latency-bound, also timed under CUDA graphs) or "prefill".
    make_args: (device, dtype) -> arguments of the wrapper and of `native`.
    nbytes:    (dtype) -> the minimal bytes the op moves: each input read once,
               each output written once.
    targets:   what the benchmark's target check holds this case to (Targets).
    dram_bytes: (dtype, onchip) -> the least bytes that any implementation moves between
               a GPU and its memory when the GPU holds at most `onchip` bytes on chip (L2,
               shared memory and registers together), where that is more than `nbytes`:
               the target check's proof that a target is out of reach.
    """

    label: str
    regime: str
    make_args: Callable[[torch.device, torch.dtype], tuple[Any, ...]]
    nbytes: Callable[[torch.dtype], int]
    targets: Targets = Targets()
    dram_bytes: Callable[[torch.dtype, int], int] | None = None


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
