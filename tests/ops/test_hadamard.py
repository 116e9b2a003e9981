# SPDX-License-Identifier: Apache-2.0
"""The hadamard family against its float64 reference: dtypes x devices x every size
n = 1 ... 32768 x layouts, in place and out of place (the input bit for bit unchanged out
of place), row counts around the kernels' block shapes, float32 intermediates, NaN and inf,
empty inputs, CPU == CUDA."""

from __future__ import annotations

import math

import pytest
import stablekernels
import torch
from helpers import DEVICES, LAYOUTS, make_tensor
from stablekernels.ops import REGISTRY
from stablekernels.ops.hadamard import hadacore_transform_ref, sylvester_matrix

OP = torch.ops.stablekernels.hadacore_transform
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SIZES = [1 << k for k in range(16)]  # 1 ... 32768: every size the op accepts
SPEC = REGISTRY["hadacore_transform"]


def _make(shape: tuple[int, ...], layout: str, dtype: torch.dtype, device: str, seed: int = 0):
    if layout == "wide_rows":  # rows apart by a multiple of 16 bytes: CUDA keeps vector access
        g = torch.Generator().manual_seed(seed)
        wide = torch.randn((*shape[:-1], 2 * shape[-1] + 64), generator=g).to(dtype).to(device)
        return wide[..., 64 : 64 + shape[-1]]
    return make_tensor(shape, layout, dtype, device, seed=seed)


def _check(x: torch.Tensor) -> None:
    """Out of place leaves `x` bit for bit and matches the reference; then in place on `x`
    (same layout) gives the same bits and returns `x` itself."""
    saved = x.clone()
    y = OP(x, False)
    assert torch.equal(x, saved), "inplace=False modified its input"
    assert y.shape == x.shape and y.dtype == x.dtype and y.is_contiguous()
    assert y.data_ptr() != x.data_ptr() or x.numel() == 0
    torch.testing.assert_close(y, hadacore_transform_ref(saved), **SPEC.tol(x.dtype))
    torch.testing.assert_close(stablekernels.hadacore_transform(x), y, atol=0, rtol=0)
    assert OP(x, True) is x
    torch.testing.assert_close(x, y, atol=0, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("layout", [*LAYOUTS, "wide_rows"])
def test_hadacore_transform(device: str, dtype: torch.dtype, n: int, layout: str) -> None:
    _check(_make((2, 3, n), layout, dtype, device, seed=n))


# (n, rows): every row count for the sizes whose rows share blocks; n = 16384 and 32768 (a
# whole block a row) up to 5 rows
_ROW_COUNT_CASES = [
    (n, rows) for n in (2, 8, 128, 256, 1024, 2048, 4096) for rows in (1, 3, 5, 33, 130)
] + [(n, rows) for n in (16384, 32768) for rows in (1, 3, 5)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("n", "rows"), _ROW_COUNT_CASES)
def test_hadacore_transform_row_counts(device: str, n: int, rows: int) -> None:
    # Short rows share blocks (the last block partly empty), n = 2048 puts two rows of two
    # warps in a block.
    _check(_make((rows, n), "contiguous", torch.bfloat16, device, seed=rows))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n", [8192, 16384, 32768])
@pytest.mark.parametrize("rows", [133, 265, 1000])
@pytest.mark.parametrize("layout", ["contiguous", "wide_rows"])
def test_hadacore_transform_rows_beyond_one_wave(
    dtype: torch.dtype, n: int, rows: int, layout: str
) -> None:
    # 16-bit rows from n = 8192 go, where the GPU's shared memory allows (H100/H200), to a
    # grid of resident blocks that loop over rows with the next one staged by cp.async (the
    # wide kernel at n = 32768 and 16384, 1 and 2 blocks per SM, and at 8192 past one row
    # an SM, 4 blocks per SM: each count here is past the 132 SMs of an H100 or H200): row
    # counts past one and two waves and many rows a block, out of place and in place, dense
    # and strided.
    _check(_make((rows, n), layout, dtype, "cuda", seed=rows))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("n", "rows_a_block"), [(1024, 4), (2048, 2), (4096, 1)])
@pytest.mark.parametrize("layout", ["contiguous", "wide_rows"])
def test_hadacore_transform_staged_short_rows_many_waves(
    dtype: torch.dtype, n: int, rows_a_block: int, layout: str
) -> None:
    # 16-bit rows of n = 1024-4096 also take the staged grid where the GPU allows: blocks of
    # `rows_a_block` rows, resident ones looping over the rows. Past twice as many rows as
    # the most blocks an SM could hold (16 of 128 threads) would cover, and not a whole
    # number of blocks (the last block's rows partly there).
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rows = 2 * sms * 16 * rows_a_block + 3
    _check(_make((rows, n), layout, dtype, "cuda", seed=n))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("n", "rows_a_block"), [(1024, 4), (2048, 2), (4096, 1)])
@pytest.mark.parametrize("sms_times", [1, 3, 24])
@pytest.mark.parametrize("layout", ["contiguous", "wide_rows", "two_row_dims"])
def test_hadacore_transform_tensor_core_rows(
    dtype: torch.dtype, n: int, rows_a_block: int, sms_times: int, layout: str
) -> None:
    # 16-bit rows of n = 1024-4096 past one row an SM and within four waves of resident
    # blocks (8 of 128 threads an SM on an H100 or H200) whose rows collapse to one dim
    # take the tensor-core kernel: just past the SMs, a few rows a block and the last wave
    # partly there. Leading dims that do not collapse ("two_row_dims": a slice of the
    # middle dim) take the staged xpose kernel at the same counts.
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rows = sms_times * sms * rows_a_block + 1
    if layout == "two_row_dims":
        half = rows // 2 + 1
        g = torch.Generator().manual_seed(sms_times)
        x = torch.randn((2, half + 3, n), generator=g).to(dtype).to("cuda")[:, :half]
        _check(x)
    else:
        _check(_make((rows, n), layout, dtype, "cuda", seed=sms_times))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n", [1024, 4096])
