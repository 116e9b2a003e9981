# SPDX-License-Identifier: Apache-2.0
"""The quantization family against its reference, bit for bit: dtypes x devices x shapes x
layouts, saturation, all-zero rows, scale_ub, NaN and inf, CPU == CUDA, torch.compile,
bad inputs."""

from __future__ import annotations

import pytest
import stablekernels
import torch
from helpers import DEVICES, LAYOUTS, make_tensor
from stablekernels.ops.quantization import (
    FP8_NAN_BITS,
    MIN_SCALE,
    dynamic_per_token_scaled_fp8_quant_ref,
    dynamic_scaled_fp8_quant_ref,
    static_scaled_fp8_quant_ref,
)

OPS = torch.ops.stablekernels
FP8 = torch.float8_e4m3fn
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Odd sizes, sizes off the vector width, and rows for each per-token kernel shape (register
# kernel with 1..8 items per thread, generic two-pass kernel past 8 * 256 vectors).
SHAPES = [(1, 1), (3, 7), (5, 111), (2, 3, 64), (4, 4097), (3, 8192), (2, 20000), (33, 4096)]


def bits(t: torch.Tensor) -> torch.Tensor:
    assert t.dtype == FP8
    return t.view(torch.uint8).cpu()


def nan_fp8(shape: tuple[int, ...], device: str, layout: str = "contiguous") -> torch.Tensor:
    """An fp8 output filled with NaN (0x7F), contiguous or with padded rows."""
    if layout == "row_strided" and len(shape) >= 1:
        wide = torch.full((*shape[:-1], shape[-1] + 16), float("nan"), device=device).to(FP8)
        return wide[..., 3 : 3 + shape[-1]]
    return torch.full(shape, float("nan"), device=device).to(FP8)


def assert_bits_equal(got: torch.Tensor, expected: torch.Tensor) -> None:
    g, e = bits(got), bits(expected)
    mismatch = (g != e).nonzero()
    assert mismatch.numel() == 0, (
        f"{mismatch.shape[0]} of {g.numel()} fp8 values differ; first at {mismatch[0].tolist()}: "
        f"got {g[tuple(mismatch[0])]:#x}, expected {e[tuple(mismatch[0])]:#x}"
    )


def make_input(shape, layout, dtype, device, seed=0, scale=8.0):
    return make_tensor(shape, layout, dtype, device, seed=seed) * scale


# --- numerics against the reference -------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_static(device: str, dtype: torch.dtype, shape: tuple[int, ...], layout: str) -> None:
    x = make_input(shape, layout, dtype, device, seed=1)
    scale = torch.tensor([0.0173], device=device)
    out = nan_fp8(shape, device, "row_strided" if layout == "row_strided" else "contiguous")
    OPS.static_scaled_fp8_quant(out, x, scale)
    expected = static_scaled_fp8_quant_ref(x, scale)
    assert_bits_equal(out, expected)
    assert_bits_equal(stablekernels.static_scaled_fp8_quant(x, scale), expected)
    # Values past +-448 occur with this scale: saturation is exercised.
    assert (bits(expected) & 0x7F == 0x7E).any() or x.abs().max() / 0.0173 < 448


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(128, 8192), (129, 8192)], ids=str)
def test_static_either_side_of_the_decode_launch(
    device: str, dtype: torch.dtype, shape: tuple[int, ...]
) -> None:
    # CUDA: dense inputs of up to 2^20 elements take the one-vector-a-thread kernel, larger
    # ones the grid-stride kernel; both give the reference's bits.
    x = make_input(shape, "contiguous", dtype, device, seed=9, scale=30.0)
    scale = torch.tensor([0.0173], device=device)
    assert_bits_equal(
        stablekernels.static_scaled_fp8_quant(x, scale), static_scaled_fp8_quant_ref(x, scale)
    )


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("side", [-1, 1], ids=["under", "past"])
def test_static_either_side_of_the_one_trip_grid(dtype: torch.dtype, side: int) -> None:
    # CUDA: a dense input of more than 32 blocks a SM x 1024 16-byte vectors takes a grid of
    # one trip (4 vectors) a thread instead of looping; just under and past that size, with a
    # row length that leaves the last trip partial, every element is written with the
    # reference's bits.
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    per_vec = 16 // torch.empty((), dtype=dtype).element_size()
    hidden = 4104
    rows = (sms * 32 * 1024 * per_vec) // hidden + side * 7
    x = make_input((rows, hidden), "contiguous", dtype, "cuda", seed=5, scale=30.0)
    scale = torch.tensor([0.0173], device="cuda")
    out = nan_fp8((rows, hidden), "cuda")
    OPS.static_scaled_fp8_quant(out, x, scale)
    assert_bits_equal(out, static_scaled_fp8_quant_ref(x, scale))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dynamic(device: str, dtype: torch.dtype, shape: tuple[int, ...], layout: str) -> None:
    x = make_input(shape, layout, dtype, device, seed=2)
    out = nan_fp8(shape, device, "row_strided" if layout == "row_strided" else "contiguous")
    scale = torch.full((1,), float("nan"), device=device)
    OPS.dynamic_scaled_fp8_quant(out, x, scale)
    q_ref, s_ref = dynamic_scaled_fp8_quant_ref(x)
    torch.testing.assert_close(scale, s_ref, atol=0, rtol=0)
    assert_bits_equal(out, q_ref)
    # The largest |x| maps to exactly 448.
    assert (bits(out) & 0x7F == 0x7E).any()
    q, s = stablekernels.dynamic_scaled_fp8_quant(x)
    assert s.shape == (1,) and s.dtype == torch.float32
    torch.testing.assert_close(s, s_ref, atol=0, rtol=0)
    assert_bits_equal(q, q_ref)


