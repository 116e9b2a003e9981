# SPDX-License-Identifier: Apache-2.0
"""The sampling family against its references: repetition penalties over dtypes, layouts,
odd sizes, penalty edge values, NaN and inf; top_k_per_row over row lengths around k and the
kernel's paths, ties, NaN, -inf, empty and out-of-range column ranges; CPU == CUDA,
torch.compile, bad inputs."""

from __future__ import annotations

import pytest
import stablekernels
import torch
from helpers import DEVICES
from stablekernels.ops.sampling import (
    apply_repetition_penalties_ref,
    clamped_ranges,
    top_k_per_row_ref,
)

OPS = torch.ops.stablekernels
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
EXACT = {"atol": 0, "rtol": 0}


# --- apply_repetition_penalties_ ----------------------------------------------------------


def _rows_layout(shape: tuple[int, int], layout: str, make, device: str) -> torch.Tensor:
    """A [rows, n] tensor built by make(shape) in the given row layout."""
    rows, n = shape
    if layout == "contiguous":
        return make((rows, n)).to(device)
    if layout == "row_strided":
        return make((rows, n + 13)).to(device)[:, 5 : 5 + n]
    if layout == "misaligned":
        return make((rows * n + 1,)).to(device)[1:].view(rows, n)
    raise ValueError(layout)


def penalty_inputs(shape, layout, dtype, device, *, seed=0, density=0.3, mask_layout=None):
    g = torch.Generator().manual_seed(seed)
    logits = _rows_layout(
        shape, layout, lambda s: (5 * torch.randn(s, generator=g)).to(dtype), device
    )
    masks = [
        _rows_layout(
            shape, mask_layout or layout, lambda s: torch.rand(s, generator=g) < density, device
        )
        for _ in range(2)
    ]
    penalties = (0.5 + 2 * torch.rand(shape[0], generator=g)).to(device)
    return logits, masks[0], masks[1], penalties


