# SPDX-License-Identifier: Apache-2.0
"""The rotary family against the float64 reference: dtypes x devices x head sizes x
layouts, out-of-range positions, torch.compile, bad inputs."""

from __future__ import annotations

import pytest
import stablekernels
import torch
from helpers import DEVICES
from stablekernels.ops import REGISTRY
from stablekernels.ops.rotary import make_cos_sin_cache, rotary_embedding_ref

SPEC = REGISTRY["rotary_embedding"]
OP = torch.ops.stablekernels.rotary_embedding

# (query dtype, cos_sin_cache dtype): the cache is float32 or the query dtype
DTYPES = [
    (torch.float32, torch.float32),
    (torch.float16, torch.float32),
    (torch.float16, torch.float16),
    (torch.bfloat16, torch.float32),
    (torch.bfloat16, torch.bfloat16),
]
# (head_size, rot_dim, query heads, key heads). On CUDA these take every access width:
# 16 bytes, 8 bytes (a rotated run of 36 or 20 halves, 18 or 38 floats) and one element.
CONFIGS = [
    (64, 64, 4, 1),
    (80, 80, 3, 3),
    (128, 128, 5, 1),
    (128, 64, 2, 2),
    (256, 256, 1, 1),
    (256, 64, 3, 1),
    (72, 72, 3, 1),
    (72, 36, 2, 1),
    (80, 40, 1, 5),
    (38, 38, 3, 2),
    (2, 2, 3, 1),
]
# How query and key sit in memory; all keep the last dim contiguous.
LAYOUTS = [
    "flat",  # [tokens, heads * head_size], contiguous
    "heads",  # [tokens, heads, head_size], contiguous
    "qkv_slice",  # a column slice of a fused qkv projection: tokens strided
    "head_padded",  # [tokens, heads, head_size] sliced from [tokens, heads, head_size + 8]
    "odd_head_stride",  # the same with + 1: a head stride no vector access fits
    "heads_first",  # [heads, tokens, head_size] transposed to [tokens, heads, head_size]
    "misaligned",  # base pointer one element off a 16-byte boundary
]
NUM_TOKENS = 7
MAX_POSITION = 50


def _ids(values: list) -> list[str]:
    return [str(v).replace("torch.", "") for v in values]


def make_heads(
    tokens: int,
    heads: int,
    head_size: int,
    layout: str,
    dtype: torch.dtype,
    device: str,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, backing): x laid out as `layout`, a view of `backing`, random normal values."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g).to(dtype).to(device)

    if layout == "flat":
        backing = rand(tokens, heads * head_size)
        x = backing
    elif layout == "heads":
        backing = rand(tokens, heads, head_size)
        x = backing
    elif layout == "qkv_slice":
        backing = rand(tokens, (heads + 3) * head_size)
        x = backing[:, head_size : (heads + 1) * head_size]
    elif layout in ("head_padded", "odd_head_stride"):
        backing = rand(tokens, heads, head_size + (8 if layout == "head_padded" else 1))
        x = backing[..., :head_size]
    elif layout == "heads_first":
        backing = rand(heads, tokens, head_size)
        x = backing.transpose(0, 1)
    elif layout == "misaligned":
        backing = rand(tokens * heads * head_size + 1)
        x = backing[1:].view(tokens, heads * head_size)
    else:
        raise ValueError(layout)
    assert x.stride(-1) == 1
    return x, backing


