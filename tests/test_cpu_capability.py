# SPDX-License-Identifier: Apache-2.0
"""STABLEKERNELS_CPU_CAPABILITY: the CPU kernels whose loops vectorize (the *_and_mul ops,
merge_attn_states, the FP8 quantizers, the norms, rotary_embedding, hadacore_transform) are
compiled for the x86-64 baseline, AVX2 + FMA and AVX-512, and the best one the CPU runs is
taken. The variable caps that pick, so each build is run here, in a fresh process per value
(the pick is made once a process), and checked against float64 (the activations, the merge,
the row ops), against torch's own division and float8 conversion, bit for bit (the
quantizers), and against the baseline bit for bit where no build can fuse a multiply-add
(the quantizers, hadacore_transform: there the AVX2 and AVX-512 builds convert float16 by
F16C and the baseline by torch's Half)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from stablekernels.ops import REGISTRY

OPS = ("silu_and_mul", "gelu_and_mul", "gelu_tanh_and_mul")
DTYPES = ("float32", "bfloat16", "float16")
ROW_OPS = ("rms_norm", "fused_add_rms_norm", "rotary_embedding", "hadacore_transform")

# Computes the ops (argv[2:], "op:dtype") on fixed inputs and saves the outputs (argv[1]).
CHILD = (
    f"DTYPES = {DTYPES!r}\n"
    + """
import sys, torch, stablekernels
from stablekernels.ops import REGISTRY
g = torch.Generator().manual_seed(0)
x = 6 * torch.randn(37, 2 * 3000, generator=g, dtype=torch.float64)
out = {"input": x}
for name in sys.argv[2:]:
    op, dt = name.split(":")
    out[op, dt] = REGISTRY[op].wrapper(x.to(getattr(torch, dt)))
# float32 gelu, gate 1, over a fine grid of [-20, 20] (both tails) and special values
inf = float("inf")
special = [0.0, -0.0, 1e-30, -1e-30, 13.25, -13.25, 1e4, -1e4, 1e30, -1e30, inf, -inf]
s = torch.cat([torch.linspace(-20, 20, 2**20 + 1), torch.tensor(special + [float("nan")])])
out["gelu_sweep"] = s, REGISTRY["gelu_and_mul"].wrapper(torch.cat([s, torch.ones_like(s)])[None])[0]
# the FP8 quantizers on rows with every special value: 1e-3 of fp8's subnormal range, ties,
# the saturation edge, NaN and +-inf; rows of 1000 (a tail past the vector width)
q = torch.cat([torch.randn(37, 1000, generator=g) * 300, torch.randn(3, 1000, generator=g) * 1e-3])
q[0, :8] = torch.tensor([float("nan"), inf, -inf, 0.0, -0.0, 464.0, -464.0, 2.0**-10])
for dt in DTYPES:
    x = q.to(getattr(torch, dt))
    st = torch.tensor([0.75])
    out["static", dt] = x, REGISTRY["static_scaled_fp8_quant"].wrapper(x, st).view(torch.uint8)
    y, ds = REGISTRY["dynamic_scaled_fp8_quant"].wrapper(x)
    out["dynamic", dt] = y.view(torch.uint8), ds
    y, ts = REGISTRY["dynamic_per_token_scaled_fp8_quant"].wrapper(x)
    out["per_token", dt] = y.view(torch.uint8), ts
# merge_attn_states: 37 tokens x 3 heads x 200 (a chunk and a tail), one lse side -inf in a row
pl, sl = torch.randn(3, 37, generator=g) * 4, torch.randn(3, 37, generator=g) * 4
pl[1, 5] = -inf
for dt in DTYPES:
    p, s = (torch.randn(37, 3, 200, generator=g).to(getattr(torch, dt)) for _ in "ps")
    out["merge", dt] = (p, pl, s, sl), REGISTRY["merge_attn_states"].wrapper(p, pl, s, sl)
