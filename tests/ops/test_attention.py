# SPDX-License-Identifier: Apache-2.0
"""The attention family against the float64 reference: dtypes x devices x shapes x
layouts, empty, infinite and NaN lse values, torch.compile, bad inputs."""

from __future__ import annotations

import pytest
import stablekernels
import torch
from helpers import DEVICES
from stablekernels.ops import REGISTRY
from stablekernels.ops.attention import merge_attn_states_ref

SPEC = REGISTRY["merge_attn_states"]
OP = torch.ops.stablekernels.merge_attn_states
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# (num_tokens, num_heads, head_size): typical and odd head sizes; on CUDA these take every
# access width (16 bytes, 8 bytes for 36 halves or 18 floats, one element for 7).
SHAPES = [
    (1, 1, 64),
    (7, 3, 80),
    (5, 8, 128),
    (3, 5, 256),
    (4, 3, 72),
    (6, 2, 36),
    (5, 3, 18),
    (5, 3, 7),
    (33, 32, 128),
    # More accesses than a CUDA block covers (two a thread, 256 threads) where the access
    # is one element (the misaligned layout): the kernel's loop over further accesses.
    (2, 2, 1100),
]
# How the [num_tokens, num_heads, head_size] tensors sit in memory (last dim contiguous).
LAYOUTS = [
    "contiguous",
    "token_strided",  # a slice of wider rows: tokens further apart than heads * head_size
    "head_padded",  # [..., :head_size] of [..., head_size + 8]: heads strided
    "heads_first",  # [heads, tokens, head_size] transposed
    "misaligned",  # base pointer one element off a 16-byte boundary
]


def make_values(
    shape: tuple[int, int, int],
    layout: str,
    dtype: torch.dtype,
    device: str,
    seed: int,
    fill: float | None = None,
) -> torch.Tensor:
    tokens, heads, head_size = shape
    g = torch.Generator().manual_seed(seed)

    def rand(*s: int) -> torch.Tensor:
        t = torch.randn(s, generator=g) if fill is None else torch.full(s, fill)
        return t.to(dtype).to(device)

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
    assert x.shape == shape and x.stride(-1) == 1
    return x


def make_lse(
    shape: tuple[int, int, int], device: str, seed: int, transposed: bool = False
) -> torch.Tensor:
    """[num_heads, num_tokens] float32, values in a range where both sides matter."""
    tokens, heads, _ = shape
    g = torch.Generator().manual_seed(seed)
    if transposed:
        return (3 * torch.randn((tokens, heads), generator=g)).to(device).t()
    return (3 * torch.randn((heads, tokens), generator=g)).to(device)