def test_tensor_core_rows_nan_inf_and_float32_sums(dtype: torch.dtype, n: int) -> None:
    # The tensor-core kernel's float32 sums: a row of one value whose sums pass float16's
    # largest value, NaN and infinities (an inf and a -inf in one group of 16: each output
    # of that row is NaN or infinite, as the reference's), on a row count that kernel takes.
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    rows = 2 * sms
    x = torch.randn(rows, n).to(dtype)
    x[0] = 60000.0 / math.sqrt(n)
    x[1, 3] = float("nan")
    x[2, 5] = float("inf")
    x[3, 0] = float("inf")
    x[3, 1] = float("-inf")
    x = x.to("cuda")
    y = OP(x, False)
    torch.testing.assert_close(y, hadacore_transform_ref(x), equal_nan=True, **SPEC.tol(dtype))
    assert torch.isfinite(y[0]).all() and y[1].isnan().all() and y[2].isinf().all()
    assert not torch.isfinite(y[3]).any() and y[3].isnan().any() and torch.isfinite(y[4:]).all()


@pytest.mark.parametrize("n", [1, 2, 4, 16, 64, 256, 1024])
def test_reference_is_the_sylvester_matrix(n: int) -> None:
    # the reference's butterfly stages against the definition, x @ H_n / sqrt(n)
    x = torch.randn(5, n, dtype=torch.float64)
    h = sylvester_matrix(n).double()
    assert torch.equal(h[: n // 2, : n // 2], h[n // 2 :, : n // 2]) or n == 1
    torch.testing.assert_close(hadacore_transform_ref(x), x @ h / math.sqrt(n))
    # the native implementation too (both of its paths)
    torch.testing.assert_close(
        SPEC.native(x.float()).double(), x @ h / math.sqrt(n), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [4, 512, 4096])
def test_native_matches_reference(device: str, n: int) -> None:
    x = torch.randn(3, n, device=device)
    torch.testing.assert_close(SPEC.native(x), hadacore_transform_ref(x), **SPEC.tol(x.dtype))
    z = x.clone()
    assert SPEC.native(z, True) is z
    torch.testing.assert_close(z, hadacore_transform_ref(x), **SPEC.tol(x.dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [1, 16, 2048, 32768])
def test_hadacore_transform_is_its_own_inverse(device: str, n: int) -> None:
    x = torch.randn(4, n, device=device)
    torch.testing.assert_close(OP(OP(x, False), False), x, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [256, 4096])
def test_float32_intermediates(device: str, n: int) -> None:
    # Rows of equal values: the first sum reaches n * c, past float16's largest value,
    # while the normalized result c * sqrt(n) fits.
    c = 60000.0 / math.sqrt(n)
    x = torch.full((3, n), c, dtype=torch.float16, device=device)
    y = OP(x, False)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, hadacore_transform_ref(x), **SPEC.tol(torch.float16))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [8, 1024, 8192])
def test_nan_and_inf(device: str, dtype: torch.dtype, n: int) -> None:
    x = torch.randn(4, n).to(dtype)
    x[1, 3] = float("nan")
    x[2, 5] = float("inf")
    x[3, 0] = float("inf")
    x[3, 1] = float("-inf")
    x = x.to(device)
    y = OP(x, False)
    torch.testing.assert_close(y, hadacore_transform_ref(x), equal_nan=True, **SPEC.tol(dtype))
    assert y[1].isnan().all() and y[2].isinf().all() and torch.isfinite(y[0]).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("inplace", [False, True])
def test_empty_rows(device: str, inplace: bool) -> None:
    x = torch.empty(0, 3, 64, device=device)
    y = OP(x, inplace)
    assert y.shape == x.shape
    assert (y is x) == inplace


@pytest.mark.parametrize("device", DEVICES)
def test_expanded_rows_out_of_place(device: str) -> None:
    # rows sharing memory are fine to read; only writing into them is refused
    row = torch.randn(1, 256, device=device)
    x = row.expand(5, 256)
    y = OP(x, False)
    torch.testing.assert_close(y, hadacore_transform_ref(x), **SPEC.tol(torch.float32))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_hadacore_transform_cpu_matches_cuda(dtype: torch.dtype, n: int) -> None:
    x = torch.randn(7, n).to(dtype)
    cpu = OP(x, False)
    cuda = OP(x.cuda(), False).cpu()
    # the same float32 math in a different order: at most one rounding apart
    torch.testing.assert_close(cuda, cpu, **SPEC.tol(dtype))


@pytest.mark.cuda
def test_hadacore_transform_cuda_large() -> None:
    # many rows of the largest size: every block loops over several rows
    x = torch.randn(2000, 32768, device="cuda", dtype=torch.bfloat16)
    saved = x.clone()
    y = OP(x, False)
    assert torch.equal(x, saved)
    torch.testing.assert_close(y, hadacore_transform_ref(saved), **SPEC.tol(torch.bfloat16))
    assert OP(x, True) is x
    assert torch.equal(x, y)


@pytest.mark.cuda
def test_hadacore_transform_cuda_stream() -> None:
    x = torch.randn(64, 4096, device="cuda")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        y = OP(x, False)
    s.synchronize()
    torch.testing.assert_close(y, hadacore_transform_ref(x), **SPEC.tol(torch.float32))