# the row ops, a list of (args, result) each: rows of 3000 (chunks of 256 and a tail); for
# hadacore rows whose results overflow float16, fall in its subnormals, or are NaN
for dt in DTYPES:
    t = getattr(torch, dt)
    x, r = (torch.randn(37, 3000, generator=g).mul(3).to(t) for _ in "xr")
    w = (torch.rand(3000, generator=g) + 0.5).to(t)
    pos = torch.randint(0, 64, (37,), generator=g)
    cache = torch.randn(64, 96, generator=g).to(t)
    qk = [torch.randn(37, n * 128, generator=g).to(t) for n in (3, 2)]
    h = torch.randn(37, 1024, generator=g)
    h[0] = 60000.0
    h[1] *= 2.0**-20
    h[2, :3] = torch.tensor([float("nan"), inf, -inf])
    h = h.to(t)
    args = {
        "rms_norm": [(x, w, 1e-6)],
        "fused_add_rms_norm": [(x, r, w, 1e-6)],
        "rotary_embedding": [(pos, *qk, 128, cache, neox) for neox in (True, False)],
        "hadacore_transform": [(h,)],
    }
    for op, cases in args.items():
        out[op, dt] = [(a, REGISTRY[op].wrapper(*a)) for a in cases]
torch.save(out, sys.argv[1])
"""
)

LEVELS = {"DEFAULT": 0, "AVX2": 1, "AVX512": 2}


def _cpu_level() -> int:
    if platform.machine() not in ("x86_64", "AMD64"):
        return 0
    return LEVELS.get(torch.backends.cpu.get_cpu_capability(), 0)


def _run(tmp_path: Path, value: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("STABLEKERNELS_CPU_CAPABILITY", None)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if value is not None:
        env["STABLEKERNELS_CPU_CAPABILITY"] = value
    dest = tmp_path / f"out-{value}.pt"
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(dest), *(f"{op}:{dt}" for op in OPS for dt in DTYPES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, dict]:
    tmp = tmp_path_factory.mktemp("capability")
    results = {}
    for value in (None, "default", "avx2", "avx512"):
        proc = _run(tmp, value)
        assert proc.returncode == 0, f"STABLEKERNELS_CPU_CAPABILITY={value}: {proc.stderr[-2000:]}"
        results[value] = torch.load(tmp / f"out-{value}.pt")
    return results


@pytest.mark.parametrize("value", [None, "default", "avx2", "avx512"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_build_matches_float64(outputs: dict, value: str | None, op: str, dtype: str) -> None:
    # the registry's float64 reference and tolerance, as tests/ops/test_activation.py uses them
    spec = REGISTRY[op]
    x = outputs[value]["input"].to(getattr(torch, dtype))
    got = outputs[value][op, dtype]
    torch.testing.assert_close(got, spec.reference(x), **spec.tol(x.dtype))


@pytest.mark.parametrize("value", [None, "default", "avx2", "avx512"])
def test_gelu_float32_tails(outputs: dict, value: str | None) -> None:
    # Tighter than the registry's atol = rtol = 1e-5, which hides the tails: wherever gelu(x)
    # is a normal float (x > -13.1), a relative error of at most 1e-6 + 1e-7 x^2 (the rounding
    # of x^2 in e^(-x^2 / 2) grows with it; measured: 6e-6 at x = -11 with FMA, 8e-6 without,
    # 4e-7 for |x| < 1), and below 2^-126 an absolute error under 2^-126. The reference is
    # x erfc(-x / sqrt 2) / 2 (x (1 + erf(x / sqrt 2)) / 2 loses the negative tail to
    # cancellation, in float64 too).
    x, got = outputs[value]["gelu_sweep"]
    finite = x.isfinite()
    xd = x[finite].double()
    ref = 0.5 * xd * torch.special.erfc(-xd / math.sqrt(2))
    err = (got[finite].double() - ref).abs()
    normal = ref.abs() >= 2.0**-126
    rel = err[normal] / ref[normal].abs()
    bound = 1e-6 + 1e-7 * xd[normal] ** 2
    worst = int((rel / bound).argmax())
    assert (rel <= bound).all(), (
        f"relative error {rel[worst].item():.3g} at x = {xd[normal][worst].item()!r} "
        f"(bound {bound[worst].item():.3g})"
    )
    assert (err[~normal] < 2.0**-126).all()
    # the limits: relu(x) for |x| >= 1e4 (-inf gives 0), NaN stays NaN
    big = x.abs() >= 1e4
    assert torch.equal(got[big], x[big].clamp(min=0)), (x[big], got[big])
    assert got[x.isnan()].isnan().all()


def test_the_variable_changes_the_build(outputs: dict) -> None:
    # The baseline has no FMA; AVX2 + FMA rounds some float32 products-and-sums once where
    # the baseline rounds twice, so over 111000 elements their results differ somewhere.
    if _cpu_level() < LEVELS["AVX2"]:
        pytest.skip("this CPU has no AVX2 + FMA: every value takes the baseline")
    base = outputs["default"]["gelu_tanh_and_mul", "float32"]
    avx2 = outputs["avx2"]["gelu_tanh_and_mul", "float32"]
    assert not torch.equal(base, avx2), (
        "default and avx2 gave bit-identical float32: the cap had no effect"
    )
    best = "avx512" if _cpu_level() >= LEVELS["AVX512"] else "avx2"
    for op in OPS:
        for dtype in DTYPES:
            assert torch.equal(outputs[None][op, dtype], outputs[best][op, dtype]), (
                f"{op} {dtype}: unset must pick {best}"
            )


def test_unknown_value_is_an_error(tmp_path: Path) -> None:
    proc = _run(tmp_path, "sse9")
    assert proc.returncode != 0
    assert "STABLEKERNELS_CPU_CAPABILITY='sse9': expected default, avx2 or avx512" in proc.stderr


def _fp8_rule(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The quantizers' rule in torch's own ops: float32 IEEE division, +-448 saturation, the
    float8 conversion's nearest-even rounding, every NaN to 0x7F."""
    q = x.float() / scale
    bits = q.clamp(-448.0, 448.0).to(torch.float8_e4m3fn).view(torch.uint8).clone()
    bits[q.isnan()] = 0x7F
    return bits


