# SPDX-License-Identifier: Apache-2.0
"""Rotary position embedding: ``rotary_embedding``.

Rotates the first ``rot_dim`` elements of every head of the query and key by the angles
of each token's position, read from a cos/sin cache, in the NeoX (halves) or GPT-J
(interleaved pairs) arrangement. Computed in float32.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ._registry import BenchCase, OpSpec, element_size, memory_bound, regime, register

__all__ = ["rotary_embedding", "rotary_embedding_"]


def rotary_embedding(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> tuple[Tensor, Tensor | None]:
    """Rotary position embedding of query and key, without modifying the arguments.

    With ``rot_dim = cos_sin_cache.shape[1]``, ``cos = cos_sin_cache[p, :rot_dim // 2]``
    and ``sin = cos_sin_cache[p, rot_dim // 2:]`` for a token at position ``p``, every head
    ``x`` of that token has its pairs ``(x1, x2)`` rotated to
    ``(x1 * cos - x2 * sin, x2 * cos + x1 * sin)``, where the pairs are
    ``(x[i], x[i + rot_dim // 2])`` if ``is_neox`` and ``(x[2 * i], x[2 * i + 1])``
    otherwise, for ``i < rot_dim // 2``. Elements ``x[rot_dim:]`` are copied unchanged.

    Args:
        positions: ``[num_tokens]``, int64, any stride: the position of each token, in
            ``[0, max_position)``. On the CPU a position out of range raises; on a GPU
            the rotated part of that token's heads becomes NaN (see the docs page).
        query: ``[num_tokens, num_heads * head_size]`` or
            ``[num_tokens, num_heads, head_size]``, float32, float16 or bfloat16, on the
            CPU or a CUDA GPU; tokens and heads with any strides, last dim contiguous.
        key: like ``query``, with its own number of heads, same dtype and device; or
            ``None``.
        head_size: the size of a head, > 0.
        cos_sin_cache: ``[max_position, rot_dim]``, the cosines then the sines; float32 or
            the dtype of ``query``; rows with any stride, last dim contiguous. ``rot_dim``
            must be even and at most ``head_size``.
        is_neox: ``True`` to rotate the two halves of the first ``rot_dim`` elements
            (GPT-NeoX, Llama), ``False`` to rotate adjacent pairs (GPT-J).

    Returns:
        ``(query_out, key_out)``: new contiguous tensors shaped like ``query`` and ``key``
        (``key_out`` is ``None`` when ``key`` is), of their dtype.
    """
    q = query.clone(memory_format=torch.contiguous_format)
    k = None if key is None else key.clone(memory_format=torch.contiguous_format)
    torch.ops.stablekernels.rotary_embedding.default(
        positions, q, k, head_size, cos_sin_cache, is_neox
    )
    return q, k


def rotary_embedding_(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> None:
    """In-place `rotary_embedding`, as vLLM's op of the same name.

    Rotates ``query`` and ``key`` (when not ``None``) in place. Arguments as in
    `rotary_embedding`.
    """
    torch.ops.stablekernels.rotary_embedding.default(
        positions, query, key, head_size, cos_sin_cache, is_neox
    )


# The op only writes into query and key: its fake has nothing to allocate.
torch.library.register_fake("stablekernels::rotary_embedding")(
    lambda positions, query, key, head_size, cos_sin_cache, is_neox: None
)


def _rotate_ref(
    x: Tensor | None, positions: Tensor, head_size: int, cos_sin_cache: Tensor, is_neox: bool
) -> Tensor | None:
    if x is None:
        return None
    heads = x.reshape(x.shape[0], -1, head_size).double()
    rot = cos_sin_cache.shape[1]
    half = rot // 2
    cos_sin = cos_sin_cache.double()[positions][:, None, :]  # [num_tokens, 1, rot_dim]
    cos, sin = cos_sin[..., :half], cos_sin[..., half:]
    if is_neox:
        x1, x2 = heads[..., :half], heads[..., half:rot]
    else:
        x1, x2 = heads[..., 0:rot:2], heads[..., 1:rot:2]
    y1, y2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    out = heads.clone()
    if is_neox:
        out[..., :half], out[..., half:rot] = y1, y2
    else:
        out[..., 0:rot:2], out[..., 1:rot:2] = y1, y2
    return out.to(x.dtype).reshape(x.shape)


def rotary_embedding_ref(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> tuple[Tensor, Tensor | None]:
    """Pure-torch reference of `rotary_embedding`, in float64.

    Raises:
        IndexError: a position is outside ``[0, cos_sin_cache.shape[0])``.
    """
    max_position = cos_sin_cache.shape[0]
    if positions.numel() and bool(((positions < 0) | (positions >= max_position)).any()):
        raise IndexError(f"a position is outside [0, {max_position})")
    return (
        _rotate_ref(query, positions, head_size, cos_sin_cache, is_neox),
        _rotate_ref(key, positions, head_size, cos_sin_cache, is_neox),
    )


def rotary_embedding_native(
    positions: Tensor,
    query: Tensor,
    key: Tensor | None,
    head_size: int,
    cos_sin_cache: Tensor,
    is_neox: bool,
) -> None:
    """`rotary_embedding_` in pure torch (float32 math, in place): the bar for benchmarks."""
    rot = cos_sin_cache.shape[1]
    half = rot // 2
    cos_sin = cos_sin_cache.index_select(0, positions).float()[:, None, :]
    cos, sin = cos_sin[..., :half], cos_sin[..., half:]
    for x in (query, key):
        if x is None:
            continue
        heads = x.view(x.shape[0], -1, head_size)
        part = heads[..., :rot].float()
        if is_neox:
            x1, x2 = part[..., :half], part[..., half:]
            rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
        else:
            x1, x2 = part[..., 0::2], part[..., 1::2]
            rotated = torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)
        heads[..., :rot].copy_(rotated)


def make_cos_sin_cache(
    max_position: int, rot_dim: int, *, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """The usual cache: ``cos`` then ``sin`` of ``position * base ** (-2 i / rot_dim)``.

    Args:
        max_position: number of rows.
        rot_dim: even number of columns.
        base: the base of the inverse frequencies.
        dtype: the dtype of the result (computed in float64).

    Returns:
        ``[max_position, rot_dim]`` on the CPU.
    """
    inv_freq = base ** (-torch.arange(0, rot_dim, 2, dtype=torch.float64) / rot_dim)
    angles = torch.arange(max_position, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cat([angles.cos(), angles.sin()], dim=-1).to(dtype)


def _samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    g = torch.Generator().manual_seed(0)
    # (tokens, query heads, key heads or None, head_size, rot_dim, 3-D, NeoX, cache dtype)
    for tokens, hq, hk, head_size, rot, three_d, neox, cache_dtype in [
        (5, 3, 1, 64, 64, False, True, torch.float32),
        (3, 2, None, 80, 32, True, False, dtype),
        (4, 1, 2, 18, 18, False, False, dtype),
    ]:
        positions = torch.randint(0, 40, (tokens,), generator=g)
        cache = make_cos_sin_cache(40, rot, dtype=cache_dtype)
        q, k = (
            torch.randn((tokens, n, head_size) if three_d else (tokens, n * head_size), generator=g)
            for n in (hq, hk or 0)
        )
        yield (
            positions.to(device),
            q.to(device, dtype),
            None if hk is None else k.to(device, dtype),
            head_size,
            cache.to(device),
            neox,
        )


def _bench(shapes: list[tuple[int, int, int, int]]) -> tuple[BenchCase, ...]:
    """Cases (tokens, query heads, key heads, head_size), NeoX, rot_dim = head_size, the
    cache in the activations' dtype (as models keep it)."""

    def case(t: int, hq: int, hk: int, head_size: int) -> BenchCase:
        max_position = 8192

        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            cache = make_cos_sin_cache(max_position, head_size, dtype=dtype).to(device)
            positions = torch.randint(0, max_position, (t,), device=device)
            q = torch.randn(t, hq * head_size, device=device, dtype=dtype)
            k = torch.randn(t, hk * head_size, device=device, dtype=dtype)
            return positions, q, k, head_size, cache, True

        def nbytes(dtype: torch.dtype) -> int:
            elem = element_size(dtype)
            # q and k read and written, one cache row and one position per token
            return t * (2 * (hq + hk) * head_size * elem + head_size * elem + 8)

        label = f"tokens={t} heads={hq}/{hk} head={head_size}"
        return BenchCase(label, regime(t), make, nbytes, memory_bound(t))

    return tuple(case(*s) for s in shapes)


register(
    OpSpec(
        name="rotary_embedding",
        family="rotary",
        wrapper=rotary_embedding,
        reference=rotary_embedding_ref,
        outputs=(),
        sample_args=_samples,
        native=rotary_embedding_native,
        bench=_bench(
            [(t, 32, 8, 128) for t in (1, 32, 4096, 16384, 32768)]
            + [(16384, 32, 8, 64), (16384, 16, 4, 256)]
        ),
        bench_quick=_bench([(4, 4, 2, 64), (512, 4, 2, 128)]),
        bench_fn=rotary_embedding_,
    )
)
