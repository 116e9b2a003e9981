# SPDX-License-Identifier: Apache-2.0
"""Bad inputs raise RuntimeError with a message naming the argument and what was expected."""

from __future__ import annotations

import pytest
import torch
from helpers import DEVICES

N = 64  # hidden size used by the cases


def _t(shape, device, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float32).to(dtype=dtype, device=device)


def norm_cases(device: str):
    x = _t((4, N), device)
    w = _t((N,), device)
    out = torch.empty_like(x)
    rms = torch.ops.stablekernels.rms_norm
    fused = torch.ops.stablekernels.fused_add_rms_norm
    yield (
        "int input",
        lambda: rms(out, x.int(), w, 1e-6),
        r"'input' must have dtype float32, float16 or bfloat16, got int32",
    )
    yield (
        "int64 weight",
        lambda: rms(out, x, w.long(), 1e-6),
        r"'weight' must have dtype float32 \(the dtype of 'input'\), got int64",
    )
    yield (
        "dtype mix",
        lambda: rms(out, x, w.half(), 1e-6),
        r"'weight' must have dtype float32 \(the dtype of 'input'\), got float16",
    )
    yield (
        "result dtype",
        lambda: rms(out.bfloat16(), x, w, 1e-6),
        r"'result' must have dtype float32 \(the dtype of 'input'\), got bfloat16",
    )
    yield (
        "weight shape",
        lambda: rms(out, x, _t((N + 1,), device), 1e-6),
        r"'weight' must have shape \[64\]",
    )
    yield (
        "weight 2d",
        lambda: rms(out, x, _t((1, N), device), 1e-6),
        r"'weight' must have 1 dimension, got shape \[1, 64\]",
    )
    yield (
        "weight strided",
        lambda: rms(out, x, _t((2 * N,), device)[::2], 1e-6),
        r"'weight' must be contiguous",
    )
    yield (
        "result shape",
        lambda: rms(_t((4, N - 1), device), x, w, 1e-6),
        r"'result' must have shape \[4, 64\] \(the shape of 'input'\), got \[4, 63\]",
    )
    yield (
        "result rows",
        lambda: rms(_t((5, N), device), x, w, 1e-6),
        r"'result' must have shape \[4, 64\]",
    )
    yield (
        "last dim strided",
        lambda: rms(out, _t((N, 4), device).t(), w, 1e-6),
        r"'input' must be contiguous in its last dimension \(stride 1\), got strides \[1, 4\]",
    )
    yield (
        "result last dim strided",
        lambda: rms(_t((N, 4), device).t(), x, w, 1e-6),
        r"'result' must be contiguous in its last dimension",
    )
    yield (
        "0-dim input",
        lambda: rms(out, _t((), device), w, 1e-6),
        r"'input' must have at least 1 dimension",
    )
    yield (
        "negative eps",
        lambda: rms(out, x, w, -1.0),
        r"'epsilon' must be a finite number >= 0, got -1",
    )
    yield "nan eps", lambda: rms(out, x, w, float("nan")), r"'epsilon' must be a finite number >= 0"
    yield (
        "fused residual dtype",
        lambda: fused(x.clone(), x.half(), w, 1e-6),
        r"'residual' must have dtype float32 \(the dtype of 'input'\), got float16",
    )
    yield (
        "fused residual shape",
        lambda: fused(x.clone(), _t((3, N), device), w, 1e-6),
        r"'residual' must have shape \[4, 64\] \(the shape of 'input'\), got \[3, 64\]",
    )
    yield (
        "fused int",
        lambda: fused(x.int(), x.int(), w.int(), 1e-6),
        r"'input' must have dtype float32, float16 or bfloat16, got int32",
    )
    yield (
        "fused weight dtype",
        lambda: fused(x.clone(), x.clone(), w.bfloat16(), 1e-6),
        r"'weight' must have dtype float32 \(the dtype of 'input'\), got bfloat16",
    )


def act_cases(device: str):
    x = _t((4, 2 * N), device)
    out = _t((4, N), device)
    for name in ["silu_and_mul", "gelu_and_mul", "gelu_tanh_and_mul"]:
        op = getattr(torch.ops.stablekernels, name)
        yield (
            f"{name} int",
            lambda op=op: op(out.int(), x.int()),
            r"'input' must have dtype float32, float16 or bfloat16, got int32",
        )
        yield (
            f"{name} bool",
            lambda op=op: op(out, x.bool()),
            r"'input' must have dtype float32, float16 or bfloat16, got bool",
        )
        yield (
            f"{name} dtype mix",
            lambda op=op: op(out.half(), x),
            r"'result' must have dtype float32 \(the dtype of 'input'\), got float16",
        )
        yield (
            f"{name} odd",
            lambda op=op: op(out, _t((4, 2 * N + 1), device)),
            r"the last dim of 'input' must be even \(\[\.\.\., 2 \* d\]\), got shape \[4, 129\]",
        )
        yield (
            f"{name} result shape",
            lambda op=op: op(_t((4, 2 * N), device), x),
            r"'result' must have shape \[4, 64\] \(the shape of 'input' with the last dim halved\), got \[4, 128\]",
        )
        yield (
            f"{name} result rows",
            lambda op=op: op(_t((3, N), device), x),
            r"'result' must have shape \[4, 64\]",
        )
        yield (
            f"{name} strided last",
            lambda op=op: op(out, _t((2 * N, 4), device).t()),
            r"'input' must be contiguous in its last dimension",
        )
        yield (
            f"{name} 0-dim",
            lambda op=op: op(out, _t((), device)),
            r"'input' must have at least 1 dimension",
        )