@pytest.mark.parametrize("value", [None, "default", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_build_quantizes_as_torch_converts(
    outputs: dict, value: str | None, dtype: str
) -> None:
    x, static = outputs[value]["static", dtype]
    assert torch.equal(static, _fp8_rule(x, torch.tensor(0.75)))
    y, scale = outputs[value]["dynamic", dtype]
    finite = x.float().abs()[x.float().isfinite()]
    # in float32: max(amax / 448, 1 / (448 * 512))
    assert torch.equal(scale, (finite.max() / 448.0).clamp(min=1.0 / (448.0 * 512.0)).reshape(1))
    assert torch.equal(y, _fp8_rule(x, scale))
    y, scales = outputs[value]["per_token", dtype]
    assert torch.equal(y, _fp8_rule(x, scales))
    # the builds agree bit for bit (the same rule, only the vector width differs)
    for key in ("static", "dynamic", "per_token"):
        for a, b in zip(outputs[value][key, dtype], outputs["default"][key, dtype], strict=True):
            # exact (NaN only in the saved input)
            torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("value", [None, "default", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_build_merges_as_the_reference(outputs: dict, value: str | None, dtype: str) -> None:
    spec = REGISTRY["merge_attn_states"]
    args, (got, got_lse) = outputs[value]["merge", dtype]
    want, want_lse = spec.reference(*args)
    torch.testing.assert_close(got, want, **spec.tol(got.dtype))
    torch.testing.assert_close(got_lse, want_lse, **spec.tol(torch.float32))


def _tensors(result: object) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for t in result if t is not None]


@pytest.mark.parametrize("value", [None, "default", "avx2", "avx512"])
@pytest.mark.parametrize("op", ROW_OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_build_of_the_row_ops(outputs: dict, value: str | None, op: str, dtype: str) -> None:
    spec = REGISTRY[op]
    for (args, got), (_, base) in zip(
        outputs[value][op, dtype], outputs["default"][op, dtype], strict=True
    ):
        want = spec.reference(*args)
        for g, w in zip(_tensors(got), _tensors(want), strict=True):
            torch.testing.assert_close(g, w, **spec.tol(g.dtype), equal_nan=True)
        if op == "hadacore_transform":
            # Sums, differences and one product an element: nothing the AVX2 and AVX-512
            # builds could fuse into an FMA, so every build gives the same float32 values and
            # the results agree bit for bit; in float16 that holds only if F16C (those
            # builds) rounds as torch's Half (the baseline) does, also where the results
            # overflow, fall in the subnormals or are NaN.
            for g, b in zip(_tensors(got), _tensors(base), strict=True):
                torch.testing.assert_close(g, b, rtol=0, atol=0, equal_nan=True)
