# SPDX-License-Identifier: Apache-2.0
"""The cache family against its references: reshape_and_cache_flash (auto and fp8, dtypes x
devices x shapes x layouts, skipped and out-of-range slots), swap_blocks across the CPU and
CUDA, copy_blocks over layers, CUDA streams and graphs, torch.compile, bad inputs."""

from __future__ import annotations

import re

import pytest
import stablekernels
import torch
from helpers import DEVICES
from stablekernels.ops import REGISTRY
from stablekernels.ops.cache import copy_blocks_ref, reshape_and_cache_flash_ref, swap_blocks_ref

RESHAPE = torch.ops.stablekernels.reshape_and_cache_flash
SWAP = torch.ops.stablekernels.swap_blocks
COPY = torch.ops.stablekernels.copy_blocks
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# (num_tokens, num_kv_heads, head_size, num_blocks, block_size): typical and odd head and block
# sizes; on CUDA they take every access width (16 bytes; 8 bytes for 36 halves or 18 floats;
# one element for 7), and 32 heads of 128 more accesses a token than a block has threads
# (the kernel's loop over a token's chunks; the others, one access a thread, take none).
SHAPES = [
    (3, 32, 128, 2, 16),
    (1, 1, 64, 1, 16),
    (7, 3, 7, 3, 5),
    (33, 8, 128, 8, 16),
    (5, 2, 80, 4, 3),
    (9, 4, 36, 2, 17),
    (6, 2, 18, 5, 1),
    (40, 1, 256, 3, 32),
]
# How key/value [num_tokens, heads, head_size] sit in memory (last dim contiguous).
KV_LAYOUTS = ["contiguous", "token_strided", "head_padded", "heads_first", "misaligned"]
# How the caches sit in memory: their own tensors, or the halves of one [blocks, 2, ...] buffer.
CACHE_LAYOUTS = ["contiguous", "kv_interleaved"]


def make_kv(shape, layout, dtype, device, seed, scale=1.0):
    tokens, heads, head_size = shape
    g = torch.Generator().manual_seed(seed)

    def rand(*s):
        return (scale * torch.randn(s, generator=g)).to(dtype).to(device)

    if layout == "contiguous":
        x = rand(tokens, heads, head_size)
    elif layout == "token_strided":
        x = rand(tokens, heads * head_size + 24)[:, 8 : 8 + heads * head_size]
        x = x.view(tokens, heads, head_size)
    elif layout == "head_padded":
        x = rand(tokens, heads, head_size + 8)[..., :head_size]
    elif layout == "heads_first":
        x = rand(heads, tokens, head_size).transpose(0, 1)
    elif layout == "misaligned":
        x = rand(tokens * heads * head_size + 1)[1:].view(tokens, heads, head_size)
    else:
        raise ValueError(layout)
    assert x.shape == (tokens, heads, head_size) and x.stride(-1) == 1
    return x


def make_caches(blocks, block_size, heads, head_size, dtype, device, layout, seed):
    """Key and value caches filled with random bits, so a slot the op wrongly writes or
    wrongly leaves alone shows."""
    g = torch.Generator().manual_seed(seed)
    shape = (blocks, block_size, heads, head_size)
    if layout == "contiguous":
        full = torch.empty((2, *shape), dtype=dtype)
    else:
        full = torch.empty((blocks, 2, *shape[1:]), dtype=dtype)
    if dtype in (torch.uint8, torch.float8_e4m3fn):
        bits = torch.randint(0, 0x7F, full.shape, generator=g, dtype=torch.uint8)  # no NaN codes
        full.copy_(bits.view(dtype))
    else:
        full.copy_(torch.randn(full.shape, generator=g).to(dtype))
    full = full.to(device)
    if layout == "contiguous":
        return full[0].clone(), full[1].clone()
    return full[:, 0], full[:, 1]


def slots_for(tokens, num_slots, seed, skip=0):
    g = torch.Generator().manual_seed(seed)
    slots = torch.randperm(num_slots, generator=g)[:tokens].clone()
    slots[:skip] = -1
    return slots[torch.randperm(len(slots), generator=g)]


