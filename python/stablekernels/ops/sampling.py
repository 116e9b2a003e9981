# SPDX-License-Identifier: Apache-2.0
"""Sampling helpers: ``apply_repetition_penalties_`` and ``top_k_per_row``.

``apply_repetition_penalties_`` applies a per-sequence repetition penalty, in place, to the
logits of the tokens seen in the prompt or in the output so far. ``top_k_per_row`` finds the
columns of the ``k`` largest logits of a range of columns of each row.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ._registry import BenchCase, OpSpec, Targets, element_size, memory_bound, regime, register

__all__ = [
    "apply_repetition_penalties",
    "apply_repetition_penalties_",
    "top_k_per_row",
]

MAX_TOP_K = 2048


# --- apply_repetition_penalties_ -----------------------------------------------------------


def apply_repetition_penalties(
    logits: Tensor, prompt_mask: Tensor, output_mask: Tensor, repetition_penalties: Tensor
) -> Tensor:
    """Repetition penalties, without modifying the arguments.

    Where ``prompt_mask[i, j] or output_mask[i, j]``, a logit ``x = logits[i, j]`` becomes
    ``x / repetition_penalties[i]`` if ``x > 0`` and ``x * repetition_penalties[i]``
    otherwise (0 stays 0, NaN stays NaN); the other logits are unchanged. Computed in
    float32 and rounded once to the dtype of ``logits``.

    Args:
        logits: ``[num_seqs, vocab_size]``, float32, float16 or bfloat16, on the CPU or a
            CUDA GPU. Rows with any stride; the last dim must be contiguous.
        prompt_mask: ``[num_seqs, vocab_size]``, bool, on the device of ``logits``: the
            tokens of each sequence's prompt. Rows with any stride, last dim contiguous.
        output_mask: like ``prompt_mask``: the tokens each sequence has generated so far.
        repetition_penalties: ``[num_seqs]``, float32 or the dtype of ``logits`` (as vLLM
            passes them), any stride, on the device of ``logits``. Used as given (a
            penalty of 1 leaves the row unchanged; values below 1 favour repetition).

    Returns:
        A new contiguous tensor shaped like ``logits``, of its dtype.
    """
    out = logits.clone(memory_format=torch.contiguous_format)
    torch.ops.stablekernels.apply_repetition_penalties_.default(
        out, prompt_mask, output_mask, repetition_penalties
    )
    return out


def apply_repetition_penalties_(
    logits: Tensor, prompt_mask: Tensor, output_mask: Tensor, repetition_penalties: Tensor
) -> None:
    """In-place `apply_repetition_penalties`, as vLLM's op of the same name.

    Rewrites the penalized elements of ``logits`` and leaves the others untouched.

    Args:
        logits: ``[num_seqs, vocab_size]``, float32, float16 or bfloat16; modified in place.
        prompt_mask: ``[num_seqs, vocab_size]``, bool.
        output_mask: ``[num_seqs, vocab_size]``, bool.
        repetition_penalties: ``[num_seqs]``, float32 or the dtype of ``logits``.

    See `apply_repetition_penalties` for the layouts accepted.
    """
    torch.ops.stablekernels.apply_repetition_penalties_.default(
        logits, prompt_mask, output_mask, repetition_penalties
    )


@torch.library.register_fake("stablekernels::apply_repetition_penalties_")
def _apply_repetition_penalties_fake(
    logits: Tensor, prompt_mask: Tensor, output_mask: Tensor, repetition_penalties: Tensor
) -> None:
    return None


def apply_repetition_penalties_ref(
    logits: Tensor, prompt_mask: Tensor, output_mask: Tensor, repetition_penalties: Tensor
) -> Tensor:
    """Pure-torch reference of `apply_repetition_penalties`, in float64."""
    x = logits.double()
    p = repetition_penalties.double()[:, None]
    penalized = torch.where(x > 0, x / p, x * p)
    return torch.where(prompt_mask | output_mask, penalized, x).to(logits.dtype)


def apply_repetition_penalties_native(
    logits: Tensor, prompt_mask: Tensor, output_mask: Tensor, repetition_penalties: Tensor
) -> Tensor:
    """`apply_repetition_penalties` as a user would write it in pure torch (float32 math)."""
    x = logits.float()
    p = repetition_penalties[:, None]
    penalized = torch.where(x > 0, x / p, x * p)
    return torch.where(prompt_mask | output_mask, penalized, x).to(logits.dtype)


def apply_repetition_penalties_native_(
    logits: Tensor, prompt_mask: Tensor, output_mask: Tensor, repetition_penalties: Tensor
) -> None:
    """`apply_repetition_penalties_` as a user would write it in pure torch: the result of
    `apply_repetition_penalties_native` written back into ``logits``. The benchmark's bar for
    the in-place op: the same reads and writes (an out-of-place reference writes a new tensor,
    which in a CUDA graph reuses one memory block that stays in L2 from call to call)."""
    logits.copy_(
        apply_repetition_penalties_native(logits, prompt_mask, output_mask, repetition_penalties)
    )


def _penalty_samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    g = torch.Generator().manual_seed(0)
    for rows, vocab in [(3, 64), (2, 111), (4, 1000)]:
        logits = (4 * torch.randn(rows, vocab, generator=g)).to(device=device, dtype=dtype)
        prompt = (torch.rand(rows, vocab, generator=g) < 0.3).to(device)
        output = (torch.rand(rows, vocab, generator=g) < 0.3).to(device)
        penalties = (1 + torch.rand(rows, generator=g)).to(device)
        yield logits, prompt, output, penalties


def _penalty_bench(seqs: list[int], vocabs: list[int]) -> tuple[BenchCase, ...]:
    """Cases over num_seqs x vocab: logits read and written, two bool masks read. About half
    of each mask is set, so every 16-byte vector of logits is read and written."""

    def case(s: int, v: int) -> BenchCase:
        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            logits = torch.randn(s, v, device=device, dtype=dtype)
            prompt = torch.rand(s, v, device=device) < 0.5
            output = torch.rand(s, v, device=device) < 0.5
            # close to 1 so that repeated in-place calls keep the values normal
            penalties = 1 + 0.01 * torch.rand(s, device=device)
            return logits, prompt, output, penalties

        def nbytes(dtype: torch.dtype) -> int:
            size = element_size(dtype)
            return s * v * (2 * size + 2) + 4 * s

        # 256 sequences of a 128k vocabulary: 65 MB, a large shape of this op
        return BenchCase(
            f"seqs={s} vocab={v}", regime(s), make, nbytes, memory_bound(s, large_rows=256)
        )

    return tuple(case(s, v) for s in seqs for v in vocabs)


register(
    OpSpec(
        name="apply_repetition_penalties_",
        family="sampling",
        wrapper=apply_repetition_penalties,
        reference=apply_repetition_penalties_ref,
        outputs=(),
        sample_args=_penalty_samples,
        native=apply_repetition_penalties_native_,
        bench_fn=apply_repetition_penalties_,
        bench=_penalty_bench([1, 32, 256], [128256]),
        bench_quick=_penalty_bench([4, 64], [32000]),
    )
)


# --- top_k_per_row ----------------------------------------------------------------------


def top_k_per_row(logits: Tensor, row_starts: Tensor, row_ends: Tensor, k: int) -> Tensor:
    """Columns of the ``k`` largest logits of a range of columns of each row.

    Row ``i`` looks at the columns ``[row_starts[i], row_ends[i])`` of ``logits[i]``, both
    bounds first clamped to ``[0, C]`` (an end before the start makes the row empty). Its
    ``k`` slots receive the (absolute) column indices of its ``k`` largest values, in no
    particular order; a row with ``n < k`` columns gets all of its columns in its first
    ``n`` slots and ``-1`` in the others.

    Order: as ``torch.topk``, a NaN counts as larger than every number (``+inf``
    included), ``-0.0`` equals ``0.0``. Ties: when several columns hold the k-th largest
    value, any of them may be returned, and which ones may differ between the CPU and CUDA
    and between calls.

    Args:
        logits: ``[num_rows, C]``, float32, on the CPU or a CUDA GPU; rows with any stride,
            last dim contiguous; ``C < 2**31``.
        row_starts: ``[num_rows]``, int32, any stride, on the device of ``logits``.
        row_ends: ``[num_rows]``, int32, like ``row_starts``.
        k: in ``[1, 2048]``.

    Returns:
        A new int32 tensor ``[num_rows, k]``. (The raw op
        ``torch.ops.stablekernels.top_k_per_row`` writes the first ``k`` columns of an int32
        ``indices`` of shape ``[num_rows, >= k]`` and leaves its other columns untouched.)
    """
    indices = torch.empty((logits.shape[0], k), dtype=torch.int32, device=logits.device)
    torch.ops.stablekernels.top_k_per_row.default(logits, row_starts, row_ends, indices, k)
    return indices


@torch.library.register_fake("stablekernels::top_k_per_row")
def _top_k_per_row_fake(
    logits: Tensor, row_starts: Tensor, row_ends: Tensor, indices: Tensor, k: int
) -> None:
    return None


def clamped_ranges(logits: Tensor, row_starts: Tensor, row_ends: Tensor) -> list[tuple[int, int]]:
    """The column range ``[start, end)`` `top_k_per_row` uses for each row."""
    cols = logits.shape[1]
    ranges = []
    for s, e in zip(row_starts.tolist(), row_ends.tolist(), strict=True):
        s = min(max(s, 0), cols)
        ranges.append((s, min(max(e, s), cols)))
    return ranges


def top_k_per_row_ref(logits: Tensor, row_starts: Tensor, row_ends: Tensor, k: int) -> Tensor:
    """Pure-torch reference of `top_k_per_row` (torch.topk per row, in float64).

    Among tied values it picks whichever ``torch.topk`` picks; compare with
    ``tests/ops/test_sampling.py``'s ``assert_top_k`` rather than element by element.
    """
    out = torch.full((logits.shape[0], k), -1, dtype=torch.int32)
    x = logits.detach().double().cpu()
    for i, (s, e) in enumerate(clamped_ranges(logits, row_starts, row_ends)):
        n = min(k, e - s)
        if n > 0:
            out[i, :n] = (torch.topk(x[i, s:e], n).indices + s).to(torch.int32)
    return out.to(logits.device)


def top_k_per_row_native(logits: Tensor, row_starts: Tensor, row_ends: Tensor, k: int) -> Tensor:
    """`top_k_per_row` as a user would write it in pure torch: mask the columns outside each
    row's range with ``-inf``, then ``torch.topk`` (unsorted)."""
    cols = torch.arange(logits.shape[1], device=logits.device)
    valid = (cols >= row_starts[:, None]) & (cols < row_ends[:, None])
    idx = logits.masked_fill(~valid, float("-inf")).topk(k, dim=-1, sorted=False).indices
    return torch.where(valid.gather(1, idx), idx, -1).to(torch.int32)