def random_cache(
    max_position: int, rot_dim: int, dtype: torch.dtype, device: str, seed: int
) -> torch.Tensor:
    """Random normal 'cos' and 'sin' values: every element of the rotated part changes,
    and a swapped or misplaced cos or sin value shows."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((max_position, rot_dim), generator=g).to(dtype).to(device)


def positions_for(tokens: int, device: str, seed: int, low: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, MAX_POSITION, (tokens,), generator=g).to(device)


def check_rotated(
    got: torch.Tensor, original: torch.Tensor, expected: torch.Tensor, head_size: int, rot: int
) -> None:
    """The rotated part matches the reference; the rest of each head is bit for bit the input."""
    heads = (got.shape[0], -1, head_size)
    tol = SPEC.tol(got.dtype)
    torch.testing.assert_close(
        got.reshape(heads)[..., :rot], expected.reshape(heads)[..., :rot], **tol
    )
    assert torch.equal(got.reshape(heads)[..., rot:], original.reshape(heads)[..., rot:])


def check_backing_untouched(
    backing: torch.Tensor, before: torch.Tensor, view: torch.Tensor
) -> None:
    """Nothing of `backing` outside `view` changed."""
    after = backing.clone()
    after.as_strided(view.shape, view.stride(), view.storage_offset()).copy_(
        before.as_strided(view.shape, view.stride(), view.storage_offset())
    )
    assert torch.equal(after, before), "wrote outside query/key"


def run_case(
    device: str,
    dtype: torch.dtype,
    cache_dtype: torch.dtype,
    config: tuple[int, int, int, int],
    is_neox: bool,
    layout: str,
    *,
    tokens: int = NUM_TOKENS,
) -> None:
    head_size, rot, hq, hk = config
    q, q_backing = make_heads(tokens, hq, head_size, layout, dtype, device, seed=1)
    k, k_backing = make_heads(tokens, hk, head_size, layout, dtype, device, seed=2)
    cache = random_cache(MAX_POSITION, rot, cache_dtype, device, seed=3)
    positions = positions_for(tokens, device, seed=4)
    q0, k0 = q.clone(), k.clone()
    qb0, kb0 = q_backing.clone(), k_backing.clone()
    exp_q, exp_k = rotary_embedding_ref(positions, q, k, head_size, cache, is_neox)
    # functional wrapper: new tensors, arguments unchanged
    got_q, got_k = stablekernels.rotary_embedding(positions, q, k, head_size, cache, is_neox)
    assert torch.equal(q, q0) and torch.equal(k, k0)
    check_rotated(got_q, q0, exp_q, head_size, rot)
    check_rotated(got_k, k0, exp_k, head_size, rot)
    # raw op, in place on the laid-out tensors themselves
    OP(positions, q, k, head_size, cache, is_neox)
    check_rotated(q, q0, exp_q, head_size, rot)
    check_rotated(k, k0, exp_k, head_size, rot)
    check_backing_untouched(q_backing, qb0, q)
    check_backing_untouched(k_backing, kb0, k)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("dtype", "cache_dtype"), DTYPES, ids=_ids(DTYPES))
@pytest.mark.parametrize("config", CONFIGS, ids=_ids(CONFIGS))
@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
def test_rotary_embedding(
    device: str,
    dtype: torch.dtype,
    cache_dtype: torch.dtype,
    config: tuple[int, int, int, int],
    is_neox: bool,
) -> None:
    run_case(device, dtype, cache_dtype, config, is_neox, "flat")
    run_case(device, dtype, cache_dtype, config, is_neox, "heads")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("dtype", "cache_dtype"), DTYPES, ids=_ids(DTYPES))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("config", [(128, 128, 3, 1), (72, 36, 3, 2), (38, 38, 1, 2)], ids=str)
@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
def test_rotary_embedding_layouts(
    device: str,
    dtype: torch.dtype,
    cache_dtype: torch.dtype,
    layout: str,
    config: tuple[int, int, int, int],
    is_neox: bool,
) -> None:
    run_case(device, dtype, cache_dtype, config, is_neox, layout)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
def test_rotary_embedding_many_tokens_and_heads(device: str, is_neox: bool) -> None:
    # grouped-query shape of a real model: 32 query heads, 8 key heads, many tokens
    run_case(
        device, torch.bfloat16, torch.float32, (128, 128, 32, 8), is_neox, "qkv_slice", tokens=1000
    )


@pytest.mark.cuda
@pytest.mark.parametrize(("dtype", "cache_dtype"), DTYPES, ids=_ids(DTYPES))
@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
@pytest.mark.parametrize("layout", ["heads", "odd_head_stride"])
def test_rotary_embedding_long_heads_cuda(
    dtype: torch.dtype, cache_dtype: torch.dtype, is_neox: bool, layout: str
) -> None:
    # Heads of more chunks than a block has threads in x (256): the CUDA kernel loops over a
    # head's chunks instead of its one pass (rotary_one_pass), with vector access ("heads":
    # heads of 8320 elements, 520 16-byte chunks a NeoX half, 1040 a GPT-J head) and element
    # access ("odd_head_stride"), on a few tokens.
    run_case("cuda", dtype, cache_dtype, (8320, 8320, 2, 1), is_neox, layout, tokens=3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
def test_rotary_embedding_no_key(device: str, dtype: torch.dtype, is_neox: bool) -> None:
    q, _ = make_heads(5, 3, 64, "heads", dtype, device, seed=5)
    cache = random_cache(MAX_POSITION, 32, dtype, device, seed=6)
    positions = positions_for(5, device, seed=7)
    q0 = q.clone()
    exp_q, exp_k = rotary_embedding_ref(positions, q, None, 64, cache, is_neox)
    got_q, got_k = stablekernels.rotary_embedding(positions, q, None, 64, cache, is_neox)
    assert exp_k is None and got_k is None
    check_rotated(got_q, q0, exp_q, 64, 32)
    stablekernels.rotary_embedding_(positions, q, None, 64, cache, is_neox)
    assert torch.equal(q, got_q)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
def test_rotary_embedding_real_frequencies(device: str, is_neox: bool) -> None:
    # the usual cache (cos/sin of position * 10000 ** (-2i / rot_dim)) at long positions
    cache = make_cos_sin_cache(16384, 128).to(device)
    positions = torch.tensor([0, 1, 2, 1023, 4096, 8191, 16383], device=device)
    q, _ = make_heads(7, 4, 128, "flat", torch.float32, device, seed=8)
    k, _ = make_heads(7, 2, 128, "flat", torch.float32, device, seed=9)
    exp_q, exp_k = rotary_embedding_ref(positions, q, k, 128, cache, is_neox)
    got_q, got_k = stablekernels.rotary_embedding(positions, q, k, 128, cache, is_neox)
    torch.testing.assert_close(got_q, exp_q, **SPEC.tol(torch.float32))
    torch.testing.assert_close(got_k, exp_k, **SPEC.tol(torch.float32))
    # position 0 is the identity rotation; a rotation keeps each pair's norm
    torch.testing.assert_close(got_q[0], q[0], atol=0, rtol=0)
    halves = (7, 4, 2, 64) if is_neox else (7, 4, 64, 2)
    norms = q.reshape(halves).pow(2).sum(-2 if is_neox else -1)
    torch.testing.assert_close(got_q.reshape(halves).pow(2).sum(-2 if is_neox else -1), norms)


@pytest.mark.parametrize("device", DEVICES)
def test_rotary_embedding_strided_positions_and_cache(device: str) -> None:
    # positions with stride 3; cache rows further apart than rot_dim
    positions = positions_for(15, device, seed=10)[::3]
    cache_backing = random_cache(MAX_POSITION, 64 + 24, torch.float32, device, seed=11)
    cache = cache_backing[:, 8:72]
    q, _ = make_heads(5, 3, 96, "flat", torch.float32, device, seed=12)
    k, _ = make_heads(5, 1, 96, "heads", torch.float32, device, seed=13)
    exp_q, exp_k = rotary_embedding_ref(positions, q, k, 96, cache, True)
    got_q, got_k = stablekernels.rotary_embedding(positions, q, k, 96, cache, True)
    check_rotated(got_q, q, exp_q, 96, 64)
    check_rotated(got_k, k, exp_k, 96, 64)


@pytest.mark.parametrize("device", DEVICES)
def test_rotary_embedding_empty(device: str) -> None:
    cache = random_cache(MAX_POSITION, 64, torch.float32, device, seed=14)
    positions = torch.empty(0, dtype=torch.int64, device=device)
    q = torch.empty((0, 4 * 64), device=device)
    got_q, got_k = stablekernels.rotary_embedding(positions, q, None, 64, cache, True)
    assert got_q.shape == (0, 256) and got_k is None
    # tokens but no key heads: only the query changes
    positions = positions_for(3, device, seed=15)
    q, _ = make_heads(3, 2, 64, "heads", torch.float32, device, seed=16)
    k = torch.empty((3, 0, 64), device=device)
    got_q, got_k = stablekernels.rotary_embedding(positions, q, k, 64, cache, True)
    check_rotated(got_q, q, rotary_embedding_ref(positions, q, None, 64, cache, True)[0], 64, 64)
    assert got_k.shape == (3, 0, 64)


@pytest.mark.parametrize("bad", [-1, MAX_POSITION, 2**40])
def test_rotary_embedding_position_out_of_range_cpu(bad: int) -> None:
    # the CPU kernel checks every position before writing anything
    q, _ = make_heads(4, 2, 64, "flat", torch.float32, "cpu", seed=17)
    k, _ = make_heads(4, 1, 64, "flat", torch.float32, "cpu", seed=18)
    q0, k0 = q.clone(), k.clone()
    positions = torch.tensor([3, 5, bad, 7])
    cache = random_cache(MAX_POSITION, 64, torch.float32, "cpu", seed=19)
    with pytest.raises(
        RuntimeError,
        match=rf"stablekernels.rotary_embedding: 'positions' must be in \[0, {MAX_POSITION}\) "
        rf"\(the rows of 'cos_sin_cache'\), got {bad} at index 2",
    ):
        OP(positions, q, k, 64, cache, True)
    assert torch.equal(q, q0) and torch.equal(k, k0)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
@pytest.mark.parametrize("head_size", [128, 38])
def test_rotary_embedding_position_out_of_range_cuda(
    dtype: torch.dtype, is_neox: bool, head_size: int
) -> None:
    # A GPU kernel cannot raise: the rotated part of an out-of-range token's heads becomes
    # NaN (the cache is not read for it), the rest of the call is unaffected.
    rot = head_size // 2 if head_size % 4 == 0 else head_size
    tokens = 6
    q, _ = make_heads(tokens, 3, head_size, "heads", dtype, "cuda", seed=20)
    k, _ = make_heads(tokens, 1, head_size, "heads", dtype, "cuda", seed=21)
    q0, k0 = q.clone(), k.clone()
    positions = positions_for(tokens, "cuda", seed=22)
    positions[1] = -1
    positions[4] = MAX_POSITION
    bad = torch.tensor([False, True, False, False, True, False], device="cuda")
    cache = random_cache(MAX_POSITION, rot, dtype, "cuda", seed=23)
    OP(positions, q, k, head_size, cache, is_neox)
    torch.cuda.synchronize()  # no device-side error
    safe = torch.where(bad, torch.zeros_like(positions), positions)
    exp_q, exp_k = rotary_embedding_ref(safe, q0, k0, head_size, cache, is_neox)
    for got, before, exp in [(q, q0, exp_q), (k, k0, exp_k)]:
        assert got[bad][..., :rot].isnan().all()
        assert torch.equal(got[..., rot:], before[..., rot:])
        torch.testing.assert_close(got[~bad], exp[~bad], **SPEC.tol(dtype))


@pytest.mark.cuda
def test_rotary_embedding_current_stream() -> None:
    q, _ = make_heads(64, 8, 128, "flat", torch.bfloat16, "cuda", seed=24)
    cache = random_cache(MAX_POSITION, 128, torch.float32, "cuda", seed=25)
    positions = positions_for(64, "cuda", seed=26)
    expected, _ = stablekernels.rotary_embedding(positions, q, None, 128, cache, True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got, _ = stablekernels.rotary_embedding(positions, q, None, 128, cache, True)
    stream.synchronize()
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_compile_rotary(device: str) -> None:
    torch._dynamo.reset()
    cache = random_cache(MAX_POSITION, 64, torch.float32, device, seed=27)

    def functional(positions, q, k):
        q2, k2 = stablekernels.rotary_embedding(positions, q, k, 64, cache, True)
        q3, _ = stablekernels.rotary_embedding(positions, q2 * 2, None, 64, cache, False)
        return q3 + 1, k2

    def in_place(positions, q, k):
        stablekernels.rotary_embedding_(positions, q, k, 64, cache, False)
        return q * k.sum()

    positions = positions_for(5, device, seed=28)
    q, _ = make_heads(5, 3, 64, "flat", torch.float32, device, seed=29)
    k, _ = make_heads(5, 1, 64, "heads", torch.float32, device, seed=30)
    compiled = torch.compile(functional, fullgraph=True)
    for got, expected in zip(compiled(positions, q, k), functional(positions, q, k), strict=True):
        torch.testing.assert_close(got, expected)
    eager_q, eager_k = q.clone(), k.clone()
    expected = in_place(positions, eager_q, eager_k)
    got = torch.compile(in_place, fullgraph=True)(positions, q, k)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(q, eager_q)
    torch.testing.assert_close(k, eager_k)


def _bad_cases(device: str) -> dict[str, tuple[tuple, str]]:
    """name -> (arguments of the raw op, the message expected after the op's name)."""

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(shape).to(device)

    pos = torch.arange(4, device=device)
    q, k, cache = t(4, 2 * 64), t(4, 64), t(16, 64)
    hq, hk = q.half(), k.half()
    return {
        "int query": (
            (pos, q.int(), k, 64, cache, True),
            r"'query' must have dtype float32, float16 or bfloat16, got int32",
        ),
        "key dtype": (
            (pos, q, k.half(), 64, cache, True),
            r"'key' must have dtype float32 \(the dtype of 'query'\), got float16",
        ),
        "cache dtype": (
            (pos, hq, hk, 64, cache.bfloat16(), True),
            r"'cos_sin_cache' must have dtype float32 or float16 \(the dtype of 'query'\), "
            r"got bfloat16",
        ),
        "float16 cache, float32 query": (
            (pos, q, k, 64, cache.half(), True),
            r"'cos_sin_cache' must have dtype float32 \(the dtype of 'query'\), got float16",
        ),
        "positions int32": (
            (pos.int(), q, k, 64, cache, True),
            r"'positions' must have dtype int64, got int32",
        ),
        "positions float": (
            (pos.float(), q, k, 64, cache, True),
            r"'positions' must have dtype int64, got float32",
        ),
        "positions 2-d": (
            (pos[None], q, k, 64, cache, True),
            r"'positions' must have 1 dimension, got shape \[1, 4\]",
        ),
        "query tokens": (
            (pos, t(5, 128), k, 64, cache, True),
            r"'query' must have 4 tokens in dim 0 \(the length of 'positions'\), "
            r"got shape \[5, 128\]",
        ),
        "key tokens": (
            (pos, q, t(3, 64), 64, cache, True),
            r"'key' must have 4 tokens in dim 0 \(the length of 'positions'\), got shape \[3, 64\]",
        ),
        "query 1-d": (
            (pos, t(128), k, 64, cache, True),
            r"'query' must have shape \[num_tokens, num_heads \* head_size\] or "
            r"\[num_tokens, num_heads, head_size\], got shape \[128\]",
        ),
        "query 4-d": (
            (pos, t(4, 2, 1, 64), k, 64, cache, True),
            r"'query' must have shape \[num_tokens, num_heads \* head_size\]",
        ),
        "head_size not dividing": (
            (pos, t(4, 100), k, 64, cache, True),
            r"the last dim of 'query' \(100\) must be a multiple of 'head_size' \(64\), "
            r"got shape \[4, 100\]",
        ),
        "key head_size not dividing": (
            (pos, q, t(4, 96), 64, cache, True),
            r"the last dim of 'key' \(96\) must be a multiple of 'head_size' \(64\)",
        ),
        "3-d head_size": (
            (pos, t(4, 2, 80), k, 64, cache, True),
            r"the last dim of 'query' must be 'head_size' \(64\), got shape \[4, 2, 80\]",
        ),
        "head_size 0": ((pos, q, k, 0, cache, True), r"'head_size' must be > 0, got 0"),
        "rot_dim > head_size": (
            (pos, q, k, 64, t(16, 66), True),
            r"'cos_sin_cache' has 66 columns \(rot_dim\), more than 'head_size' \(64\)",
        ),
        "rot_dim odd": (
            (pos, q, k, 64, t(16, 33), True),
            r"'cos_sin_cache' must have an even, nonzero number of columns \(rot_dim: the cos "
            r"half, then the sin half\), got shape \[16, 33\]",
        ),
        "cache 1-d": (
            (pos, q, k, 64, t(64), True),
            r"'cos_sin_cache' must have 2 dimensions, got shape \[64\]",
        ),
        "cache columns strided": (
            (pos, q, k, 64, t(128, 16).t(), True),
            r"'cos_sin_cache' must be contiguous in its last dimension",
        ),
        "query last dim strided": (
            (pos, t(128, 4).t(), k, 64, cache, True),
            r"'query' must be contiguous in its last dimension \(stride 1\)",
        ),
        "key last dim strided": (
            (pos, q, t(4, 2, 64).transpose(1, 2), 2, cache[:, :2], True),
            r"'key' must be contiguous in its last dimension",
        ),
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(_bad_cases("cpu")))
def test_rotary_embedding_bad_input(device: str, case: str) -> None:
    args, pattern = _bad_cases(device)[case]
    with pytest.raises(RuntimeError, match=r"stablekernels\.rotary_embedding: " + pattern):
        OP(*args)


@pytest.mark.cuda
def test_rotary_embedding_cpu_cuda_mix() -> None:
    pos = torch.arange(4, device="cuda")
    q, k = torch.randn(4, 128, device="cuda"), torch.randn(4, 64, device="cuda")
    cache = torch.randn(16, 64, device="cuda")
    on = r" must be on {} \(the device of 'query'\), got {}"
    cases = [
        ((pos.cpu(), q, k, 64, cache, True), "'positions'" + on.format("cuda:0", "cpu")),
        ((pos, q, k.cpu(), 64, cache, True), "'key'" + on.format("cuda:0", "cpu")),
        ((pos, q, k, 64, cache.cpu(), True), "'cos_sin_cache'" + on.format("cuda:0", "cpu")),
        (
            (pos, q.cpu(), k.cpu(), 64, cache.cpu(), True),
            "'positions'" + on.format("cpu", "cuda:0"),
        ),
    ]
    for args, pattern in cases:
        with pytest.raises(RuntimeError, match=pattern):
            OP(*args)