def same_bits(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    ua = a.contiguous().view(torch.uint8)
    ub = b.contiguous().view(torch.uint8)
    mism = (ua != ub).nonzero()
    assert mism.numel() == 0, f"{mism.shape[0]} bytes differ, first at {mism[:4].tolist()}"


def run_reshape(key, value, kc, vc, slots, kv_cache_dtype, ks, vs):
    expected = reshape_and_cache_flash_ref(key, value, kc, vc, slots, kv_cache_dtype, ks, vs)
    RESHAPE(key, value, kc, vc, slots, kv_cache_dtype, ks, vs)
    same_bits(kc.cpu(), expected[0].cpu())
    same_bits(vc.cpu(), expected[1].cpu())


def scales(device, k=1.0, v=1.0):
    return torch.tensor([k], device=device), torch.tensor([v], device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kv_layout", KV_LAYOUTS)
def test_reshape_and_cache_flash(device, dtype, shape, kv_layout) -> None:
    tokens, heads, head_size, blocks, block_size = shape
    tokens = min(tokens, blocks * block_size)
    key = make_kv((tokens, heads, head_size), kv_layout, dtype, device, seed=1)
    value = make_kv((tokens, heads, head_size), kv_layout, dtype, device, seed=2)
    for cache_layout in CACHE_LAYOUTS:
        kc, vc = make_caches(blocks, block_size, heads, head_size, dtype, device, cache_layout, 3)
        slots = slots_for(tokens, blocks * block_size, seed=4, skip=tokens // 3).to(device)
        run_reshape(key, value, kc, vc, slots, "auto", *scales(device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_reshape_and_cache_flash_writes_every_head_element(device, dtype) -> None:
    # all slots taken, none skipped: every cache element must equal its token's
    tokens, heads, head_size, blocks, block_size = 24, 3, 40, 3, 8
    key = make_kv((tokens, heads, head_size), "contiguous", dtype, device, seed=5)
    value = make_kv((tokens, heads, head_size), "contiguous", dtype, device, seed=6)
    kc = torch.full(
        (blocks, block_size, heads, head_size), float("nan"), dtype=dtype, device=device
    )
    vc = torch.full_like(kc, float("nan"))
    slots = torch.arange(tokens - 1, -1, -1, device=device)
    RESHAPE(key, value, kc, vc, slots, "auto", *scales(device))
    torch.testing.assert_close(kc.view(tokens, heads, head_size), key.flip(0), atol=0, rtol=0)
    torch.testing.assert_close(vc.view(tokens, heads, head_size), value.flip(0), atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_reshape_and_cache_flash_padded_tokens_and_all_skipped(device) -> None:
    dtype = torch.float16
    key = make_kv((10, 2, 16), "contiguous", dtype, device, seed=7)
    value = make_kv((10, 2, 16), "contiguous", dtype, device, seed=8)
    kc, vc = make_caches(4, 4, 2, 16, dtype, device, "contiguous", 9)
    # 6 of 10 tokens: rows 6..9 are padding and must not be written anywhere
    run_reshape(key, value, kc, vc, slots_for(6, 16, seed=10).to(device), "auto", *scales(device))
    before = (kc.clone(), vc.clone())
    RESHAPE(key, value, kc, vc, torch.full((10,), -1, device=device), "auto", *scales(device))
    same_bits(kc, before[0])
    same_bits(vc, before[1])
    RESHAPE(
        key, value, kc, vc, torch.empty(0, dtype=torch.long, device=device), "auto", *scales(device)
    )
    same_bits(kc, before[0])


FP8_CACHE_DTYPES = [torch.uint8, torch.float8_e4m3fn]


def fp8_inputs(shape, dtype, device, seed):
    x = make_kv(shape, "contiguous", dtype, device, seed=seed, scale=40.0)
    flat = x.view(-1)
    # saturating and special values: beyond +-448 (after the scale), infinities, tiny values
    special = torch.tensor(
        [1e4, -1e4, 500.0, -500.0, 448.0, 449.0, float("inf"), float("-inf"), 1e-6, -0.0, 0.0],
        dtype=torch.float32,
    ).to(dtype)
    n = min(flat.numel(), special.numel())
    flat[:n] = special[:n].to(device)
    return x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cache_dtype", FP8_CACHE_DTYPES, ids=str)
@pytest.mark.parametrize("kv_cache_dtype", ["fp8", "fp8_e4m3"])
@pytest.mark.parametrize("shape", SHAPES[:5], ids=str)
def test_reshape_and_cache_flash_fp8(device, dtype, cache_dtype, kv_cache_dtype, shape) -> None:
    tokens, heads, head_size, blocks, block_size = shape
    tokens = min(tokens, blocks * block_size)
    key = fp8_inputs((tokens, heads, head_size), dtype, device, seed=11)
    value = fp8_inputs((tokens, heads, head_size), dtype, device, seed=12)
    for cache_layout, (k_scale, v_scale) in zip(
        CACHE_LAYOUTS, [(0.5, 3.0), (1.0, 0.125)], strict=True
    ):
        kc, vc = make_caches(
            blocks, block_size, heads, head_size, cache_dtype, device, cache_layout, 13
        )
        slots = slots_for(tokens, blocks * block_size, seed=14, skip=1).to(device)
        run_reshape(key, value, kc, vc, slots, kv_cache_dtype, *scales(device, k_scale, v_scale))


@pytest.mark.parametrize("device", DEVICES)
def test_reshape_and_cache_flash_fp8_saturates(device) -> None:
    key = torch.tensor([[[1e4, -1e4, 448.0, 100.0]]], device=device)
    kc = torch.zeros(1, 1, 1, 4, dtype=torch.float8_e4m3fn, device=device)
    vc = torch.zeros_like(kc)
    RESHAPE(
        key,
        key,
        kc,
        vc,
        torch.zeros(1, dtype=torch.long, device=device),
        "fp8",
        *scales(device, 1.0, 2.0),
    )
    assert kc.float().flatten().tolist() == [448.0, -448.0, 448.0, 96.0]
    assert vc.float().flatten().tolist() == [448.0, -448.0, 224.0, 48.0]  # 50: a tie, to even


def test_reshape_and_cache_flash_cpu_checks_slots_before_writing() -> None:
    key = torch.randn(4, 2, 8)
    kc = torch.zeros(2, 4, 2, 8)
    vc = torch.zeros_like(kc)
    slots = torch.tensor([0, 1, 8, 2])  # 8 slots: slot 8 is past the end
    with pytest.raises(
        RuntimeError,
        match=r"'slot_mapping' holds slot 8 for token 2, beyond the "
        r"cache of 8 slots",
    ):
        RESHAPE(key, key, kc, vc, slots, "auto", *scales("cpu"))
    assert kc.abs().sum() == 0 and vc.abs().sum() == 0  # nothing written


def pending_cache_error() -> str | None:
    """What the next cache op on the GPU raises of a bad entry an earlier call left: after a
    synchronization, a harmless copy_blocks (a CPU mapping, block 0 onto itself) is run."""
    torch.cuda.synchronize()
    t = torch.zeros(1, 4, device="cuda")
    try:
        COPY([t], [t.clone()], torch.tensor([[0, 0]]))
    except RuntimeError as e:
        return str(e)
    return None


@pytest.fixture(autouse=True)
def _no_pending_bad_entry():
    """Every test leaves no bad entry behind for the next one to raise."""
    yield
    if torch.cuda.is_available():
        assert pending_cache_error() is None


SYNC_CHECKS = "STABLEKERNELS_SYNC_CHECKS"
# Slots 100 (token 1) and 9 (token 3) are both beyond the 8 slots: either is reported.
BAD_SLOTS = [3, 100, 1, 9, -1]
BAD_SLOT = r"slot (100 for token 1|9 for token 3)"


def _bad_slot_call():
    key = torch.randn(5, 2, 8, device="cuda")
    kc = torch.zeros(2, 4, 2, 8, device="cuda")
    vc = torch.zeros_like(kc)
    slots = torch.tensor(BAD_SLOTS, device="cuda")
    return key, kc, vc, lambda: RESHAPE(key, key, kc, vc, slots, "auto", *scales("cuda"))


def _valid_tokens_written(key, kc) -> None:
    # the valid tokens were written, the bad ones skipped (no access past the cache)
    flat = kc.view(8, 2, 8)
    torch.testing.assert_close(flat[3], key[0], atol=0, rtol=0)
    torch.testing.assert_close(flat[1], key[2], atol=0, rtol=0)
    assert flat[[0, 2, 4, 5, 6, 7]].abs().sum() == 0


@pytest.mark.cuda
def test_reshape_and_cache_flash_cuda_reports_a_bad_slot_at_the_next_call(monkeypatch) -> None:
    monkeypatch.delenv(SYNC_CHECKS, raising=False)
    key, kc, vc, bad = _bad_slot_call()
    bad()  # returns: the kernel checks the slots, the host does not wait for it
    torch.cuda.synchronize()
    _valid_tokens_written(key, kc)
    good = torch.tensor([0, -1, -1, -1, -1], device="cuda")
    before = kc.clone()
    with pytest.raises(
        RuntimeError,
        match=r"stablekernels\.reshape_and_cache_flash: 'slot_mapping' held "
        + BAD_SLOT
        + r" in an earlier call on cuda:0, beyond the cache of 8 slots .*"
        r"STABLEKERNELS_SYNC_CHECKS=1",
    ):
        RESHAPE(key, key, kc, vc, good, "auto", *scales("cuda"))
    assert torch.equal(kc, before)  # the reporting call raised before its kernel
    RESHAPE(key, key, kc, vc, good, "auto", *scales("cuda"))  # reported once
    torch.cuda.synchronize()
    torch.testing.assert_close(kc.view(8, 2, 8)[0], key[0], atol=0, rtol=0)


@pytest.mark.cuda
def test_reshape_and_cache_flash_cuda_sync_checks_raise_in_the_call(monkeypatch) -> None:
    monkeypatch.setenv(SYNC_CHECKS, "1")
    key, kc, _, bad = _bad_slot_call()
    with pytest.raises(
        RuntimeError, match=r"'slot_mapping' holds " + BAD_SLOT + r", beyond the cache of 8 slots"
    ):
        bad()
    _valid_tokens_written(key, kc)
    monkeypatch.setenv(SYNC_CHECKS, "0")
    bad()  # the same call, not waited for: raised by the next one
    assert "in an earlier call on cuda:0" in (pending_cache_error() or "")


@pytest.mark.cuda
def test_sync_checks_variable_is_checked(monkeypatch) -> None:
    monkeypatch.setenv(SYNC_CHECKS, "yes")
    key, kc, vc, _ = _bad_slot_call()
    good = torch.tensor([0], device="cuda")
    with pytest.raises(
        RuntimeError,
        match=r"reshape_and_cache_flash: STABLEKERNELS_SYNC_CHECKS='yes': expected 0 or 1 "
        r"\(or unset\)",
    ):
        RESHAPE(key, key, kc, vc, good, "auto", *scales("cuda"))


@pytest.mark.cuda
def test_reshape_and_cache_flash_current_stream_and_graph() -> None:
    dtype = torch.bfloat16
    key = make_kv((9, 4, 64), "contiguous", dtype, "cuda", seed=15)
    value = make_kv((9, 4, 64), "contiguous", dtype, "cuda", seed=16)
    kc, vc = make_caches(4, 8, 4, 64, dtype, "cuda", "contiguous", 17)
    slots = slots_for(9, 32, seed=18, skip=2).cuda()
    expected = reshape_and_cache_flash_ref(key, value, kc, vc, slots, "auto", *scales("cuda"))
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        RESHAPE(key, value, kc, vc, slots, "auto", *scales("cuda"))
    torch.cuda.current_stream().wait_stream(stream)
    same_bits(kc, expected[0])
    same_bits(vc, expected[1])
    # captured into a CUDA graph (no host sync, no report while capturing), replays write
    kc.zero_()
    vc.zero_()
    ks, vs = scales("cuda")
    bad_slots = slots.clone()
    bad_slots[0] = 10_000  # skipped by the kernel; recorded by the replay
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        RESHAPE(key, value, kc, vc, slots, "auto", ks, vs)  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(side)
    kc.zero_()
    vc.zero_()
    with torch.cuda.graph(graph):
        RESHAPE(key, value, kc, vc, slots, "auto", ks, vs)
    graph.replay()
    torch.cuda.synchronize()
    expected = reshape_and_cache_flash_ref(
        key, value, torch.zeros_like(kc), torch.zeros_like(vc), slots, "auto", ks, vs
    )
    same_bits(kc, expected[0])
    graph2 = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph2):
        RESHAPE(key, value, kc, vc, bad_slots, "auto", ks, vs)
    graph2.replay()
    torch.cuda.synchronize()
    # the replay's bad slot: raised by the next call outside a capture, not by a capture
    graph3 = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph3):
        RESHAPE(key, value, kc, vc, slots, "auto", ks, vs)
    assert "held slot 10000 for token 0 in an earlier call" in (pending_cache_error() or "")
    graph3.replay()


@pytest.mark.parametrize("device", DEVICES)
def test_compile_cache(device) -> None:
    torch._dynamo.reset()

    def step(key, value, kc, vc, slots, ks, vs):
        stablekernels.reshape_and_cache_flash(key * 2, value, kc, vc, slots, "auto", ks, vs)
        return kc.sum(dim=(1, 2, 3)) + vc.sum(dim=(1, 2, 3))

    dtype = torch.float32
    key = make_kv((6, 2, 16), "contiguous", dtype, device, seed=19)
    value = make_kv((6, 2, 16), "contiguous", dtype, device, seed=20)
    kc, vc = (torch.zeros(3, 4, 2, 16, device=device) for _ in range(2))
    kc2, vc2 = kc.clone(), vc.clone()
    slots = slots_for(6, 12, seed=21, skip=1).to(device)
    ks, vs = scales(device)
    expected = step(key, value, kc, vc, slots, ks, vs)
    got = torch.compile(step, fullgraph=True)(key, value, kc2, vc2, slots, ks, vs)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(kc2, kc, atol=0, rtol=0)
    torch.testing.assert_close(vc2, vc, atol=0, rtol=0)
    assert kc.abs().sum() > 0


# ---- swap_blocks --------------------------------------------------------------------------

SWAP_DEVICES = [
    ("cpu", "cpu"),
    pytest.param("cpu", "cuda", marks=pytest.mark.cuda),
    pytest.param("cuda", "cpu", marks=pytest.mark.cuda),
    pytest.param("cuda", "cuda", marks=pytest.mark.cuda),
]


@pytest.mark.parametrize(("src_device", "dst_device"), SWAP_DEVICES)
@pytest.mark.parametrize("dtype", [*DTYPES, torch.uint8])
@pytest.mark.parametrize("block_shape", [(16, 4, 64), (5, 3, 7), (1,)], ids=str)
def test_swap_blocks(src_device, dst_device, dtype, block_shape) -> None:
    g = torch.Generator().manual_seed(22)
    src = torch.randint(0, 200, (6, *block_shape), generator=g).to(dtype).to(src_device)
    dst = torch.randint(0, 200, (9, *block_shape), generator=g).to(dtype).to(dst_device)
    mapping = torch.tensor([[0, 8], [5, 0], [2, 3], [3, 2]])
    expected = swap_blocks_ref(src, dst, mapping)
    stablekernels.swap_blocks(src, dst, mapping)
    if dst_device == "cuda" or src_device == "cuda":
        torch.cuda.synchronize()
    same_bits(dst.cpu(), expected.cpu())


@pytest.mark.cuda
def test_swap_blocks_pinned_and_current_stream() -> None:
    src = torch.randn(4, 8, 2, 16, device="cuda")
    dst = torch.zeros(4, 8, 2, 16).pin_memory()
    back = torch.zeros(4, 8, 2, 16, device="cuda")
    mapping = torch.tensor([[0, 3], [1, 0], [3, 1]])
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        SWAP(src, dst, mapping)
        SWAP(dst, back, mapping.flip(1))  # ordered after the first on the same stream
    stream.synchronize()
    same_bits(dst, swap_blocks_ref(src, torch.zeros(4, 8, 2, 16), mapping))
    torch.testing.assert_close(back[[0, 1, 3]], src[[0, 1, 3]], atol=0, rtol=0)
    assert back[2].abs().sum() == 0


# ---- copy_blocks --------------------------------------------------------------------------


def make_layers(layers, blocks, key_shape, value_shape, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)

    def one(shape):
        return torch.randint(0, 120, (blocks, *shape), generator=g).to(dtype).to(device)

    return [one(key_shape) for _ in range(layers)], [one(value_shape) for _ in range(layers)]


COPY_SHAPES = [  # (key block shape, value block shape): access units of 16, 2 and 1 bytes
    ((16, 4, 64), (16, 4, 64)),
    ((3, 1, 7), (3, 1, 7)),
    ((5, 2, 8), (5, 2, 4)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [*DTYPES, torch.uint8])
@pytest.mark.parametrize("shapes", COPY_SHAPES, ids=str)
@pytest.mark.parametrize("mapping_on_device", [False, True])
def test_copy_blocks(device, dtype, shapes, mapping_on_device) -> None:
    keys, values = make_layers(3, 7, *shapes, dtype, device, seed=23)
    mapping = torch.tensor([[0, 5], [6, 1], [2, 3], [4, 4]])
    exp_k, exp_v = copy_blocks_ref(keys, values, mapping)
    stablekernels.copy_blocks(keys, values, mapping.to(device) if mapping_on_device else mapping)
    for got, exp in zip(keys + values, exp_k + exp_v, strict=True):
        same_bits(got, exp)
    assert not torch.equal(keys[0][5], keys[1][5])  # layers are distinct


@pytest.mark.parametrize("device", DEVICES)
def test_copy_blocks_empty(device) -> None:
    keys, values = make_layers(2, 3, (4,), (4,), torch.float32, device, seed=24)
    before = [t.clone() for t in keys + values]
    COPY(keys, values, torch.empty(0, 2, dtype=torch.long))
    COPY([], [], torch.tensor([[0, 1]]))
    for t, b in zip(keys + values, before, strict=True):
        same_bits(t, b)


@pytest.mark.cuda
@pytest.mark.parametrize("sync", [False, True], ids=["deferred", "sync"])
def test_copy_blocks_device_mapping_out_of_range_is_reported_and_skipped(monkeypatch, sync) -> None:
    monkeypatch.setenv(SYNC_CHECKS, "1" if sync else "0")
    keys, values = make_layers(2, 4, (8,), (8,), torch.float32, "cuda", seed=25)
    before = [t.clone() for t in keys + values]
    mapping = torch.tensor([[0, 1], [7, 2]], device="cuda")
    if sync:
        with pytest.raises(
            RuntimeError,
            match=r"'block_mapping' row 1 names source block 7, out of "
            r"range for 'key_caches' of 4 blocks",
        ):
            COPY(keys, values, mapping)
    else:
        COPY(keys, values, mapping)
        assert re.search(
            r"stablekernels\.copy_blocks: 'block_mapping' row 1 named source block 7 in an "
            r"earlier call on cuda:0, out of range for 'key_caches' of 4 blocks",
            pending_cache_error() or "",
        )
    # row 0 was copied; block 2 untouched
    for t, b in zip(keys + values, before, strict=True):
        torch.testing.assert_close(t[1], b[0], atol=0, rtol=0)
        torch.testing.assert_close(t[2], b[2], atol=0, rtol=0)


# ---- bad inputs ---------------------------------------------------------------------------


def _bad_cases(device):
    k = torch.randn(4, 2, 8, device=device)
    kc = torch.zeros(2, 4, 2, 8, device=device)
    s = torch.tensor([0, 1, 2, 3], device=device)
    one = torch.ones(1, device=device)

    def r(**kw):
        a = dict(
            key=k,
            value=k,
            key_cache=kc,
            value_cache=kc.clone(),
            slot_mapping=s,
            kv_cache_dtype="auto",
            k_scale=one,
            v_scale=one,
        )
        a.update(kw)
        return lambda: RESHAPE(*a.values())

    yield (
        "kv_cache_dtype",
        r(kv_cache_dtype="fp8_e5m2"),
        (r"'kv_cache_dtype' must be \"auto\", \"fp8\" or \"fp8_e4m3\", got \"fp8_e5m2\""),
    )
    bad_slot = r(slot_mapping=torch.tensor([0, 8, 1, 2], device=device))

    def bad_slot_twice():  # on the GPU the first call records it, the next one raises it
        bad_slot()
        torch.cuda.synchronize()
        bad_slot()

    yield (
        "slot out of range",
        bad_slot if device == "cpu" else bad_slot_twice,
        (
            r"'slot_mapping' h(olds|eld) slot 8 for token 1(, | in an earlier call on cuda:0, )"
            r"beyond the cache of 8 slots"
        ),
    )
    yield "slot int32", r(slot_mapping=s.int()), r"'slot_mapping' must have dtype int64, got int32"
    yield "slot 2d", r(slot_mapping=s.view(2, 2)), r"'slot_mapping' must have 1 dimension"
    yield (
        "slot too long",
        r(slot_mapping=torch.arange(5, device=device)),
        (r"'slot_mapping' has 5 entries, more than the 4 tokens of 'key'"),
    )
    yield "key int", r(key=k.int()), r"'key' must have dtype float32, float16 or bfloat16"
    yield "key 2d", r(key=k.view(4, 16)), r"'key' must have 3 dimensions"
    # 2^16 heads of 2^15: a token of 2^31 elements (expanded views, nothing allocated)
    huge = torch.zeros(1, 1, 1 << 15, device=device).expand(1, 1 << 16, 1 << 15)
    huge_cache = torch.zeros(1, 1, 1, 1 << 15, device=device).expand(1, 1, 1 << 16, 1 << 15)
    yield (
        "key 2^31 per token",
        r(key=huge, value=huge, key_cache=huge_cache, value_cache=huge_cache, slot_mapping=s[:1]),
        r"'key' must have fewer than 2\^31 elements per token, got 65536 heads of 32768",
    )
    yield "value shape", r(value=k[:, :1]), r"'value' must have shape \[4, 2, 8\]"
    yield (
        "value dtype",
        r(value=k.half()),
        r"'value' must have dtype float32 \(the dtype of 'key'\)",
    )
    yield (
        "cache heads",
        r(key_cache=torch.zeros(2, 4, 3, 8, device=device)),
        (r"'key_cache' must have shape \[num_blocks, block_size, 2, 8\]"),
    )
    yield "cache 3d", r(key_cache=kc.view(8, 2, 8)), r"'key_cache' must have 4 dimensions"
    yield (
        "value cache shape",
        r(value_cache=torch.zeros(3, 4, 2, 8, device=device)),
        (r"'value_cache' must have shape \[2, 4, 2, 8\] \(the shape of 'key_cache'\)"),
    )
    yield (
        "cache dtype auto",
        r(key_cache=kc.half(), value_cache=kc.half()),
        (
            r"'key_cache' must have dtype float32 \(the dtype of 'key', as kv_cache_dtype is \"auto\"\)"
        ),
    )
    yield (
        "cache dtype fp8",
        r(kv_cache_dtype="fp8"),
        (
            r"'key_cache' must have dtype float8_e4m3fn or uint8 \(kv_cache_dtype \"fp8\"\), got float32"
        ),
    )
    yield (
        "value cache dtype",
        r(
            kv_cache_dtype="fp8",
            key_cache=kc.to(torch.uint8),
            value_cache=kc.to(torch.float8_e4m3fn),
        ),
        (
            r"'value_cache' must have dtype Float8_e4m3fn \(the dtype of 'key_cache'\), got uint8"
            r"|'value_cache' must have dtype uint8 \(the dtype of 'key_cache'\)"
        ),
    )
    yield (
        "cache last dim strided",
        r(key_cache=torch.zeros(2, 4, 2, 16, device=device)[..., ::2]),
        (r"'key_cache' must be contiguous in its last dimension"),
    )
    yield "scale dtype", r(k_scale=one.double()), r"'k_scale' must have dtype float32, got float64"
    yield (
        "scale numel",
        r(v_scale=torch.ones(2, device=device)),
        (r"'v_scale' must have exactly one element, got shape \[2\]"),
    )

    src = torch.randn(4, 3, 8, device=device)
    dst = torch.zeros(5, 3, 8, device=device)
    m = torch.tensor([[0, 1]])
    yield (
        "swap src block",
        lambda: SWAP(src, dst, torch.tensor([[4, 0]])),
        (r"'block_mapping' row 0 names source block 4, out of range for 'src' of 4 blocks"),
    )
    yield (
        "swap dst block",
        lambda: SWAP(src, dst, torch.tensor([[0, 1], [1, -1]])),
        (r"'block_mapping' row 1 names destination block -1, out of range for 'dst' of 5 blocks"),
    )
    yield (
        "swap mapping shape",
        lambda: SWAP(src, dst, torch.tensor([0, 1])),
        (r"'block_mapping' must have shape \[n, 2\]"),
    )
    yield (
        "swap mapping dtype",
        lambda: SWAP(src, dst, m.int()),
        (r"'block_mapping' must have dtype int64, got int32"),
    )
    yield (
        "swap dtype",
        lambda: SWAP(src, dst.half(), m),
        (r"'dst' must have dtype float32 \(the dtype of 'src'\), got float16"),
    )
    yield (
        "swap block size",
        lambda: SWAP(src, torch.zeros(5, 3, 7, device=device), m),
        (r"'dst' must have blocks of the size of those of 'src' \(96 bytes"),
    )
    yield (
        "swap strided",
        lambda: SWAP(src[:, :, ::2], dst[:, :, :4], m),
        (r"'src' must be contiguous"),
    )

    keys = [torch.zeros(4, 8, device=device) for _ in range(2)]
    values = [torch.zeros(4, 8, device=device) for _ in range(2)]
    yield (
        "copy block",
        lambda: COPY(keys, values, torch.tensor([[0, 4]])),
        (r"'block_mapping' row 0 names destination block 4, out of range for 'key_caches' of 4"),
    )
    yield (
        "copy mapping shape",
        lambda: COPY(keys, values, torch.tensor([[0, 1, 2]])),
        (r"'block_mapping' must have shape \[n, 2\]"),
    )
    yield (
        "copy mapping dtype",
        lambda: COPY(keys, values, m.float()),
        (r"'block_mapping' must have dtype int64, got float32"),
    )
    yield (
        "copy lengths",
        lambda: COPY(keys, values[:1], m),
        (r"'key_caches' and 'value_caches' must have the same length, got 2 and 1"),
    )
    yield (
        "copy key dtype",
        lambda: COPY([keys[0], keys[1].half()], values, m),
        (
            r"'key_caches\[1\]' must have dtype float32 \(the dtype of 'key_caches\[0\]'\), got float16"
        ),
    )
    yield (
        "copy value shape",
        lambda: COPY(keys, [values[0], values[1][:, :4]], m),
        (r"'value_caches\[1\]' must have shape \[4, 8\] \(the shape of 'value_caches\[0\]'\)"),
    )
    yield (
        "copy value blocks",
        lambda: COPY(keys, [v[:3] for v in values], m),
        (r"'value_caches\[0\]' must have 4 blocks"),
    )


_BAD_IDS = [c[0] for c in _bad_cases("cpu")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", _BAD_IDS)
def test_cache_bad_input(device, case) -> None:
    fn, pattern = {c[0]: c[1:] for c in _bad_cases(device)}[case]
    with pytest.raises(RuntimeError, match=pattern):
        fn()


@pytest.mark.cuda
def test_cache_cpu_cuda_mix() -> None:
    k = torch.randn(4, 2, 8, device="cuda")
    kc = torch.zeros(2, 4, 2, 8, device="cuda")
    s = torch.arange(4, device="cuda")
    one = torch.ones(1, device="cuda")
    on = r" must be on {} \(the device of '{}'\), got {}"
    cases = [
        (
            lambda: RESHAPE(k, k, kc.cpu(), kc, s, "auto", one, one),
            "'key_cache'" + on.format("cuda:0", "key", "cpu"),
        ),
        (
            lambda: RESHAPE(k, k.cpu(), kc, kc, s, "auto", one, one),
            "'value'" + on.format("cuda:0", "key", "cpu"),
        ),
        (
            lambda: RESHAPE(k, k, kc, kc, s.cpu(), "auto", one, one),
            "'slot_mapping'" + on.format("cuda:0", "key", "cpu"),
        ),
        (
            lambda: RESHAPE(k, k, kc, kc, s, "auto", one.cpu(), one),
            "'k_scale'" + on.format("cuda:0", "key", "cpu"),
        ),
        (
            lambda: RESHAPE(k.cpu(), k.cpu(), kc.cpu(), kc.cpu(), s, "auto", one.cpu(), one.cpu()),
            "'slot_mapping'" + on.format("cpu", "key", "cuda:0"),
        ),
        (
            lambda: SWAP(kc, kc.clone(), torch.tensor([[0, 1]], device="cuda")),
            r"'block_mapping' must be on the cpu, got cuda:0",
        ),
        (
            lambda: SWAP(kc.cpu(), kc.cpu(), torch.tensor([[0, 1]], device="cuda")),
            r"'block_mapping' must be on the cpu, got cuda:0",
        ),
        (
            lambda: COPY([kc], [kc.cpu()], torch.tensor([[0, 1]])),
            r"'value_caches\[0\]'" + on.format("cuda:0", "key_caches\\[0\\]", "cpu"),
        ),
        (
            lambda: COPY([kc, kc.cpu()], [kc, kc], torch.tensor([[0, 1]])),
            r"'key_caches\[1\]'" + on.format("cuda:0", "key_caches\\[0\\]", "cpu"),
        ),
        (
            lambda: COPY([kc.cpu()], [kc.cpu()], torch.tensor([[0, 1]], device="cuda")),
            r"'block_mapping' must be on the cpu \(the device of the caches\), got cuda:0",
        ),
    ]
    for fn, pattern in cases:
        with pytest.raises(RuntimeError, match=pattern):
            fn()


def test_registry_has_the_cache_ops() -> None:
    for name in ("reshape_and_cache_flash", "swap_blocks", "copy_blocks"):
        spec = REGISTRY[name]
        assert spec.family == "cache" and spec.outputs == () and spec.native is not None
    assert REGISTRY["reshape_and_cache_flash"].bench


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kv_cache_dtype", ["auto", "fp8"])
def test_native_implementations_match_the_ops(device, kv_cache_dtype) -> None:
    # the pure-torch `native` versions the benchmarks time do what the ops do
    dtype = torch.bfloat16
    cache_dtype = dtype if kv_cache_dtype == "auto" else torch.uint8
    key = make_kv((7, 2, 24), "contiguous", dtype, device, seed=26, scale=30.0)
    value = make_kv((7, 2, 24), "contiguous", dtype, device, seed=27, scale=30.0)
    ours = make_caches(4, 4, 2, 24, cache_dtype, device, "contiguous", 28)
    theirs = tuple(c.clone() for c in ours)
    slots = slots_for(7, 16, seed=29).to(device)
    ks, vs = scales(device, 0.25, 2.0)
    REGISTRY["reshape_and_cache_flash"].wrapper(key, value, *ours, slots, kv_cache_dtype, ks, vs)
    REGISTRY["reshape_and_cache_flash"].native(key, value, *theirs, slots, kv_cache_dtype, ks, vs)
    same_bits(ours[0], theirs[0])
    same_bits(ours[1], theirs[1])

    src, dst = (make_layers(1, 6, (3, 8), (3, 8), dtype, device, seed=s)[0][0] for s in (30, 31))
    dst2 = dst.clone()
    mapping = torch.tensor([[0, 5], [3, 1]])
    REGISTRY["swap_blocks"].wrapper(src, dst, mapping)
    REGISTRY["swap_blocks"].native(src, dst2, mapping)
    same_bits(dst, dst2)

    keys, values = make_layers(2, 6, (3, 8), (5,), dtype, device, seed=32)
    keys2, values2 = [k.clone() for k in keys], [v.clone() for v in values]
    REGISTRY["copy_blocks"].wrapper(keys, values, mapping)
    REGISTRY["copy_blocks"].native(keys2, values2, mapping)
    for a, b in zip(keys + values, keys2 + values2, strict=True):
        same_bits(a, b)