# Dense inputs either side of each shape of the one-launch dynamic kernel on CUDA (16-bit
# elements, 8 a vector): one block up to 1024 vectors (sm_90 and newer; on older GPUs one
# block up to 8192 vectors), then one cluster of up to 16 blocks of 256 threads x 4 vectors
# (16384 vectors), x 8 vectors (32768), then the amax and conversion kernels.
FUSED_EDGES = [(1, 8192), (1, 8200), (32, 4096), (8, 16385), (32, 8192), (8, 32769)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", FUSED_EDGES, ids=str)
@pytest.mark.parametrize("peak", ["first", "last"])
def test_dynamic_either_side_of_each_fused_launch(
    device: str, dtype: torch.dtype, shape: tuple[int, ...], peak: str
) -> None:
    x = make_input(shape, "contiguous", dtype, device, seed=11)
    flat = x.view(-1)
    # the largest |x| in the first or the last vectors (the first or the last block of a
    # cluster), an inf and a NaN elsewhere: the scale is exactly 1000 / 448
    flat[0 if peak == "first" else -1] = -1000.0
    flat[flat.numel() // 2] = float("inf")
    flat[flat.numel() // 3] = float("nan")
    q, s = stablekernels.dynamic_scaled_fp8_quant(x)
    q_ref, s_ref = dynamic_scaled_fp8_quant_ref(x)
    assert s.item() == torch.tensor(1000.0 / 448, dtype=torch.float32).item()
    torch.testing.assert_close(s, s_ref, atol=0, rtol=0)
    assert_bits_equal(q, q_ref)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("ub", [None, 3.0])
def test_per_token(
    device: str, dtype: torch.dtype, shape: tuple[int, ...], layout: str, ub: float | None
) -> None:
    x = make_input(shape, layout, dtype, device, seed=3)
    rows = x.numel() // shape[-1]
    scale_ub = None if ub is None else torch.tensor([ub], device=device)
    out = nan_fp8(shape, device, "row_strided" if layout == "row_strided" else "contiguous")
    scale = torch.full((rows, 1), float("nan"), device=device)
    OPS.dynamic_per_token_scaled_fp8_quant(out, x, scale, scale_ub)
    q_ref, s_ref = dynamic_per_token_scaled_fp8_quant_ref(x, scale_ub)
    torch.testing.assert_close(scale, s_ref, atol=0, rtol=0)
    assert_bits_equal(out, q_ref)
    if ub is not None:
        assert (scale <= ub / 448).all()
        # rows whose amax is above the bound saturate
        assert (bits(out) & 0x7F == 0x7E).any()
    q, s = stablekernels.dynamic_per_token_scaled_fp8_quant(x, scale_ub)
    assert s.shape == (rows, 1) and s.dtype == torch.float32
    torch.testing.assert_close(s, s_ref, atol=0, rtol=0)
    assert_bits_equal(q, q_ref)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape",
    [(64, 4096), (65, 4096), (65, 8192), (65, 12288), (64, 16384), (65, 16384), (65, 16400)],
    ids=str,
)
@pytest.mark.parametrize("layout", ["contiguous", "noncollapsible"])
def test_per_token_either_side_of_the_decode_rows(
    device: str, dtype: torch.dtype, shape: tuple[int, ...], layout: str
) -> None:
    # CUDA: up to 64 rows take blocks of up to 512 threads from 2 vectors a thread; more rows
    # 128 threads while up to 8 vectors a thread hold the row (16-bit rows of 4096: 128 x 4,
    # 8192: 128 x 8), then up to 256 threads (12288: 192 x 8, 16384: 256 x 8), then the
    # generic kernel (16400); rows of one stride take the 8-byte row parameters.
    if layout == "noncollapsible":
        shape = (8, 8, shape[1]) if shape[0] == 64 else (5, 13, shape[1])
    x = make_input(shape, layout, dtype, device, seed=12)
    q, s = stablekernels.dynamic_per_token_scaled_fp8_quant(x)
    q_ref, s_ref = dynamic_per_token_scaled_fp8_quant_ref(x)
    torch.testing.assert_close(s, s_ref, atol=0, rtol=0)
    assert_bits_equal(q, q_ref)


@pytest.mark.parametrize("device", DEVICES)
def test_per_token_strided_scale(device: str) -> None:
    x = make_input((6, 40), "contiguous", torch.bfloat16, device, seed=4)
    wide = torch.full((6, 3), float("nan"), device=device)
    scale = wide[:, 1:2]  # [6, 1] with row stride 3
    out = nan_fp8((6, 40), device)
    OPS.dynamic_per_token_scaled_fp8_quant(out, x, scale, None)
    q_ref, s_ref = dynamic_per_token_scaled_fp8_quant_ref(x)
    torch.testing.assert_close(scale, s_ref, atol=0, rtol=0)
    assert wide[:, 0].isnan().all() and wide[:, 2].isnan().all()
    assert_bits_equal(out, q_ref)


# --- every fp8 value and rounding boundary -----------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_rounding_every_boundary(device: str) -> None:
    # Every finite fp8 value, the midpoints between neighbours (ties: round to even) and
    # values just off the midpoints, both signs, up to the saturation region.
    vals = torch.arange(256, dtype=torch.uint8).view(FP8).float()
    vals = vals[vals.isfinite()].unique().sort().values
    mids = (vals[1:] + vals[:-1]) / 2
    eps = mids.abs() * 2**-20 + 2**-40
    x = torch.cat([vals, mids, mids + eps, mids - eps, torch.tensor([448.0, 463.9, 464.0, 500.0])])
    x = torch.cat([x, -x]).reshape(1, -1).to(device)
    one = torch.ones(1, device=device)
    out = stablekernels.static_scaled_fp8_quant(x, one)
    assert_bits_equal(out, static_scaled_fp8_quant_ref(x, one))
    # torch's own conversion (round to nearest even) agrees after clamping
    assert_bits_equal(out, x.clamp(-448, 448).to(FP8))


# --- special values ---------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf(device: str, dtype: torch.dtype) -> None:
    x = torch.tensor(
        [[1.0, float("nan"), -2.0, float("inf"), float("-inf"), -float("nan"), 0.5, -0.0]],
        dtype=dtype,
        device=device,
    )
    # per token: NaN and inf do not move the scale (amax 2 -> scale 2/448)
    q, s = stablekernels.dynamic_per_token_scaled_fp8_quant(x)
    assert s.item() == torch.tensor(2.0 / 448, dtype=torch.float32).item()
    b = bits(q)[0].tolist()
    assert b[1] == FP8_NAN_BITS and b[5] == FP8_NAN_BITS  # NaN of either sign -> 0x7F
    assert b[3] == 0x7E and b[4] == 0xFE  # +-inf saturate to +-448
    assert b[2] == 0xFE  # -amax -> -448
    assert b[7] == 0x80  # -0 keeps its sign
    assert_bits_equal(q, dynamic_per_token_scaled_fp8_quant_ref(x)[0])
    # per tensor: the same rules
    q, s = stablekernels.dynamic_scaled_fp8_quant(x)
    assert s.item() == torch.tensor(2.0 / 448, dtype=torch.float32).item()
    assert bits(q)[0].tolist() == b
    # static: inf / scale saturates, NaN stays NaN
    q = stablekernels.static_scaled_fp8_quant(x, torch.tensor([1.0], device=device))
    assert bits(q)[0].tolist() == [0x38, 0x7F, 0xC0, 0x7E, 0xFE, 0x7F, 0x30, 0x80]
    # a row of only NaN / inf gets the minimum scale
    y = torch.tensor([[float("nan"), float("inf")]], dtype=dtype, device=device)
    q, s = stablekernels.dynamic_per_token_scaled_fp8_quant(y)
    assert s.item() == torch.tensor(MIN_SCALE, dtype=torch.float32).item()
    assert bits(q)[0].tolist() == [0x7F, 0x7E]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_get_min_scale(device: str, dtype: torch.dtype) -> None:
    x = make_input((4, 300), "contiguous", dtype, device, seed=5)
    x[1] = 0
    x[3] = 0
    q, s = stablekernels.dynamic_per_token_scaled_fp8_quant(x)
    min_scale = torch.tensor(MIN_SCALE, dtype=torch.float32).item()
    assert s[1].item() == min_scale and s[3].item() == min_scale
    assert (s[0] > min_scale).all() and (s[2] > min_scale).all()
    assert (bits(q)[1] == 0).all() and (bits(q)[3] == 0).all()
    q, s = stablekernels.dynamic_scaled_fp8_quant(torch.zeros_like(x))
    assert s.item() == min_scale and s.item() > 0
    assert (bits(q) == 0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_scale_ub_clamps(device: str) -> None:
    x = torch.tensor([[1.0, -100.0, 3.0], [0.5, 0.25, -1.0]], device=device)
    ub = torch.tensor([10.0], device=device)
    q, s = stablekernels.dynamic_per_token_scaled_fp8_quant(x, ub)
    f32 = torch.float32
    assert s[0].item() == torch.tensor(10.0 / 448, dtype=f32).item()  # clamped amax
    assert s[1].item() == torch.tensor(1.0 / 448, dtype=f32).item()  # below the bound
    assert bits(q)[0, 1].item() == 0xFE  # -100 / (10/448) saturates at -448
    assert bits(q)[1, 2].item() == 0xFE  # the row's own amax maps to -448 exactly
    # a NaN bound is ignored
    _, s2 = stablekernels.dynamic_per_token_scaled_fp8_quant(
        x, torch.tensor([float("nan")], device=device)
    )
    assert s2[0].item() == torch.tensor(100.0 / 448, dtype=f32).item()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty(device: str, dtype: torch.dtype) -> None:
    x = torch.empty((0, 64), dtype=dtype, device=device)
    q, s = stablekernels.dynamic_scaled_fp8_quant(x)
    assert q.shape == (0, 64) and s.item() == torch.tensor(MIN_SCALE).item()
    q, s = stablekernels.dynamic_per_token_scaled_fp8_quant(x)
    assert q.shape == (0, 64) and s.shape == (0, 1)
    assert stablekernels.static_scaled_fp8_quant(x, torch.ones(1, device=device)).shape == (0, 64)
    # rows of length 0: each gets the minimum scale
    q, s = stablekernels.dynamic_per_token_scaled_fp8_quant(torch.empty((3, 0), device=device))
    assert s.shape == (3, 1) and (s == torch.tensor(MIN_SCALE)).all()


@pytest.mark.parametrize("device", DEVICES)
def test_large_tensor_amax(device: str) -> None:
    # Many blocks contribute to the per-tensor amax; the maximum sits in the last one.
    x = torch.randn(2048, 4096, device=device, dtype=torch.bfloat16)
    x[-1, -1] = 1000.0
    q, s = stablekernels.dynamic_scaled_fp8_quant(x)
    assert s.item() == torch.tensor(1000.0 / 448, dtype=torch.float32).item()
    q_ref, s_ref = dynamic_scaled_fp8_quant_ref(x)
    torch.testing.assert_close(s, s_ref, atol=0, rtol=0)
    assert_bits_equal(q, q_ref)


# --- CPU == CUDA --------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 111), (16, 4096), (3, 20000)], ids=str)
def test_cpu_matches_cuda(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    x = make_input(shape, "contiguous", dtype, "cpu", seed=6, scale=50.0)
    x[0, :4] = torch.tensor([float("nan"), float("inf"), float("-inf"), 0.0], dtype=dtype)
    x[1] = 0
    xc = x.cuda()
    for cpu_fn, cuda_fn in [
        (
            lambda: stablekernels.static_scaled_fp8_quant(x, torch.tensor([0.07])),
            lambda: stablekernels.static_scaled_fp8_quant(xc, torch.tensor([0.07], device="cuda")),
        ),
        (
            lambda: stablekernels.dynamic_scaled_fp8_quant(x),
            lambda: stablekernels.dynamic_scaled_fp8_quant(xc),
        ),
        (
            lambda: stablekernels.dynamic_per_token_scaled_fp8_quant(x),
            lambda: stablekernels.dynamic_per_token_scaled_fp8_quant(xc),
        ),
        (
            lambda: stablekernels.dynamic_per_token_scaled_fp8_quant(x, torch.tensor([20.0])),
            lambda: stablekernels.dynamic_per_token_scaled_fp8_quant(
                xc, torch.tensor([20.0], device="cuda")
            ),
        ),
    ]:
        a, b = cpu_fn(), cuda_fn()
        if isinstance(a, tuple):
            torch.testing.assert_close(a[1], b[1].cpu(), atol=0, rtol=0)
            a, b = a[0], b[0]
        assert_bits_equal(b, a)


def _float32_patterns(start: int, stop: int, step: int) -> torch.Tensor:
    """float32 values whose bit patterns are range(start, stop, step) (NaNs and infs included)."""
    b = torch.arange(start, stop, step, dtype=torch.int64)
    b = torch.where(b >= 2**31, b - 2**32, b)
    return b.to(torch.int32).view(torch.float32)


@pytest.mark.cuda
def test_cpu_matches_cuda_bit_patterns() -> None:
    # Every 251st float32 bit pattern, and every 17th one in the magnitudes fp8 resolves
    # (2^-12 .. 2^9, both signs): the CUDA conversion (the cvt.rn.satfinite instruction on
    # sm_89+) against the CPU one, through the static op with scale 1.
    lo, hi = 0x39800000, 0x44000000
    x = torch.cat(
        [
            _float32_patterns(0, 2**32, 251),
            _float32_patterns(lo, hi, 17),
            _float32_patterns(lo | 2**31, hi | 2**31, 17),
        ]
    ).reshape(1, -1)
    one = torch.ones(1)
    cpu = stablekernels.static_scaled_fp8_quant(x, one)
    cuda = stablekernels.static_scaled_fp8_quant(x.cuda(), one.cuda())
    assert_bits_equal(cuda, cpu)
    assert (bits(cpu) == FP8_NAN_BITS).any() and (bits(cpu) == 0xFE).any()


@pytest.mark.cuda
@pytest.mark.parametrize(
    "scale", [3.0, 0.1, 7.3 / 448, 1 / (448 * 512), 448 / 3, 0.99999994, 1e-30, 1e30]
)
def test_cpu_matches_cuda_division_by_scale(scale: float) -> None:
    # The CUDA kernels divide by the scale through its reciprocal and FMA corrections
    # (divisors in [2^-64, 2^64]; a division outside): inputs whose quotients land on, and
    # a few float32 ulps around, every fp8 value and every rounding midpoint between two,
    # where an error in the last bit of the quotient would change the fp8 result.
    vals = torch.arange(256, dtype=torch.uint8).view(FP8).float()
    vals = vals[vals.isfinite()].unique().sort().values
    q = torch.cat([vals, (vals[1:] + vals[:-1]) / 2, torch.tensor([463.9, 464.0, 500.0])])
    x = (q.double() * scale).float().abs()
    x_bits = x.view(torch.int32)
    x = torch.cat([(x_bits + d).view(torch.float32) for d in range(-3, 4)])
    x = torch.cat([x, -x]).reshape(1, -1)
    s = torch.tensor([scale], dtype=torch.float32)
    cpu = stablekernels.static_scaled_fp8_quant(x, s)
    assert_bits_equal(stablekernels.static_scaled_fp8_quant(x.cuda(), s.cuda()), cpu)
    # the per-token kernel divides the same way, by the scale it computes from each row
    rows = torch.cat([x, x.abs(), x * 0.37, x * 5.1], dim=0)
    out_cpu, scale_cpu = stablekernels.dynamic_per_token_scaled_fp8_quant(rows, None)
    out_cuda, scale_cuda = stablekernels.dynamic_per_token_scaled_fp8_quant(rows.cuda(), None)
    assert torch.equal(scale_cuda.cpu(), scale_cpu)
    assert_bits_equal(out_cuda, out_cpu)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "scale", [2.0**-40, 2.0**-34, 1e-3, 0.75, 31.9, 63.99, 64.0, 1000.0, 2.0**63, 2.0**65]
)
def test_every_16bit_input_cuda_matches_cpu(dtype: torch.dtype, scale: float) -> None:
    # Every 16-bit bit pattern (signed zeros, subnormals, +-inf, NaNs) through the static op:
    # the CUDA kernels clamp 16-bit pairs in their own type and divide by the reciprocal with
    # FMA corrections (float16: for scales below 64, where float16 holds the clamp bound, its
    # smallest subnormal standing in for smaller bounds; the IEEE division from 64 and outside
    # [2^-64, 2^64]); the CPU divides each element in float32. Both give the same fp8 bits.
    x = torch.arange(-(2**15), 2**15, dtype=torch.int16).view(dtype).reshape(2, -1)
    s = torch.tensor([scale], dtype=torch.float32)
    cpu = stablekernels.static_scaled_fp8_quant(x, s)
    assert_bits_equal(stablekernels.static_scaled_fp8_quant(x.cuda(), s.cuda()), cpu)
    # per token, each row's scale from its data: all patterns (float16: amax 65504, scale
    # above 64), and clamped to +-20000 (scale 44.6: the pair clamp, with NaNs in the row);
    # rows of 32768 (the two-pass kernel) and of 8192 (the register kernel)
    rows = torch.cat([x, x.clamp(-20000, 20000), x * scale])
    for r in (rows, rows.reshape(-1, 8192)):
        out_cpu, scale_cpu = stablekernels.dynamic_per_token_scaled_fp8_quant(r, None)
        out_cuda, scale_cuda = stablekernels.dynamic_per_token_scaled_fp8_quant(r.cuda(), None)
        assert torch.equal(scale_cuda.cpu(), scale_cpu)
        assert_bits_equal(out_cuda, out_cpu)


@pytest.mark.cuda
def test_runs_on_current_stream() -> None:
    x = torch.randn(64, 4096, device="cuda")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        q, scale = stablekernels.dynamic_scaled_fp8_quant(x)
    s.synchronize()
    q_ref, s_ref = dynamic_scaled_fp8_quant_ref(x)
    torch.testing.assert_close(scale, s_ref, atol=0, rtol=0)
    assert_bits_equal(q, q_ref)


# Inputs past one cluster take one cooperative kernel up to what the chip holds (CUDA; the
# grid kernel below), and two kernels past that: the amax, then the conversion, which on
# sm_90 and newer is launched programmatically (it may start before the amax kernel ends, and
# waits for it before reading the scale). Call after call on one scale buffer, each input
# written by the kernel just before and each with its own amax (down as well as up): a
# conversion that read the zeroed buffer or the previous call's scale (or a grid barrier that
# let a block through before every block's maximum was in) gives other bits.
TWO_PASS_SHAPES = [(64, 8192), (1000, 4104), (4096, 4096)]
PEAKS = [300.0, 0.25, 9216.0, 1.5]  # exact in bf16


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("shape", TWO_PASS_SHAPES, ids=str)
def test_dynamic_two_pass_call_after_call(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    base = make_input(shape, "contiguous", dtype, "cuda", seed=21, scale=0.01)
    out = torch.empty(shape, dtype=FP8, device="cuda")
    scale = torch.empty(1, device="cuda")
    inputs, results = [], []
    for k, peak in enumerate(PEAKS):
        x = base * (k + 1)
        x.view(-1)[(k * 7919) % x.numel()] = -peak
        OPS.dynamic_scaled_fp8_quant(out, x, scale)
        inputs.append(x)
        results.append((out.clone(), scale.clone()))
    for x, peak, (q, s) in zip(inputs, PEAKS, results, strict=True):
        q_ref, s_ref = dynamic_scaled_fp8_quant_ref(x)
        assert s.item() == torch.tensor(peak / 448, dtype=torch.float32).item()
        torch.testing.assert_close(s, s_ref, atol=0, rtol=0)
        assert_bits_equal(q, q_ref)


def slab_elements(dtype: torch.dtype) -> int:
    """Elements of one slab of the grid kernel: a 16-byte vector for each of its threads
    (1024 a SM)."""
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    return sms * 1024 * (16 // torch.empty((), dtype=dtype).element_size())


def past_the_grid_kernel_rows(hidden: int, dtype: torch.dtype) -> int:
    """Rows of `hidden` past what the grid kernel takes: its registers and shared memory hold
    at most 8 + 14 slabs, and it reads through L2 up to twice the L2 size."""
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    size = torch.empty((), dtype=dtype).element_size()
    return (2 * l2 + 23 * slab_elements(dtype) * size) // (hidden * size) + 7


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_dynamic_past_what_the_chip_holds(dtype: torch.dtype) -> None:
    # Past the grid kernel's sizes the amax kernel keeps its capped grid and the conversion
    # takes one trip (4 vectors) a thread, walking from the end; the row length leaves the
    # last trip partial. Twice on one scale buffer, the second amax smaller than the first.
    hidden = 4104
    rows = past_the_grid_kernel_rows(hidden, dtype)
    base = make_input((rows, hidden), "contiguous", dtype, "cuda", seed=23, scale=0.01)
    out = nan_fp8((rows, hidden), "cuda")
    scale = torch.empty(1, device="cuda")
    for k, peak in enumerate([300.0, 0.25]):
        x = base * (k + 1)
        x.view(-1)[(k * 7919) % x.numel()] = -peak
        OPS.dynamic_scaled_fp8_quant(out, x, scale)
        q_ref, s_ref = dynamic_scaled_fp8_quant_ref(x)
        assert scale.item() == torch.tensor(peak / 448, dtype=torch.float32).item()
        torch.testing.assert_close(scale, s_ref, atol=0, rtol=0)
        assert_bits_equal(out, q_ref)


# The grid kernel (dense inputs of 16-byte vectors past one cluster): a thread's vectors of
# the first 8 slabs in registers, of the next up to 14 (as the device's shared memory allows)
# in shared memory, of the rest read for the amax and again after the grid barrier. Input
# sizes in slabs end the input in each part (and part-way through a slab); the maximum sits
# in each part in turn, with an inf and a NaN elsewhere (the block that holds the inf takes
# its maximum again with inf ignored). The float16 peak is past 28672, whose scale takes the
# plain division.
GRID_SLABS = [0.6, 8.0, 12.5, 22.0, 30.3, 41.7]
GRID_PEAKS = {torch.bfloat16: 300.0, torch.float16: 30000.0, torch.float32: 1.0e6}


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slabs", GRID_SLABS)
def test_dynamic_grid_kernel_parts(dtype: torch.dtype, slabs: float) -> None:
    slab = slab_elements(dtype)
    n = int(slabs * slab) // 64 * 64 + 24  # whole 16-byte vectors, the last slab partial
    base = make_input((n // 8, 8), "contiguous", dtype, "cuda", seed=24, scale=0.01)
    out = torch.empty_like(base, dtype=FP8)
    scale = torch.empty(1, device="cuda")
    peak = GRID_PEAKS[dtype]
    # the maximum in slab 0 (registers), 9.5 (shared memory), 23.5 (the rest), the last one
    spots = [s for s in (0.0, 9.5, 23.5) if s < slabs] + [slabs - 0.01]
    for k, spot in enumerate(spots):
        x = base.clone()
        flat = x.view(-1)
        flat[(n // 2 + 5 * slab // 3) % n] = float("inf")
        flat[(n // 3 + 7) % n] = float("nan")
        flat[min(int(spot * slab) + 3, n - 1)] = -peak if k % 2 else peak
        OPS.dynamic_scaled_fp8_quant(out, x, scale)
        q_ref, s_ref = dynamic_scaled_fp8_quant_ref(x)
        assert scale.item() == torch.tensor(peak / 448, dtype=torch.float32).item(), spot
        torch.testing.assert_close(scale, s_ref, atol=0, rtol=0)
        assert_bits_equal(out, q_ref)


def cuda_kernels_run(fn) -> list[str]:
    """The names of the CUDA kernels that fn() launches (torch's profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]


# Which path a size takes: the tests above pass on either path, so that the grid kernel is
# taken where it should be (every GPU this wheel runs on can launch it) is checked here.
@pytest.mark.cuda
@pytest.mark.parametrize("path", ["grid", "two kernels"])
def test_dynamic_grid_kernel_is_taken(path: str) -> None:
    rows = 2048 if path == "grid" else past_the_grid_kernel_rows(4096, torch.bfloat16)
    x = make_input((rows, 4096), "contiguous", torch.bfloat16, "cuda", seed=25)
    names = cuda_kernels_run(lambda: stablekernels.dynamic_scaled_fp8_quant(x))
    grid = [n for n in names if "dynamic_quant_grid_kernel" in n]
    amax = [n for n in names if "tensor_amax_kernel" in n]
    assert (len(grid), len(amax)) == ((1, 0) if path == "grid" else (0, 1)), names


# The same in a CUDA graph (programmatic launches become graph edges of their own kind, and
# the grid kernel's cooperative launch a node of its own kind): one capture, replayed on new
# inputs; one shape per path (one cluster, the grid kernel, the two kernels past it).
@pytest.mark.cuda
@pytest.mark.parametrize("path", ["cluster", "grid", "two kernels"])
def test_dynamic_in_a_cuda_graph(path: str) -> None:
    shapes = {"cluster": (8, 4096), "grid": (2048, 4096)}
    shape = shapes.get(path) or (past_the_grid_kernel_rows(4096, torch.bfloat16), 4096)
    x = make_input(shape, "contiguous", torch.bfloat16, "cuda", seed=22)
    out = torch.empty(shape, dtype=FP8, device="cuda")
    scale = torch.empty(1, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        OPS.dynamic_scaled_fp8_quant(out, x, scale)  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        OPS.dynamic_scaled_fp8_quant(out, x, scale)
    for k, peak in enumerate(PEAKS):
        x.copy_(make_input(shape, "contiguous", torch.bfloat16, "cuda", seed=30 + k, scale=0.01))
        x.view(-1)[-1 - k] = peak
        graph.replay()
        q_ref, s_ref = dynamic_scaled_fp8_quant_ref(x)
        assert scale.item() == torch.tensor(peak / 448, dtype=torch.float32).item()
        torch.testing.assert_close(scale, s_ref, atol=0, rtol=0)
        assert_bits_equal(out, q_ref)


# --- torch.compile ------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_compile(device: str) -> None:
    torch._dynamo.reset()

    def f(x: torch.Tensor, ub: torch.Tensor) -> torch.Tensor:
        q1, s1 = stablekernels.dynamic_scaled_fp8_quant(x)
        q2, s2 = stablekernels.dynamic_per_token_scaled_fp8_quant(x * 2, ub)
        q3 = stablekernels.static_scaled_fp8_quant(x, s1)
        return q1.float() * s1 + q2.float() * s2 + q3.float()

    x = make_input((5, 96), "contiguous", torch.bfloat16, device, seed=7)
    ub = torch.tensor([4.0], device=device)
    compiled = torch.compile(f, fullgraph=True, backend="inductor")
    torch.testing.assert_close(compiled(x, ub), f(x, ub), atol=0, rtol=0)


# --- bad inputs ---------------------------------------------------------------------


def bad_cases(device: str):
    x = torch.randn(4, 64, device=device)
    out = torch.empty(4, 64, device=device, dtype=FP8)
    one = torch.ones(1, device=device)
    rows = torch.empty(4, 1, device=device)
    st, dyn, tok = (
        OPS.static_scaled_fp8_quant,
        OPS.dynamic_scaled_fp8_quant,
        OPS.dynamic_per_token_scaled_fp8_quant,
    )
    for name, op, extra in [
        ("static", st, (one,)),
        ("dynamic", dyn, (one,)),
        ("per_token", tok, (rows, None)),
    ]:
        yield (
            f"{name} result float32",
            lambda op=op, extra=extra: op(torch.empty_like(x), x, *extra),
            r"'result' must have dtype float8_e4m3fn, got float32",
        )
        yield (
            f"{name} result float8_e5m2",
            lambda op=op, extra=extra: op(out.view(torch.float8_e5m2), x, *extra),
            r"'result' must have dtype float8_e4m3fn, got float8_e5m2",
        )
        yield (
            f"{name} int input",
            lambda op=op, extra=extra: op(out, x.int(), *extra),
            r"'input' must have dtype float32, float16 or bfloat16, got int32",
        )
        yield (
            f"{name} result shape",
            lambda op=op, extra=extra: op(out[:, :63], x, *extra),
            r"'result' must have shape \[4, 64\] \(the shape of 'input'\), got \[4, 63\]",
        )
        yield (
            f"{name} input last dim strided",
            lambda op=op, extra=extra: op(out, torch.randn(64, 4, device=device).t(), *extra),
            r"'input' must be contiguous in its last dimension",
        )
        yield (
            f"{name} 0-dim input",
            lambda op=op, extra=extra: op(out[0, 0], x[0, 0], *extra),
            r"'input' must have at least 1 dimension",
        )
    for name, op in [("static", st), ("dynamic", dyn)]:
        yield (
            f"{name} scale float16",
            lambda op=op: op(out, x, one.half()),
            r"'scale' must have dtype float32, got float16",
        )
        yield (
            f"{name} scale numel",
            lambda op=op: op(out, x, torch.ones(2, device=device)),
            r"'scale' must have exactly one element \(a per-tensor scale\), got shape \[2\]",
        )
    yield (
        "per_token scale shape",
        lambda: tok(out, x, torch.empty(4, device=device), None),
        r"'scale' must have shape \[4, 1\] \(\[num_tokens, 1\].*got \[4\]",
    )
    yield (
        "per_token scale rows",
        lambda: tok(out, x, torch.empty(5, 1, device=device), None),
        r"'scale' must have shape \[4, 1\]",
    )
    yield (
        "per_token scale dtype",
        lambda: tok(out, x, rows.double(), None),
        r"'scale' must have dtype float32, got float64",
    )
    yield (
        "per_token scale_ub dtype",
        lambda: tok(out, x, rows, one.bfloat16()),
        r"'scale_ub' must have dtype float32, got bfloat16",
    )
    yield (
        "per_token scale_ub shape",
        lambda: tok(out, x, rows, torch.ones(3, device=device)),
        r"'scale_ub' must have exactly one element \(a per-tensor scale\), got shape \[3\]",
    )


_BAD_IDS = [c[0] for c in bad_cases("cpu")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", _BAD_IDS)
def test_bad_input(device: str, case: str) -> None:
    fn, pattern = {c[0]: c[1:] for c in bad_cases(device)}[case]
    with pytest.raises(RuntimeError, match=pattern):
        fn()


@pytest.mark.cuda
def test_cpu_cuda_mix() -> None:
    x = torch.randn(4, 64, device="cuda")
    out = torch.empty(4, 64, device="cuda", dtype=FP8)
    with pytest.raises(
        RuntimeError, match=r"'scale' must be on cuda:0 \(the device of 'input'\), got cpu"
    ):
        OPS.static_scaled_fp8_quant(out, x, torch.ones(1))
    with pytest.raises(
        RuntimeError, match=r"'scale' must be on cuda:0 \(the device of 'input'\), got cpu"
    ):
        OPS.dynamic_scaled_fp8_quant(out, x, torch.ones(1))
    with pytest.raises(
        RuntimeError, match=r"'result' must be on cuda:0 \(the device of 'input'\), got cpu"
    ):
        OPS.dynamic_per_token_scaled_fp8_quant(out.cpu(), x, torch.empty(4, 1, device="cuda"), None)
    with pytest.raises(
        RuntimeError, match=r"'scale_ub' must be on cuda:0 \(the device of 'input'\), got cpu"
    ):
        OPS.dynamic_per_token_scaled_fp8_quant(
            out, x, torch.empty(4, 1, device="cuda"), torch.ones(1)
        )
    with pytest.raises(
        RuntimeError, match=r"'scale' must be on cpu \(the device of 'input'\), got cuda:0"
    ):
        OPS.static_scaled_fp8_quant(out.cpu(), x.cpu(), torch.ones(1, device="cuda"))
