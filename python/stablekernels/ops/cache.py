# SPDX-License-Identifier: Apache-2.0
"""Paged KV cache: ``reshape_and_cache_flash``, ``swap_blocks`` and ``copy_blocks``.

The cache of one layer is a pair of tensors ``[num_blocks, block_size, num_kv_heads,
head_size]`` (keys and values); a token's slot ``s`` is ``block * block_size + offset``.
All three ops work in place, as vLLM's ops of the same names, and return ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ._registry import BenchCase, OpSpec, element_size, memory_bound, regime, register

__all__ = ["copy_blocks", "reshape_and_cache_flash", "swap_blocks"]

FP8_MAX = 448.0  # largest finite float8_e4m3fn value


def reshape_and_cache_flash(
    key: Tensor,
    value: Tensor,
    key_cache: Tensor,
    value_cache: Tensor,
    slot_mapping: Tensor,
    kv_cache_dtype: str,
    k_scale: Tensor,
    v_scale: Tensor,
) -> None:
    """Write the keys and values of new tokens into their slots of a paged cache, in place.

    For each token ``t < num_tokens`` with ``s = slot_mapping[t] >= 0``::

        key_cache[s // block_size, s % block_size] = key[t]      # [num_kv_heads, head_size]
        value_cache[s // block_size, s % block_size] = value[t]

    A negative slot skips the token. A slot ``>= num_blocks * block_size`` raises a
    ``RuntimeError``: on the CPU before anything is written; on a CUDA GPU the kernel skips
    it and the next call of a cache op on that GPU raises it, as the host does not wait for
    the kernel (``STABLEKERNELS_SYNC_CHECKS=1``: the call itself waits and raises; see the
    docs page).
    With ``kv_cache_dtype`` ``"fp8"`` or ``"fp8_e4m3"`` the caches receive float8 e4m3
    values of ``key / k_scale`` and ``value / v_scale``, computed in float32 and
    saturated to +-448.

    Args:
        key: ``[num_tokens_padded, num_kv_heads, head_size]``, float32, float16 or bfloat16,
            on the CPU or a CUDA GPU; tokens and heads with any strides, last dim contiguous.
        value: same shape, dtype and device as ``key``, any strides but the last dim's.
        key_cache: ``[num_blocks, block_size, num_kv_heads, head_size]`` on ``key``'s device,
            of ``key``'s dtype (``"auto"``) or float8_e4m3fn or uint8 (fp8); any strides
            but the last dim's. Written in place.
        value_cache: same shape, dtype and device as ``key_cache``. Written in place.
        slot_mapping: ``[num_tokens]`` int64 on ``key``'s device, ``num_tokens <=
            num_tokens_padded``; rows of ``key`` beyond ``num_tokens`` are not read.
        kv_cache_dtype: ``"auto"``, ``"fp8"`` or ``"fp8_e4m3"``.
        k_scale: float32 tensor with one element on ``key``'s device (read in fp8 mode).
        v_scale: likewise, for the values.
    """
    torch.ops.stablekernels.reshape_and_cache_flash.default(
        key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype, k_scale, v_scale
    )


def swap_blocks(src: Tensor, dst: Tensor, block_mapping: Tensor) -> None:
    """Copy whole blocks from ``src`` to ``dst``, across the CPU and a CUDA GPU, in place.

    For each row ``i``: ``dst[block_mapping[i, 1]] = src[block_mapping[i, 0]]``. One
    ``cudaMemcpyAsync`` per block on torch's current stream of the CUDA tensor's device
    (``memcpy`` when both are on the CPU). A copy into pageable CPU memory has finished
    when the call returns; one into pinned memory is asynchronous, so synchronize the
    stream before reading ``dst`` on the host.

    Args:
        src: ``[num_src_blocks, ...]``, any dtype, contiguous, on the CPU or a CUDA GPU.
        dst: ``[num_dst_blocks, ...]``, ``src``'s dtype and bytes per block, contiguous, on
            the CPU or a CUDA GPU (the same GPU as ``src`` when both are). Written in place.
        block_mapping: ``[n, 2]`` int64 on the CPU: (source block, destination block) rows.
    """
    torch.ops.stablekernels.swap_blocks.default(src, dst, block_mapping)


def copy_blocks(
    key_caches: list[Tensor], value_caches: list[Tensor], block_mapping: Tensor
) -> None:
    """Copy blocks within the caches of every layer, in place.

    For every layer ``l`` and row ``i``, with ``(a, b) = block_mapping[i]``::

        key_caches[l][b] = key_caches[l][a]
        value_caches[l][b] = value_caches[l][a]

    On a CUDA GPU one kernel copies all layers. Destinations must be distinct and no
    destination may also be a source in the same call (copies run in parallel).

    Args:
        key_caches: one ``[num_blocks, ...]`` tensor per layer, all of one shape, dtype and
            device, contiguous. Written in place.
        value_caches: as many tensors as ``key_caches``, all of one shape, dtype and device
            (that of the key caches), contiguous, with ``num_blocks`` blocks. Written in place.
        block_mapping: ``[n, 2]`` int64 (source block, destination block) rows, on the CPU
            (checked before anything is copied) or on the caches' device (a row out of range
            is skipped by the kernel and raised by the next cache op on that GPU, or by this
            call with ``STABLEKERNELS_SYNC_CHECKS=1``).
    """
    torch.ops.stablekernels.copy_blocks.default(key_caches, value_caches, block_mapping)


# The ops only write into their mutable arguments: their fakes have nothing to allocate.
@torch.library.register_fake("stablekernels::reshape_and_cache_flash")
def _reshape_and_cache_flash_fake(
    key: Tensor,
    value: Tensor,
    key_cache: Tensor,
    value_cache: Tensor,
    slot_mapping: Tensor,
    kv_cache_dtype: str,
    k_scale: Tensor,
    v_scale: Tensor,
) -> None:
    return None


@torch.library.register_fake("stablekernels::swap_blocks")
def _swap_blocks_fake(src: Tensor, dst: Tensor, block_mapping: Tensor) -> None:
    return None


@torch.library.register_fake("stablekernels::copy_blocks")
def _copy_blocks_fake(
    key_caches: list[Tensor], value_caches: list[Tensor], block_mapping: Tensor
) -> None:
    return None


def _to_cache(x: Tensor, cache_dtype: torch.dtype, kv_cache_dtype: str, scale: Tensor) -> Tensor:
    """Values of ``x`` as a cache of ``cache_dtype`` stores them."""
    if kv_cache_dtype == "auto":
        return x.to(cache_dtype)
    # float32 division, as the kernels: a float64 quotient can round to another fp8 value
    q = (x.float() / scale.float().reshape(())).clamp(-FP8_MAX, FP8_MAX)
    q = q.to(torch.float8_e4m3fn)
    return q.view(torch.uint8) if cache_dtype == torch.uint8 else q


def reshape_and_cache_flash_ref(
    key: Tensor,
    value: Tensor,
    key_cache: Tensor,
    value_cache: Tensor,
    slot_mapping: Tensor,
    kv_cache_dtype: str,
    k_scale: Tensor,
    v_scale: Tensor,
) -> tuple[Tensor, Tensor]:
    """Pure-torch reference of `reshape_and_cache_flash`: returns the new
    ``(key_cache, value_cache)`` as contiguous copies, leaving the arguments alone. The
    "auto" path is a copy; the fp8 path divides in float32, clamps to +-448 and rounds with
    torch's float8_e4m3fn conversion."""
    n = slot_mapping.shape[0]
    slots = slot_mapping.cpu()
    keep = slots >= 0
    out = []
    for x, cache, scale in ((key, key_cache, k_scale), (value, value_cache, v_scale)):
        new = cache.cpu().clone(memory_format=torch.contiguous_format)
        flat = new.view(-1, *new.shape[2:])
        flat[slots[keep]] = _to_cache(x[:n].cpu()[keep], new.dtype, kv_cache_dtype, scale.cpu())
        out.append(new.to(cache.device))
    return out[0], out[1]


def reshape_and_cache_flash_native(
    key: Tensor,
    value: Tensor,
    key_cache: Tensor,
    value_cache: Tensor,
    slot_mapping: Tensor,
    kv_cache_dtype: str,
    k_scale: Tensor,
    v_scale: Tensor,
) -> None:
    """`reshape_and_cache_flash` as a user would write it in pure torch, for contiguous
    caches and slot mappings without skipped (negative) slots."""
    n = slot_mapping.shape[0]
    for x, cache, scale in ((key, key_cache, k_scale), (value, value_cache, v_scale)):
        flat = cache.view(-1, *cache.shape[2:])
        flat.index_copy_(0, slot_mapping, _to_cache(x[:n], cache.dtype, kv_cache_dtype, scale))


def swap_blocks_ref(src: Tensor, dst: Tensor, block_mapping: Tensor) -> Tensor:
    """Pure-torch reference of `swap_blocks`: returns the new ``dst`` (a copy)."""
    new = dst.clone()
    flat_src = src.reshape(src.shape[0], -1).view(torch.uint8)
    flat_new = new.view(new.shape[0], -1).view(torch.uint8)
    for a, b in block_mapping.tolist():
        flat_new[b] = flat_src[a].to(new.device)
    return new


def swap_blocks_native(src: Tensor, dst: Tensor, block_mapping: Tensor) -> None:
    """`swap_blocks` as a user would write it in pure torch (one indexed copy)."""
    m = block_mapping.to(dst.device)
    dst[m[:, 1]] = src[block_mapping[:, 0].to(src.device)].to(dst.device)


def copy_blocks_ref(
    key_caches: list[Tensor], value_caches: list[Tensor], block_mapping: Tensor
) -> tuple[list[Tensor], list[Tensor]]:
    """Pure-torch reference of `copy_blocks`: returns the new caches (copies), applying
    the rows in order."""
    pairs = block_mapping.tolist()

    def apply(cache: Tensor) -> Tensor:
        new = cache.clone()
        for a, b in pairs:
            new[b] = new[a]
        return new

    return [apply(c) for c in key_caches], [apply(c) for c in value_caches]


def copy_blocks_native(
    key_caches: list[Tensor], value_caches: list[Tensor], block_mapping: Tensor
) -> None:
    """`copy_blocks` as a user would write it in pure torch (one indexed copy per cache)."""
    if not key_caches:
        return
    m = block_mapping.to(key_caches[0].device)
    for cache in [*key_caches, *value_caches]:
        cache[m[:, 1]] = cache[m[:, 0]]


def _random_slots(g: torch.Generator, num_tokens: int, num_slots: int, skip: int) -> Tensor:
    slots = torch.randperm(num_slots, generator=g)[:num_tokens]
    slots[: min(skip, num_tokens)] = -1
    return slots[torch.randperm(num_tokens, generator=g)]


def _reshape_samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    g = torch.Generator().manual_seed(0)
    for tokens, heads, head_size, blocks, block_size, kv in [
        (5, 2, 64, 4, 16, "auto"),
        (7, 3, 7, 3, 5, "auto"),
        (6, 2, 32, 2, 16, "fp8"),
    ]:
        key, value = (torch.randn(tokens, heads, head_size, generator=g) for _ in range(2))
        cache_dtype = dtype if kv == "auto" else torch.uint8
        kc, vc = (
            torch.zeros(blocks, block_size, heads, head_size, dtype=cache_dtype, device=device)
            for _ in range(2)
        )
        slots = _random_slots(g, tokens, blocks * block_size, skip=1).to(device)
        scales = [torch.tensor([s], device=device) for s in (0.5, 2.0)]
        yield (key.to(device, dtype), value.to(device, dtype), kc, vc, slots, kv, *scales)


def _swap_samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    # opcheck runs each sample on one device; CPU <-> CUDA swaps are tested in test_cache.py
    g = torch.Generator().manual_seed(1)
    for blocks, shape in [(4, (16, 2, 8)), (3, (5, 3, 7))]:
        src = torch.randn(blocks, *shape, generator=g).to(device, dtype)
        dst = torch.zeros(blocks + 2, *shape, dtype=dtype, device=device)
        yield src, dst, torch.tensor([[0, blocks + 1], [2, 1], [blocks - 1, 0]])


def _copy_samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    g = torch.Generator().manual_seed(2)
    for layers, blocks, shape, on_device in [(2, 6, (16, 2, 8), False), (3, 5, (3, 1, 7), True)]:
        keys = [torch.randn(blocks, *shape, generator=g).to(device, dtype) for _ in range(layers)]
        values = [torch.randn(blocks, *shape, generator=g).to(device, dtype) for _ in range(layers)]
        m = torch.tensor([[0, 3], [1, 4], [2, 2]])
        yield keys, values, m.to(device) if on_device else m


def _reshape_bench(tokens: list[int]) -> tuple[BenchCase, ...]:
    heads, head_size, block_size = 8, 128, 16

    def case(t: int) -> BenchCase:
        num_blocks = max(64, 2 * t // block_size)

        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            key, value = (
                torch.randn(t, heads, head_size, device=device, dtype=dtype) for _ in "kv"
            )
            kc, vc = (
                torch.zeros(num_blocks, block_size, heads, head_size, device=device, dtype=dtype)
                for _ in "kv"
            )
            slots = torch.randperm(num_blocks * block_size, device=device)[:t]
            one = torch.ones(1, device=device)
            return key, value, kc, vc, slots, "auto", one, one

        def nbytes(dtype: torch.dtype) -> int:
            elem = element_size(dtype)
            return 4 * t * heads * head_size * elem + 8 * t  # read k, v; write both; slots

        label = f"tokens={t} kv_heads={heads} head={head_size}"
        return BenchCase(label, regime(t), make, nbytes, memory_bound(t))

    return tuple(case(t) for t in tokens)


register(
    OpSpec(
        name="reshape_and_cache_flash",
        family="cache",
        wrapper=reshape_and_cache_flash,
        reference=reshape_and_cache_flash_ref,
        outputs=(),
        sample_args=_reshape_samples,
        native=reshape_and_cache_flash_native,
        bench=_reshape_bench([1, 32, 256, 4096, 16384, 32768]),
        bench_quick=_reshape_bench([4, 512]),
    )
)
register(
    OpSpec(
        name="swap_blocks",
        family="cache",
        wrapper=swap_blocks,
        reference=swap_blocks_ref,
        outputs=(),
        sample_args=_swap_samples,
        native=swap_blocks_native,
    )
)
register(
    OpSpec(
        name="copy_blocks",
        family="cache",
        wrapper=copy_blocks,
        reference=copy_blocks_ref,
        outputs=(),
        sample_args=_copy_samples,
        native=copy_blocks_native,
    )
)
