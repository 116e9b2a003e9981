# SPDX-License-Identifier: Apache-2.0
"""Attention helpers: ``merge_attn_states``.

Merges two partial attention results, computed over disjoint sets of keys (for example
a cached prefix and the new suffix, or two splits of a long sequence), into the result
over their union, using the log-sum-exp of each. Computed in float32.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ._registry import BenchCase, OpSpec, element_size, memory_bound, regime, register

__all__ = ["merge_attn_states"]


def merge_attn_states(
    prefix_output: Tensor, prefix_lse: Tensor, suffix_output: Tensor, suffix_lse: Tensor
) -> tuple[Tensor, Tensor]:
    """Merge two partial attention results by their log-sum-exps.

    For each token ``t`` and head ``h``, with ``p = prefix_lse[h, t]`` and
    ``s = suffix_lse[h, t]``::

        lse = log(exp(p) + exp(s))
        output[t, h] = exp(p - lse) * prefix_output[t, h] + exp(s - lse) * suffix_output[t, h]

    An infinite lse (``-inf``, or ``+inf`` as some attention kernels write for a row with
    no keys) marks an empty side, which gets weight 0 and whose values are not used; when
    both sides are empty the output is 0 and the lse ``-inf``. A NaN lse on either side
    gives NaN for the whole row and its lse.

    Args:
        prefix_output: ``[num_tokens, num_heads, head_size]``, float32, float16 or
            bfloat16, on the CPU or a CUDA GPU; tokens and heads with any strides, last
            dim contiguous.
        prefix_lse: ``[num_heads, num_tokens]``, float32, any strides: the natural-log
            log-sum-exp of the attention scores behind ``prefix_output``.
        suffix_output: like ``prefix_output``: same shape, dtype and device.
        suffix_lse: like ``prefix_lse``.

    Returns:
        ``(output, output_lse)``: a new contiguous ``[num_tokens, num_heads, head_size]``
        tensor of the dtype of ``prefix_output``, and a new float32
        ``[num_heads, num_tokens]`` tensor.
    """
    output = torch.empty_like(prefix_output, memory_format=torch.contiguous_format)
    output_lse = torch.empty(prefix_lse.shape, dtype=torch.float32, device=prefix_lse.device)
    torch.ops.stablekernels.merge_attn_states.default(
        output, output_lse, prefix_output, prefix_lse, suffix_output, suffix_lse
    )
    return output, output_lse


# The op only writes into output and output_lse: its fake has nothing to allocate.
torch.library.register_fake("stablekernels::merge_attn_states")(
    lambda output, output_lse, prefix_output, prefix_lse, suffix_output, suffix_lse: None
)


def merge_attn_states_ref(
    prefix_output: Tensor, prefix_lse: Tensor, suffix_output: Tensor, suffix_lse: Tensor
) -> tuple[Tensor, Tensor]:
    """Pure-torch reference of `merge_attn_states`, in float64, with the same rules for
    infinite and NaN lse values."""
    p = prefix_lse.double().t()[..., None]  # [num_tokens, num_heads, 1]
    s = suffix_lse.double().t()[..., None]
    neg_inf = torch.tensor(float("-inf"), dtype=torch.float64, device=p.device)
    p = torch.where(p.isinf(), neg_inf, p)  # +inf marks an empty side too
    s = torch.where(s.isinf(), neg_inf, s)
    m = torch.maximum(p, s)  # NaN propagates
    m = torch.where(m.isneginf(), torch.zeros_like(m), m)  # both empty: weights 0, lse -inf
    ep, es = (p - m).exp(), (s - m).exp()
    z = ep + es
    zero = torch.zeros((), dtype=torch.float64, device=p.device)
    wp = torch.where(z == 0, zero, ep / z)  # a NaN z stays NaN
    ws = torch.where(z == 0, zero, es / z)
    out = torch.where(wp != 0, wp * prefix_output.double(), zero) + torch.where(
        ws != 0, ws * suffix_output.double(), zero
    )
    lse = (m + z.log())[..., 0].t()
    return out.to(prefix_output.dtype), lse.float()


def merge_attn_states_native(
    prefix_output: Tensor, prefix_lse: Tensor, suffix_output: Tensor, suffix_lse: Tensor
) -> tuple[Tensor, Tensor]:
    """`merge_attn_states` in pure torch (float32 math, finite lse values only): the bar
    for benchmarks."""
    p = prefix_lse.t()[..., None]
    s = suffix_lse.t()[..., None]
    m = torch.maximum(p, s)
    wp, ws = (p - m).exp(), (s - m).exp()
    z = wp + ws
    out = (prefix_output.float() * wp + suffix_output.float() * ws) / z
    return out.to(prefix_output.dtype), (m + z.log())[..., 0].t().contiguous()


def _bench(shapes: list[tuple[int, int, int]]) -> tuple[BenchCase, ...]:
    def case(t: int, heads: int, head_size: int) -> BenchCase:
        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            p, s = (torch.randn(t, heads, head_size, device=device, dtype=dtype) for _ in "ps")
            p_lse, s_lse = (3 * torch.randn(heads, t, device=device) for _ in "ps")
            return p, p_lse, s, s_lse

        def nbytes(dtype: torch.dtype) -> int:
            elem = element_size(dtype)
            return 3 * t * heads * (head_size * elem + 4)  # two inputs, one output, each with lse

        label = f"tokens={t} heads={heads} head={head_size}"
        return BenchCase(label, regime(t), make, nbytes, memory_bound(t))

    return tuple(case(*s) for s in shapes)


def _samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    g = torch.Generator().manual_seed(0)
    for tokens, heads, head_size, with_lse in [
        (5, 3, 64, True),
        (3, 2, 72, False),
        (2, 1, 7, True),
    ]:
        p, s = (torch.randn((tokens, heads, head_size), generator=g) for _ in range(2))
        p_lse, s_lse = (3 * torch.randn((heads, tokens), generator=g) for _ in range(2))
        p_lse[0, 0] = float("-inf")  # an empty prefix
        output_lse = torch.empty_like(p_lse).to(device) if with_lse else None
        yield (
            torch.empty_like(p).to(device, dtype),
            output_lse,
            p.to(device, dtype),
            p_lse.to(device),
            s.to(device, dtype),
            s_lse.to(device),
        )


register(
    OpSpec(
        name="merge_attn_states",
        family="attention",
        wrapper=merge_attn_states,
        reference=merge_attn_states_ref,
        outputs=("output", "output_lse"),
        sample_args=_samples,
        native=merge_attn_states_native,
        bench=_bench(
            [(t, 32, 128) for t in (1, 32, 4096, 16384, 32768)]
            + [(16384, 32, 64), (16384, 16, 256)]
        ),
        bench_quick=_bench([(4, 4, 64), (512, 8, 128)]),
    )
)