def hadamard_cases(device: str):
    op = torch.ops.stablekernels.hadacore_transform
    x = _t((4, N), device)
    yield (
        "hadamard int x",
        lambda: op(x.int(), False),
        r"hadacore_transform: 'x' must have dtype float32, float16 or bfloat16, got int32",
    )
    yield (
        "hadamard float64 x",
        lambda: op(x.double(), True),
        r"'x' must have dtype float32, float16 or bfloat16, got float64",
    )
    for n in (3, 48, 1000):
        yield (
            f"hadamard n={n}",
            lambda n=n: op(_t((2, n), device), False),
            rf"the last dimension of 'x' must be a power of two between 1 and 32768, got {n} "
            rf"\(shape \[2, {n}\]\)",
        )
    yield (
        "hadamard n=0",
        lambda: op(_t((2, 0), device), False),
        r"the last dimension of 'x' must be a power of two between 1 and 32768, got 0",
    )
    yield (
        "hadamard n=65536",
        lambda: op(_t((1, 65536), device, torch.bfloat16), True),
        r"the last dimension of 'x' must be a power of two between 1 and 32768, got 65536",
    )
    yield (
        "hadamard strided last",
        lambda: op(_t((N, 4), device).t(), False),
        r"'x' must be contiguous in its last dimension \(stride 1\), got strides \[1, 4\]",
    )
    yield (
        "hadamard 0-dim",
        lambda: op(_t((), device), False),
        r"'x' must have at least 1 dimension, got shape \[\]",
    )
    yield (
        "hadamard in place on shared rows",
        lambda: op(_t((1, N), device).expand(3, N), True),
        r"with inplace=True, the rows of 'x' must not share memory, but dim 0 has size 3 and "
        r"stride 0",
    )


def _cases(device: str):
    return list(norm_cases(device)) + list(act_cases(device)) + list(hadamard_cases(device))


_CASE_IDS = [c[0] for c in _cases("cpu")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", _CASE_IDS)
def test_bad_input(device: str, case: str) -> None:
    fn, pattern = {c[0]: c[1:] for c in _cases(device)}[case]
    with pytest.raises(RuntimeError, match=pattern):
        fn()


@pytest.mark.cuda
def test_cpu_cuda_mix() -> None:
    x = _t((4, N), "cuda")
    w = _t((N,), "cpu")
    with pytest.raises(
        RuntimeError, match=r"'weight' must be on cuda:0 \(the device of 'input'\), got cpu"
    ):
        torch.ops.stablekernels.rms_norm(torch.empty_like(x), x, w, 1e-6)
    with pytest.raises(
        RuntimeError, match=r"'result' must be on cuda:0 \(the device of 'input'\), got cpu"
    ):
        torch.ops.stablekernels.rms_norm(torch.empty(4, N), x, w.cuda(), 1e-6)
    with pytest.raises(
        RuntimeError, match=r"'residual' must be on cuda:0 \(the device of 'input'\), got cpu"
    ):
        torch.ops.stablekernels.fused_add_rms_norm(x, x.cpu(), w.cuda(), 1e-6)
    with pytest.raises(
        RuntimeError, match=r"'result' must be on cuda:0 \(the device of 'input'\), got cpu"
    ):
        torch.ops.stablekernels.silu_and_mul(torch.empty(4, N // 2), x)
    with pytest.raises(
        RuntimeError, match=r"'result' must be on cpu \(the device of 'input'\), got cuda:0"
    ):
        torch.ops.stablekernels.silu_and_mul(torch.empty(4, N // 2, device="cuda"), x.cpu())


@pytest.mark.cuda
@pytest.mark.parametrize("op", ["rms_norm", "fused_add_rms_norm", "dynamic_per_token"])
def test_cuda_row_longer_than_the_kernels_support(op: str) -> None:
    # Rows over 2^30 elements are refused before any launch (the kernels index within a
    # row with int). Uninitialized memory: nothing is read.
    n = (1 << 30) + 8
    x = torch.empty((1, n), dtype=torch.bfloat16, device="cuda")
    expected = (
        r"the last dimension \(1073741832\) is larger than the CUDA kernels support \(2\^30\)"
    )
    with pytest.raises(RuntimeError, match=expected):
        if op == "dynamic_per_token":
            out = torch.empty((1, n), dtype=torch.float8_e4m3fn, device="cuda")
            scale = torch.empty((1, 1), device="cuda")
            torch.ops.stablekernels.dynamic_per_token_scaled_fp8_quant(out, x, scale, None)
        else:
            w = torch.empty((n,), dtype=torch.bfloat16, device="cuda")
            getattr(torch.ops.stablekernels, op)(torch.empty_like(x), x, w, 1e-6)