PENALTY_SHAPES = [(1, 1), (1, 7), (3, 8), (5, 111), (2, 1000), (7, 4099), (3, 32000), (2, 50257)]
PENALTY_LAYOUTS = ["contiguous", "row_strided", "misaligned"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", PENALTY_SHAPES, ids=str)
@pytest.mark.parametrize("layout", PENALTY_LAYOUTS)
def test_repetition_penalties(device, dtype, shape, layout) -> None:
    logits, pm, om, pen = penalty_inputs(shape, layout, dtype, device, seed=1)
    expected = apply_repetition_penalties_ref(logits, pm, om, pen)
    functional = stablekernels.apply_repetition_penalties(logits, pm, om, pen)
    before = logits.clone()
    stablekernels.apply_repetition_penalties_(logits, pm, om, pen)
    # float32: x / p and x * p are exactly the float64 result rounded; 16-bit types round twice
    tol = EXACT if dtype == torch.float32 else {"atol": 0, "rtol": 1e-2}
    torch.testing.assert_close(logits, expected, **tol)
    torch.testing.assert_close(functional, logits, **EXACT)
    untouched = ~(pm | om)
    assert torch.equal(logits[untouched], before[untouched])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_repetition_penalties_mixed_layouts(device, dtype) -> None:
    # logits and masks with different row strides and alignments: no common vector offset
    for layout, mask_layout in [("contiguous", "misaligned"), ("misaligned", "row_strided")]:
        logits, pm, om, pen = penalty_inputs(
            (6, 3001), layout, dtype, device, seed=2, mask_layout=mask_layout
        )
        expected = apply_repetition_penalties_ref(logits, pm, om, pen)
        OPS.apply_repetition_penalties_(logits, pm, om, pen)
        tol = EXACT if dtype == torch.float32 else {"atol": 0, "rtol": 1e-2}
        torch.testing.assert_close(logits, expected, **tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_repetition_penalties_in_logits_dtype(device, dtype) -> None:
    # vLLM passes the penalties in the dtype of the logits: same result as their float32 value
    logits, pm, om, pen = penalty_inputs((5, 1001), "contiguous", dtype, device, seed=13)
    pen_lo = pen.to(dtype)
    expected = logits.clone()
    OPS.apply_repetition_penalties_(expected, pm, om, pen_lo.float())
    OPS.apply_repetition_penalties_(logits, pm, om, pen_lo[None, :].expand(3, -1)[1])
    torch.testing.assert_close(logits, expected, **EXACT)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_repetition_penalties_special_values(device, dtype) -> None:
    vals = [0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"), 3.5, -2.25]
    n = len(vals)
    logits = torch.tensor([vals] * 4, dtype=dtype, device=device)
    pm = torch.ones(4, n, dtype=torch.bool, device=device)
    pm[3] = False
    om = torch.zeros(4, n, dtype=torch.bool, device=device)
    om[3, ::2] = True
    pen = torch.tensor([2.0, 1.0, 0.5, 4.0], device=device)
    expected = apply_repetition_penalties_ref(logits, pm, om, pen)
    OPS.apply_repetition_penalties_(logits, pm, om, pen)
    torch.testing.assert_close(logits, expected, **EXACT, equal_nan=True)
    # spot checks of the rule
    assert logits[0, 7].item() == 1.75 and logits[0, 8].item() == -4.5
    assert logits[0, 4].item() == float("inf") and logits[0, 5].item() == float("-inf")
    assert logits[3, 7].item() == 3.5  # unmasked (odd column, prompt row empty)


@pytest.mark.parametrize("device", DEVICES)
def test_repetition_penalties_empty_and_dense_masks(device) -> None:
    for rows, vocab in [(0, 16), (3, 0)]:
        x = torch.randn(rows, vocab, device=device)
        m = torch.ones(rows, vocab, dtype=torch.bool, device=device)
        OPS.apply_repetition_penalties_(x, m, m, torch.ones(rows, device=device) * 2)
    x = torch.randn(4, 513, device=device)
    m0 = torch.zeros(4, 513, dtype=torch.bool, device=device)
    pen = torch.tensor([2.0, 3.0, 1.0, 0.25], device=device)
    before = x.clone()
    OPS.apply_repetition_penalties_(x, m0, m0, pen)
    assert torch.equal(x, before)
    m1 = ~m0
    OPS.apply_repetition_penalties_(x, m1, m0, pen)
    torch.testing.assert_close(x, apply_repetition_penalties_ref(before, m1, m0, pen), **EXACT)
    # a strided penalty vector
    wide = torch.tensor([2.0, 9.0, 3.0, 9.0, 1.0, 9.0, 0.25, 9.0], device=device)
    y = before.clone()
    OPS.apply_repetition_penalties_(y, m0, m1, wide[::2])
    torch.testing.assert_close(y, x, **EXACT)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
# Aligned rows (the rows kernel): one vector a thread up to (255, 4104), two from (256, 4104);
# rows of 4104 and 1000 end inside a block's chunk, 1000 inside its first vector pass; up to
# 65535 rows (the grid's y extent), the tile kernel from 65536. Misaligned and strided rows:
# the tile kernel.
@pytest.mark.parametrize(
    "shape",
    [
        (1, 128256),
        (33, 32000),
        (3, 50257),
        (256, 4097),
        (64, 4096),
        (65, 4096),
        (255, 4104),
        (256, 4104),
        (300, 1000),
        (65535, 16),
        (65536, 16),
    ],
    ids=str,
)
@pytest.mark.parametrize("unit_rows", [False, True], ids=["penalties", "some_penalties_1"])
def test_repetition_penalties_cpu_matches_cuda(dtype, shape, unit_rows) -> None:
    for layout in PENALTY_LAYOUTS:
        # built on the GPU in the layout (a copy to the GPU would be contiguous and aligned)
        cuda, pm, om, pen = penalty_inputs(shape, layout, dtype, "cuda", seed=3)
        if unit_rows:
            pen[::3] = 1.0  # rows the op leaves as they are (read, not written)
        logits = cuda.cpu()
        before = logits.clone()
        OPS.apply_repetition_penalties_(logits, pm.cpu(), om.cpu(), pen.cpu())
        OPS.apply_repetition_penalties_(cuda, pm, om, pen)
        torch.testing.assert_close(cuda.cpu(), logits, **EXACT)
        if unit_rows:
            assert torch.equal(cuda[::3].cpu(), before[::3])
        if shape[0] > 1:  # the penalized rows did change
            assert not torch.equal(cuda[1::3].cpu(), before[1::3])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_repetition_penalties_division_edges(dtype) -> None:
    """The CUDA kernel's division-free quotient (a reciprocal per tile and correction steps)
    against the CPU's IEEE division, bit for bit: every 16-bit logit (float32: random bit
    patterns over all exponents and the fast path's bounds 2^-64, 2^64 and their neighbours)
    under penalties inside, on and outside the fast range [2^-32, 2^32], subnormal, 0, inf,
    NaN and around 1."""
    if dtype == torch.float32:
        g = torch.Generator().manual_seed(5)
        bits = torch.randint(-(2**31), 2**31, (1 << 16,), generator=g, dtype=torch.int64)
        vals = bits.to(torch.int32).view(torch.float32)
        edges = torch.tensor([2.0**-64, 2.0**64], dtype=torch.float32)
        near = torch.cat(
            [edges, torch.nextafter(edges, edges * 0), torch.nextafter(edges, edges * 4)]
        )
        vals[: near.numel()] = near
        vals[near.numel() : 2 * near.numel()] = -near
    else:
        vals = torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(dtype)
    vals = vals.float()
    pens = torch.tensor(
        [
            1e-40,
            2.0**-33,
            2.0**-32,
            3e-10,
            0.3,
            0.9999999,
            1.0,
            1.0000001,
            1.2,
            1.9999999,
            7.0,
            2.0**32,
            2.0**33,
            1e30,
            0.0,
            float("inf"),
            float("nan"),
        ],
        dtype=torch.float32,
    )
    logits = vals.to(dtype).repeat(pens.numel(), 1)
    m = torch.ones_like(logits, dtype=torch.bool)
    z = torch.zeros_like(m)
    cuda = logits.cuda()
    OPS.apply_repetition_penalties_(logits, m, z, pens)
    OPS.apply_repetition_penalties_(cuda, m.cuda(), z.cuda(), pens.cuda())
    torch.testing.assert_close(cuda.cpu(), logits, **EXACT, equal_nan=True)
    # bit for bit where not NaN (signed zeros included); NaN where NaN (payloads may differ)
    width = {torch.float32: torch.int32}.get(dtype, torch.int16)
    got = cuda.cpu()
    assert torch.equal(got.isnan(), logits.isnan())
    num = ~logits.isnan()
    assert torch.equal(got.view(width)[num], logits.view(width)[num])


@pytest.mark.cuda
def test_repetition_penalties_current_stream() -> None:
    logits, pm, om, pen = penalty_inputs((64, 32000), "contiguous", torch.bfloat16, "cuda")
    expected = apply_repetition_penalties_ref(logits, pm, om, pen)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        OPS.apply_repetition_penalties_(logits, pm, om, pen)
    s.synchronize()
    torch.testing.assert_close(logits, expected, atol=0, rtol=1e-2)


# --- top_k_per_row ----------------------------------------------------------------------


def _key(v: torch.Tensor) -> torch.Tensor:
    """float64 sort key with NaN above +inf and -0 == 0, as the op orders values."""
    v = v.double() + 0.0
    return torch.where(v.isnan(), torch.full_like(v, float("inf")), v), v.isnan()


def assert_top_k(indices: torch.Tensor, logits: torch.Tensor, starts, ends, k: int) -> None:
    """indices holds, per row, a valid top-k of the row's clamped range: distinct columns in
    range whose values are the k largest (ties in any order), then -1s."""
    idx = indices.cpu()
    x = logits.detach().cpu()
    assert idx.shape[0] == x.shape[0] and idx.shape[1] >= k
    for i, (s, e) in enumerate(clamped_ranges(x, starts.cpu(), ends.cpu())):
        n = min(k, e - s)
        got = idx[i, :k]
        assert torch.all(got[n:] == -1), f"row {i}: slots past {n} are {got[n:].tolist()}"
        sel = got[:n].long()
        assert torch.all((sel >= s) & (sel < e)), f"row {i}: column outside [{s}, {e})"
        assert sel.unique().numel() == n, f"row {i}: repeated columns"
        if n == 0:
            continue
        row = x[i, s:e]
        key, nan = _key(row)
        gkey, gnan = _key(x[i, sel])
        # compare the sorted selected values with the sorted k largest, NaNs counted apart
        top = torch.topk(torch.where(nan, torch.full_like(key, float("inf")), key), n).values
        assert int(gnan.sum()) == min(n, int(nan.sum())), f"row {i}: NaN count"
        got_sorted = torch.sort(torch.where(gnan, torch.full_like(gkey, float("inf")), gkey))
        exp_sorted = torch.sort(top)
        assert torch.equal(got_sorted.values, exp_sorted.values), f"row {i}: values differ"


def make_logits(rows, cols, device, *, seed=0, pad=0, kind="randn"):
    g = torch.Generator().manual_seed(seed)
    if kind == "randn":
        x = torch.randn(rows, cols + pad, generator=g)
    elif kind == "ties":  # few distinct values: many ties at the k-th value
        x = torch.randint(-3, 4, (rows, cols + pad), generator=g).float()
    elif kind == "equal":
        x = torch.full((rows, cols + pad), 0.5)
    elif kind == "special":
        x = torch.randn(rows, cols + pad, generator=g)
        r = torch.rand(rows, cols + pad, generator=g)
        x[r < 0.05] = float("nan")
        x[(r >= 0.05) & (r < 0.15)] = float("-inf")
        x[(r >= 0.15) & (r < 0.18)] = float("inf")
        x[(r >= 0.18) & (r < 0.25)] = -0.0
        x[(r >= 0.25) & (r < 0.3)] = 0.0
    elif kind == "tiny":  # values differing in their last bits only (all three digits)
        base = torch.full((rows, cols + pad), 1.0)
        bits = base.view(torch.int32) + torch.randint(0, 4096, (rows, cols + pad), generator=g)
        x = bits.int().view(torch.float32)
    else:
        raise ValueError(kind)
    return x.to(device)[:, :cols]  # slice on the device: a copy would drop the row padding


def full_ranges(rows, cols, device):
    return (
        torch.zeros(rows, dtype=torch.int32, device=device),
        torch.full((rows,), cols, dtype=torch.int32, device=device),
    )


TOPK_CASES = [
    # rows, cols, k
    (1, 1, 1),
    (3, 10, 1),
    (4, 100, 10),
    (2, 100, 100),
    (2, 100, 101),
    (5, 2049, 2048),
    (3, 5000, 2048),
    (2, 4097, 7),
    (3, 40000, 512),
    (2, 131072, 2048),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", TOPK_CASES, ids=str)
@pytest.mark.parametrize("kind", ["randn", "ties", "special", "tiny"])
def test_top_k_per_row(device, case, kind) -> None:
    rows, cols, k = case
    logits = make_logits(rows, cols, device, seed=cols + k, pad=3, kind=kind)
    starts, ends = full_ranges(rows, cols, device)
    got = stablekernels.top_k_per_row(logits, starts, ends, k)
    assert got.dtype == torch.int32 and got.shape == (rows, k)
    assert_top_k(got, logits, starts, ends, k)
    if kind == "randn":  # distinct values: the same set as torch.topk
        ref = top_k_per_row_ref(logits, starts, ends, k)
        assert torch.equal(got.sort(-1).values.cpu(), ref.sort(-1).values.cpu())


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_per_row_all_equal(device) -> None:
    for cols, k in [(10, 3), (5000, 2048), (70000, 100)]:
        logits = make_logits(2, cols, device, kind="equal")
        starts, ends = full_ranges(2, cols, device)
        got = stablekernels.top_k_per_row(logits, starts, ends, k)
        assert_top_k(got, logits, starts, ends, k)


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_per_row_ranges(device) -> None:
    cols, k = 3000, 64
    # normal ranges, short ones, empty, reversed and out of the row: clamped to [0, cols]
    bounds = [
        (0, cols),
        (100, 2000),
        (2990, 3000),
        (5, 5),
        (50, 10),
        (-100, 200),
        (2900, 10**6),
        (-5, -1),
        (4000, 5000),
        (0, 64),
        (1, 66),
        (-(2**31), 2**31 - 1),
    ]
    rows = len(bounds)
    logits = make_logits(rows, cols, device, seed=5, pad=9)
    starts = torch.tensor([b[0] for b in bounds], dtype=torch.int32, device=device)
    ends = torch.tensor([b[1] for b in bounds], dtype=torch.int32, device=device)
    got = stablekernels.top_k_per_row(logits, starts, ends, k)
    assert_top_k(got, logits, starts, ends, k)
    assert torch.equal(got[3].cpu(), torch.full((k,), -1, dtype=torch.int32))
    assert torch.equal(got[2, :10].sort().values.cpu(), torch.arange(2990, 3000, dtype=torch.int32))


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_per_row_wider_indices_and_strides(device) -> None:
    rows, cols, k = 6, 2500, 100
    logits = make_logits(rows, cols, device, seed=6, pad=17)
    assert logits.stride(0) == cols + 17
    wide_starts = torch.tensor([0, 9, 3, 9, 700, 9, 2400, 9, 0, 9, 1, 9], dtype=torch.int32)
    wide_ends = torch.tensor([2500, 9, 50, 9, 2500, 9, 2500, 9, 100, 9, 2000, 9], dtype=torch.int32)
    starts, ends = wide_starts.to(device)[::2], wide_ends.to(device)[::2]
    indices = torch.full((rows, k + 10), -7, dtype=torch.int32, device=device)
    OPS.top_k_per_row(logits, starts, ends, indices, k)
    assert_top_k(indices, logits, starts, ends, k)
    assert torch.all(indices[:, k:] == -7), "slots past k must stay untouched"
    # indices rows further apart than k
    buf = torch.full((rows, k + 30), -7, dtype=torch.int32, device=device)
    OPS.top_k_per_row(logits, starts, ends, buf[:, 5 : 5 + k], k)
    assert_top_k(buf[:, 5 : 5 + k], logits, starts, ends, k)
    assert torch.all(buf[:, :5] == -7) and torch.all(buf[:, 5 + k :] == -7)


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_per_row_empty(device) -> None:
    for rows, cols in [(0, 10), (3, 0)]:
        logits = torch.randn(rows, cols, device=device)
        starts, ends = full_ranges(rows, cols, device)
        got = stablekernels.top_k_per_row(logits, starts, ends, 4)
        assert got.shape == (rows, 4) and torch.all(got == -1)


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["randn", "special", "tiny"])
def test_top_k_per_row_cpu_matches_cuda(kind) -> None:
    rows, cols, k = 40, 20000, 1000
    logits = make_logits(rows, cols, "cpu", seed=7, pad=1, kind=kind)
    g = torch.Generator().manual_seed(8)
    starts = torch.randint(-10, 5000, (rows,), generator=g, dtype=torch.int32)
    ends = torch.randint(1000, 21000, (rows,), generator=g, dtype=torch.int32)
    cpu = stablekernels.top_k_per_row(logits, starts, ends, k)
    cuda = stablekernels.top_k_per_row(logits.cuda(), starts.cuda(), ends.cuda(), k)
    assert_top_k(cuda, logits, starts, ends, k)
    if kind == "randn":  # no ties: the same sets
        assert torch.equal(cuda.cpu().sort(-1).values, cpu.sort(-1).values)


@pytest.mark.cuda
def test_top_k_per_row_many_rows() -> None:
    rows, cols, k = 1000, 3000, 2048
    logits = make_logits(rows, cols, "cuda", seed=9)
    starts, ends = full_ranges(rows, cols, "cuda")
    got = stablekernels.top_k_per_row(logits, starts, ends, k)
    assert_top_k(got, logits, starts, ends, k)


@pytest.mark.cuda
def test_top_k_per_row_current_stream() -> None:
    logits = make_logits(8, 50000, "cuda", seed=10)
    starts, ends = full_ranges(8, 50000, "cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        got = stablekernels.top_k_per_row(logits, starts, ends, 300)
    s.synchronize()
    assert_top_k(got, logits, starts, ends, 300)


# --- torch.compile ------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_compile_sampling(device: str) -> None:
    torch._dynamo.reset()

    def f(x, pm, om, pen, starts, ends):
        y = stablekernels.apply_repetition_penalties(x, pm, om, pen)
        idx = stablekernels.top_k_per_row(y, starts, ends, 8)
        return y.gather(1, idx.long().clamp_min(0)).sort(-1).values

    logits, pm, om, pen = penalty_inputs((4, 300), "contiguous", torch.float32, device, seed=11)
    starts, ends = full_ranges(4, 300, device)
    compiled = torch.compile(f, fullgraph=True, backend="inductor")
    torch.testing.assert_close(
        compiled(logits, pm, om, pen, starts, ends), f(logits, pm, om, pen, starts, ends)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_compile_in_place_penalties(device: str) -> None:
    torch._dynamo.reset()

    def step(x, pm, om, pen):
        stablekernels.apply_repetition_penalties_(x, pm, om, pen)
        return x * 2

    logits, pm, om, pen = penalty_inputs((3, 64), "contiguous", torch.float32, device, seed=12)
    eager_x = logits.clone()
    expected = step(eager_x, pm, om, pen)
    got = torch.compile(step, fullgraph=True)(logits, pm, om, pen)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(logits, eager_x)


# --- bad inputs ---------------------------------------------------------------------


def bad_cases(device: str):
    x = torch.randn(4, 64, device=device)
    m = torch.zeros(4, 64, dtype=torch.bool, device=device)
    pen = torch.ones(4, device=device)
    rp = OPS.apply_repetition_penalties_
    p = "apply_repetition_penalties_"
    yield (
        f"{p} int logits",
        lambda: rp(x.int(), m, m, pen),
        r"'logits' must have dtype float32, float16 or bfloat16, got int32",
    )
    yield (
        f"{p} 3-d logits",
        lambda: rp(x[None], m, m, pen),
        r"'logits' must have 2 dimensions, got shape \[1, 4, 64\]",
    )
    yield (
        f"{p} strided logits",
        lambda: rp(torch.randn(64, 4, device=device).t(), m, m, pen),
        r"'logits' must be contiguous in its last dimension",
    )
    yield (
        f"{p} uint8 mask",
        lambda: rp(x, m.to(torch.uint8), m, pen),
        r"'prompt_mask' must have dtype bool, got uint8",
    )
    yield (
        f"{p} mask shape",
        lambda: rp(x, m, m[:, :63], pen),
        r"'output_mask' must have shape \[4, 64\] \(the shape of 'logits'\), got \[4, 63\]",
    )
    yield (
        f"{p} mask last dim strided",
        lambda: rp(x, torch.zeros(4, 128, dtype=torch.bool, device=device)[:, ::2], m, pen),
        r"'prompt_mask' must be contiguous in its last dimension",
    )
    yield (
        f"{p} penalty dtype",
        lambda: rp(x, m, m, pen.half()),
        r"'repetition_penalties' must have dtype float32, got float16",
    )
    yield (
        f"{p} penalty dtype of neither",
        lambda: rp(x.bfloat16(), m, m, pen.half()),
        r"'repetition_penalties' must have dtype float32 or bfloat16 \(the dtype of 'logits'\), "
        r"got float16",
    )
    yield (
        f"{p} penalty shape",
        lambda: rp(x, m, m, pen[:3]),
        r"'repetition_penalties' must have shape \[4\] \(\[num_seqs\].*got \[3\]",
    )
    yield (
        f"{p} penalty 2-d",
        lambda: rp(x, m, m, pen[:, None]),
        r"'repetition_penalties' must have shape \[4\].*got \[4, 1\]",
    )

    tk = OPS.top_k_per_row
    t = "top_k_per_row"
    starts = torch.zeros(4, dtype=torch.int32, device=device)
    ends = torch.full((4,), 64, dtype=torch.int32, device=device)
    idx = torch.empty(4, 8, dtype=torch.int32, device=device)
    yield (
        f"{t} half logits",
        lambda: tk(x.half(), starts, ends, idx, 8),
        r"'logits' must have dtype float32, got float16",
    )
    yield (
        f"{t} 1-d logits",
        lambda: tk(x[0], starts, ends, idx, 8),
        r"'logits' must have 2 dimensions, got shape \[64\]",
    )
    yield (
        f"{t} strided logits",
        lambda: tk(torch.randn(64, 4, device=device).t(), starts, ends, idx, 8),
        r"'logits' must be contiguous in its last dimension",
    )
    yield (f"{t} k 0", lambda: tk(x, starts, ends, idx, 0), r"'k' must be in \[1, 2048\], got 0")
    yield (
        f"{t} k negative",
        lambda: tk(x, starts, ends, idx, -3),
        r"'k' must be in \[1, 2048\], got -3",
    )
    yield (
        f"{t} k too large",
        lambda: tk(x, starts, ends, torch.empty(4, 4096, dtype=torch.int32, device=device), 2049),
        r"'k' must be in \[1, 2048\], got 2049",
    )
    yield (
        f"{t} indices narrower than k",
        lambda: tk(x, starts, ends, idx, 9),
        r"'indices' must have shape \[4, >= 9\] \(\[num_rows, >= k\]\), got \[4, 8\]",
    )
    yield (
        f"{t} indices rows",
        lambda: tk(x, starts, ends, idx[:3], 8),
        r"'indices' must have shape \[4, >= 8\]",
    )
    yield (
        f"{t} indices int64",
        lambda: tk(x, starts, ends, idx.long(), 8),
        r"'indices' must have dtype int32, got int64",
    )
    yield (
        f"{t} indices last dim strided",
        lambda: tk(
            x, starts, ends, torch.empty(4, 16, dtype=torch.int32, device=device)[:, ::2], 8
        ),
        r"'indices' must be contiguous in its last dimension",
    )
    yield (
        f"{t} starts int64",
        lambda: tk(x, starts.long(), ends, idx, 8),
        r"'row_starts' must have dtype int32, got int64",
    )
    yield (
        f"{t} ends shape",
        lambda: tk(x, starts, ends[:2], idx, 8),
        r"'row_ends' must have shape \[4\] \(\[num_rows\].*got \[2\]",
    )
    yield (
        f"{t} starts 2-d",
        lambda: tk(x, starts[:, None], ends, idx, 8),
        r"'row_starts' must have shape \[4\].*got \[4, 1\]",
    )


_BAD_IDS = [c[0] for c in bad_cases("cpu")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", _BAD_IDS)
def test_sampling_bad_input(device: str, case: str) -> None:
    fn, pattern = {c[0]: c[1:] for c in bad_cases(device)}[case]
    with pytest.raises(RuntimeError, match=pattern):
        fn()


@pytest.mark.cuda
def test_sampling_cpu_cuda_mix() -> None:
    x = torch.randn(4, 64, device="cuda")
    m = torch.zeros(4, 64, dtype=torch.bool, device="cuda")
    pen = torch.ones(4, device="cuda")
    with pytest.raises(
        RuntimeError, match=r"'prompt_mask' must be on cuda:0 \(the device of 'logits'\), got cpu"
    ):
        OPS.apply_repetition_penalties_(x, m.cpu(), m, pen)
    with pytest.raises(
        RuntimeError,
        match=r"'repetition_penalties' must be on cuda:0 \(the device of 'logits'\), got cpu",
    ):
        OPS.apply_repetition_penalties_(x, m, m, pen.cpu())
    starts = torch.zeros(4, dtype=torch.int32, device="cuda")
    ends = torch.full((4,), 64, dtype=torch.int32, device="cuda")
    idx = torch.empty(4, 8, dtype=torch.int32, device="cuda")
    with pytest.raises(
        RuntimeError, match=r"'row_ends' must be on cuda:0 \(the device of 'logits'\), got cpu"
    ):
        OPS.top_k_per_row(x, starts, ends.cpu(), idx, 8)
    with pytest.raises(
        RuntimeError, match=r"'indices' must be on cuda:0 \(the device of 'logits'\), got cpu"
    ):
        OPS.top_k_per_row(x, starts, ends, idx.cpu(), 8)