def check_merge(
    out: torch.Tensor,
    out_lse: torch.Tensor | None,
    args: tuple[torch.Tensor, ...],
    dtype: torch.dtype,
) -> None:
    exp_out, exp_lse = merge_attn_states_ref(*args)
    torch.testing.assert_close(out, exp_out, equal_nan=True, **SPEC.tol(dtype))
    if out_lse is not None:
        torch.testing.assert_close(out_lse, exp_lse, equal_nan=True, **SPEC.tol(torch.float32))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_merge_attn_states(
    device: str, dtype: torch.dtype, shape: tuple[int, int, int], layout: str
) -> None:
    p = make_values(shape, layout, dtype, device, seed=1)
    s = make_values(shape, layout, dtype, device, seed=2)
    p_lse = make_lse(shape, device, seed=3, transposed=layout == "heads_first")
    s_lse = make_lse(shape, device, seed=4)
    args = (p, p_lse, s, s_lse)
    # raw op into NaN-filled outputs laid out as the inputs: an unwritten element shows
    out = make_values(shape, layout, dtype, device, seed=5, fill=float("nan"))
    out_lse = torch.full_like(p_lse, float("nan"))
    OP(out, out_lse, *args)
    check_merge(out, out_lse, args, dtype)
    assert not out.isnan().any() and not out_lse.isnan().any()
    # the functional wrapper agrees with the raw op
    w_out, w_lse = stablekernels.merge_attn_states(*args)
    assert w_out.is_contiguous() and w_lse.dtype == torch.float32
    torch.testing.assert_close(w_out, out, **SPEC.tol(dtype))
    torch.testing.assert_close(w_lse, out_lse, atol=0, rtol=0)
    # without output_lse: the same output
    out2 = torch.full_like(out, float("nan"))
    OP(out2, None, *args)
    torch.testing.assert_close(out2, out, atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_merge_attn_states_output_in_a_larger_buffer(device: str, dtype: torch.dtype) -> None:
    shape = (5, 3, 72)
    args = (
        make_values(shape, "contiguous", dtype, device, seed=6),
        make_lse(shape, device, seed=7),
        make_values(shape, "contiguous", dtype, device, seed=8),
        make_lse(shape, device, seed=9),
    )
    big = torch.full((5, 3, 90), float("nan"), dtype=dtype, device=device)
    out = big[..., 9:81]
    big_lse = torch.full((3, 2 * 5), float("nan"), device=device)
    out_lse = big_lse[:, ::2]
    OP(out, out_lse, *args)
    check_merge(out, out_lse, args, dtype)
    assert big[..., :9].isnan().all() and big[..., 81:].isnan().all(), "wrote outside 'output'"
    assert big_lse[:, 1::2].isnan().all(), "wrote outside 'output_lse'"


def _special_case(device: str, dtype: torch.dtype):
    """Rows (token t, head 0) with chosen lse pairs; the values of every empty side are NaN,
    so using them would show."""
    inf, nan = float("inf"), float("nan")
    pairs = [  # (prefix_lse, suffix_lse)
        (1.5, -0.5),  # both sides count
        (-inf, 0.7),  # empty prefix: output = suffix, lse = suffix's
        (2.0, -inf),  # empty suffix
        (-inf, -inf),  # both empty: output 0, lse -inf
        (inf, 0.3),  # +inf marks an empty prefix too
        (-1.0, inf),
        (inf, inf),
        (inf, -inf),
        (nan, 0.0),  # NaN lse: the row is NaN
        (0.0, nan),
        (nan, -inf),
        (80.0, -80.0),  # a negligible side (its weight underflows in float32)
        (-88.0, -90.0),  # very negative but finite
    ]
    tokens, heads, head_size = len(pairs), 2, 40
    shape = (tokens, heads, head_size)
    p = make_values(shape, "contiguous", dtype, device, seed=10)
    s = make_values(shape, "contiguous", dtype, device, seed=11)
    p_lse = make_lse(shape, device, seed=12)
    s_lse = make_lse(shape, device, seed=13)
    for t, (a, b) in enumerate(pairs):
        p_lse[0, t], s_lse[0, t] = a, b
        if abs(a) == inf:
            p[t, 0] = nan
        if abs(b) == inf:
            s[t, 0] = nan
    return pairs, (p, p_lse, s, s_lse)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_merge_attn_states_empty_infinite_and_nan_lse(device: str, dtype: torch.dtype) -> None:
    inf = float("inf")
    pairs, args = _special_case(device, dtype)
    p, p_lse, s, s_lse = args
    out, out_lse = stablekernels.merge_attn_states(*args)
    check_merge(out, out_lse, args, dtype)  # the reference states the same rules
    for t, (a, b) in enumerate(pairs):
        row, lse = out[t, 0], out_lse[0, t].item()
        if a != a or b != b:  # NaN
            assert row.isnan().all() and lse != lse, (a, b)
        elif abs(a) == inf and abs(b) == inf:
            assert torch.equal(row, torch.zeros_like(row)) and lse == -inf, (a, b)
        elif abs(a) == inf:
            assert torch.equal(row, s[t, 0]) and lse == s_lse[0, t].item(), (a, b)  # the other side
        elif abs(b) == inf:
            assert torch.equal(row, p[t, 0]) and lse == p_lse[0, t].item(), (a, b)
        else:
            assert not row.isnan().any() and abs(lse - max(a, b)) < 0.7, (a, b)
    # head 1 holds ordinary values on every row
    assert not out[:, 1].isnan().any() and out_lse[1].isfinite().all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_merge_attn_states_in_place(device: str, dtype: torch.dtype) -> None:
    shape = (6, 4, 64)
    p = make_values(shape, "head_padded", dtype, device, seed=14)
    s = make_values(shape, "contiguous", dtype, device, seed=15)
    p_lse, s_lse = make_lse(shape, device, seed=16), make_lse(shape, device, seed=17)
    s0 = s.clone()
    expected, expected_lse = merge_attn_states_ref(p, p_lse, s, s_lse)
    out_lse = torch.empty_like(p_lse)
    OP(p, out_lse, p, p_lse, s, s_lse)  # output is prefix_output
    torch.testing.assert_close(p, expected, **SPEC.tol(dtype))
    torch.testing.assert_close(out_lse, expected_lse, **SPEC.tol(torch.float32))
    OP(s, None, p, p_lse, s, s_lse)  # output is suffix_output
    torch.testing.assert_close(s, merge_attn_states_ref(p, p_lse, s0, s_lse)[0], **SPEC.tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_merge_attn_states_equal_lse_is_the_mean(device: str) -> None:
    shape = (3, 2, 16)
    p = make_values(shape, "contiguous", torch.float32, device, seed=18)
    s = make_values(shape, "contiguous", torch.float32, device, seed=19)
    lse = make_lse(shape, device, seed=20)
    out, out_lse = stablekernels.merge_attn_states(p, lse, s, lse)
    torch.testing.assert_close(out, (p + s) / 2)
    torch.testing.assert_close(out_lse, lse + torch.log(torch.tensor(2.0)))


@pytest.mark.parametrize("device", DEVICES)
def test_merge_attn_states_empty(device: str) -> None:
    p = torch.empty((0, 4, 64), device=device)
    lse = torch.empty((4, 0), device=device)
    out, out_lse = stablekernels.merge_attn_states(p, lse, p, lse)
    assert out.shape == (0, 4, 64) and out_lse.shape == (4, 0)
    # head_size 0: nothing to merge, but the lse still is
    shape = (3, 2, 0)
    v = torch.empty(shape, device=device)
    p_lse, s_lse = make_lse(shape, device, seed=21), make_lse(shape, device, seed=22)
    out, out_lse = stablekernels.merge_attn_states(v, p_lse, v, s_lse)
    torch.testing.assert_close(out_lse, torch.logaddexp(p_lse, s_lse))


@pytest.mark.parametrize("device", DEVICES)
def test_compile_attention(device: str) -> None:
    torch._dynamo.reset()

    def combine(p, p_lse, s, s_lse, t, t_lse):
        out, lse = stablekernels.merge_attn_states(p * 2, p_lse, s, s_lse)
        out, lse = stablekernels.merge_attn_states(out, lse, t, t_lse)
        return out + 1, lse

    shape = (4, 3, 32)
    args = []
    for seed in range(3):
        args += [
            make_values(shape, "contiguous", torch.float32, device, seed=30 + seed),
            make_lse(shape, device, seed=40 + seed),
        ]
    compiled = torch.compile(combine, fullgraph=True)
    for got, expected in zip(compiled(*args), combine(*args), strict=True):
        torch.testing.assert_close(got, expected)

    def raw(out, p, p_lse, s, s_lse):
        OP(out, None, p, p_lse, s, s_lse)
        return out * 3

    eager_out = torch.empty(shape, device=device)
    compiled_out = torch.empty(shape, device=device)
    expected = raw(eager_out, *args[:4])
    torch.testing.assert_close(
        torch.compile(raw, fullgraph=True)(compiled_out, *args[:4]), expected
    )
    torch.testing.assert_close(compiled_out, eager_out)


@pytest.mark.cuda
def test_merge_attn_states_current_stream() -> None:
    shape = (64, 8, 128)
    args = (
        make_values(shape, "contiguous", torch.bfloat16, "cuda", seed=50),
        make_lse(shape, "cuda", seed=51),
        make_values(shape, "contiguous", torch.bfloat16, "cuda", seed=52),
        make_lse(shape, "cuda", seed=53),
    )
    expected = stablekernels.merge_attn_states(*args)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = stablekernels.merge_attn_states(*args)
    stream.synchronize()
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=0, rtol=0)


@pytest.mark.cuda
def test_merge_attn_states_offsets_past_2_31() -> None:
    """A prefix whose second token starts 2^31 elements in (4 GiB of bfloat16): the kernel's
    64-bit index form. Its result equals the 32-bit form's on a compact copy, bit for bit."""
    free, _ = torch.cuda.mem_get_info()
    if free < (6 << 30):
        pytest.skip(f"needs 6 GiB of free GPU memory, {free >> 20} MiB free")
    shape = (2, 3, 64)
    compact = make_values(shape, "contiguous", torch.bfloat16, "cuda", seed=60)
    storage = torch.empty((1 << 31) + 3 * 64, dtype=torch.bfloat16, device="cuda")
    far = storage.as_strided(shape, (1 << 31, 64, 1))
    far.copy_(compact)
    s = make_values(shape, "contiguous", torch.bfloat16, "cuda", seed=61)
    p_lse = make_lse(shape, "cuda", seed=62)
    s_lse = make_lse(shape, "cuda", seed=63)
    out_far = torch.full_like(compact, float("nan"))
    out_far_lse = torch.full_like(p_lse, float("nan"))
    OP(out_far, out_far_lse, far, p_lse, s, s_lse)
    del storage, far
    out, out_lse = stablekernels.merge_attn_states(compact, p_lse, s, s_lse)
    check_merge(out_far, out_far_lse, (compact, p_lse, s, s_lse), torch.bfloat16)
    torch.testing.assert_close(out_far, out, atol=0, rtol=0)
    torch.testing.assert_close(out_far_lse, out_lse, atol=0, rtol=0)


def _bad_cases(device: str) -> dict[str, tuple[tuple, str]]:
    """name -> (arguments of the raw op, the message expected after the op's name)."""

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(shape).to(device)

    v, lse = t(4, 2, 64), t(2, 4)
    out, out_lse = torch.empty_like(v), torch.empty_like(lse)
    return {
        "int values": (
            (out.int(), out_lse, v.int(), lse, v.int(), lse),
            r"'prefix_output' must have dtype float32, float16 or bfloat16, got int32",
        ),
        "output dtype": (
            (out.half(), out_lse, v, lse, v, lse),
            r"'output' must have dtype float32 \(the dtype of 'prefix_output'\), got float16",
        ),
        "suffix dtype": (
            (out, out_lse, v, lse, v.bfloat16(), lse),
            r"'suffix_output' must have dtype float32 \(the dtype of 'prefix_output'\), "
            r"got bfloat16",
        ),
        "values 2-d": (
            (out, out_lse, v.view(4, 128), lse, v, lse),
            r"'prefix_output' must have 3 dimensions, got shape \[4, 128\]",
        ),
        "suffix shape": (
            (out, out_lse, v, lse, t(4, 2, 32), lse),
            r"'suffix_output' must have shape \[4, 2, 64\] \(the shape of 'prefix_output'\), "
            r"got \[4, 2, 32\]",
        ),
        "output shape": (
            (t(5, 2, 64), out_lse, v, lse, v, lse),
            r"'output' must have shape \[4, 2, 64\] \(the shape of 'prefix_output'\), "
            r"got \[5, 2, 64\]",
        ),
        "prefix_lse bfloat16": (
            (out, out_lse, v, lse.bfloat16(), v, lse),
            r"'prefix_lse' must have dtype float32, got bfloat16",
        ),
        "float16 lse with float16 values": (
            (out.half(), out_lse, v.half(), lse, v.half(), lse.half()),
            r"'suffix_lse' must have dtype float32, got float16",
        ),
        "suffix_lse float64": (
            (out, out_lse, v, lse, v, lse.double()),
            r"'suffix_lse' must have dtype float32, got float64",
        ),
        "output_lse dtype": (
            (out, out_lse.half(), v, lse, v, lse),
            r"'output_lse' must have dtype float32, got float16",
        ),
        "lse transposed": (
            (out, out_lse, v, lse.t(), v, lse),
            r"'prefix_lse' must have shape \[2, 4\] \(\[num_heads, num_tokens\] of "
            r"'prefix_output'\), got \[4, 2\]",
        ),
        "lse 3-d": (
            (out, out_lse, v, lse, v, lse[..., None]),
            r"'suffix_lse' must have shape \[2, 4\]",
        ),
        "output_lse shape": (
            (out, t(2, 5), v, lse, v, lse),
            r"'output_lse' must have shape \[2, 4\]",
        ),
        "last dim strided": (
            (out, out_lse, t(4, 64, 2).transpose(1, 2), lse, v, lse),
            r"'prefix_output' must be contiguous in its last dimension \(stride 1\)",
        ),
        "output_lse is prefix_lse": (
            (out, lse, v, lse, v, t(2, 4)),
            r"'output_lse' must not be 'prefix_lse' or 'suffix_lse' \(no in-place lse\)",
        ),
        "output_lse is suffix_lse": (
            (out, lse, v, t(2, 4), v, lse),
            r"'output_lse' must not be 'prefix_lse' or 'suffix_lse'",
        ),
        "output last dim strided": (
            (t(4, 64, 2).transpose(1, 2), out_lse, v, lse, v, lse),
            r"'output' must be contiguous in its last dimension",
        ),
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(_bad_cases("cpu")))
def test_merge_attn_states_bad_input(device: str, case: str) -> None:
    args, pattern = _bad_cases(device)[case]
    with pytest.raises(RuntimeError, match=r"stablekernels\.merge_attn_states: " + pattern):
        OP(*args)


@pytest.mark.cuda
def test_merge_attn_states_cpu_cuda_mix() -> None:
    v, lse = torch.randn(4, 2, 64, device="cuda"), torch.randn(2, 4, device="cuda")
    out, out_lse = torch.empty_like(v), torch.empty_like(lse)
    on = r" must be on {} \(the device of 'prefix_output'\), got {}"
    cases = [
        ((out.cpu(), out_lse, v, lse, v, lse), "'output'" + on.format("cuda:0", "cpu")),
        ((out, out_lse, v, lse, v.cpu(), lse), "'suffix_output'" + on.format("cuda:0", "cpu")),
        ((out, out_lse, v, lse.cpu(), v, lse), "'prefix_lse'" + on.format("cuda:0", "cpu")),
        ((out, out_lse.cpu(), v, lse, v, lse), "'output_lse'" + on.format("cuda:0", "cpu")),
        (
            (out.cpu(), out_lse.cpu(), v.cpu(), lse.cpu(), v.cpu(), lse),
            "'suffix_lse'" + on.format("cpu", "cuda:0"),
        ),
    ]
    for args, pattern in cases:
        with pytest.raises(RuntimeError, match=pattern):
            OP(*args)