def _top_k_samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    # logits are float32 whatever `dtype` is: the op takes float32 only
    g = torch.Generator().manual_seed(0)
    for rows, cols, k, width in [(3, 64, 5, 0), (2, 111, 16, 3), (2, 20, 32, 0), (4, 3000, 100, 0)]:
        logits = torch.randn(rows, cols + width, generator=g)[:, :cols].to(device)
        starts = torch.randint(0, cols // 4, (rows,), generator=g, dtype=torch.int32)
        ends = torch.randint(cols // 2, cols + 1, (rows,), generator=g, dtype=torch.int32)
        indices = torch.full((rows, k), -7, dtype=torch.int32, device=device)
        yield logits, starts.to(device), ends.to(device), indices, k


def _top_k_bench(rows: list[int], cols: list[int], ks: list[int]) -> tuple[BenchCase, ...]:
    """Cases over rows x columns x k, float32 logits whatever the dtype asked for; every row
    spans all its columns. Bytes: the logits read once, the indices written once."""

    def case(r: int, c: int, k: int) -> BenchCase:
        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            logits = torch.randn(r, c, device=device)
            starts = torch.zeros(r, dtype=torch.int32, device=device)
            ends = torch.full((r,), c, dtype=torch.int32, device=device)
            return logits, starts, ends, k

        def nbytes(dtype: torch.dtype) -> int:
            return r * c * 4 + r * k * 4 + 8 * r

        # faster than torch.topk (its `native`) on the same rows, at every size
        return BenchCase(f"rows={r} cols={c} k={k}", regime(r), make, nbytes, Targets(vs_eager=1.0))

    return tuple(case(r, c, k) for r in rows for c in cols for k in ks)


register(
    OpSpec(
        name="top_k_per_row",
        family="sampling",
        wrapper=top_k_per_row,
        reference=top_k_per_row_ref,
        outputs=("indices",),
        sample_args=_top_k_samples,
        dtypes=(torch.float32,),
        native=top_k_per_row_native,
        bench=_top_k_bench([1, 32, 256], [32768, 131072], [64, 2048]),
        bench_quick=_top_k_bench([4, 64], [8192], [64, 2048]),
    )
)
