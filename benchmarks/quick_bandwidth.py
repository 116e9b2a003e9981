# SPDX-License-Identifier: Apache-2.0
"""Quick side-by-side timing of the CUDA ops against torch eager, torch.compile of
the reference, and the measured device copy bandwidth (one shape per op).

    python benchmarks/quick_bandwidth.py

Times with CUDA events (behind a GPU sleep, so host launch cost is hidden), median of
many repetitions after warm-up, rotating
between input sets larger than L2 so each repetition reads from HBM. Minimal
bytes: each input read once, each output written once.
"""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

import stablekernels

# What a user would write in pure torch (float32 math, output in the input dtype);
# torch.compile of these is the bar the kernels must clear.


def rms_norm_torch(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w.float()).to(x.dtype)


def fused_add_rms_norm_torch(x, r, w, eps):
    z = (x.float() + r.float()).to(x.dtype)
    return rms_norm_torch(z, w, eps), z


def act_and_mul_torch(act):
    def f(x):
        d = x.shape[-1] // 2
        return (act(x[..., :d].float()) * x[..., d:].float()).to(x.dtype)

    return f


OPS = {
    "rms_norm": (stablekernels.rms_norm, rms_norm_torch),
    "fused_add_rms_norm": (stablekernels.fused_add_rms_norm_, fused_add_rms_norm_torch),
    "silu_and_mul": (stablekernels.silu_and_mul, act_and_mul_torch(F.silu)),
    "gelu_and_mul": (stablekernels.gelu_and_mul, act_and_mul_torch(F.gelu)),
}

REPS = 50
WARMUP = 10


def bench(fn, arg_sets) -> float:
    """Median milliseconds of fn(*args), cycling through arg_sets."""
    for i in range(WARMUP):
        fn(*arg_sets[i % len(arg_sets)])
    torch.cuda.synchronize()
    times = []
    for i in range(REPS):
        args = arg_sets[i % len(arg_sets)]
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        # keep the GPU busy while the host launches, so host overhead stays out of the timing
        torch.cuda._sleep(200_000)
        start.record()
        fn(*args)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def sets(make, nbytes: int) -> list:
    # enough distinct input sets that they do not all fit in L2 (50-60 MB on H100/H200)
    n = max(2, int(4 * 64 * 2**20 // max(nbytes, 1)) + 1)
    return [make() for _ in range(min(n, 8))]


def main() -> None:
    dev = "cuda"
    dt = torch.bfloat16
    print(f"GPU {torch.cuda.get_device_name()}  torch {torch.__version__}  stablekernels {stablekernels.__version__}")
    src = torch.empty(2**30 // 2, dtype=dt, device=dev)
    dst = torch.empty_like(src)
    ms = bench(lambda a, b: b.copy_(a), [(src, dst)])
    copy_gbs = 2 * src.numel() * 2 / ms / 1e6
    print(f"device copy: {copy_gbs:.0f} GB/s (1 GiB read + 1 GiB written)")
    del src, dst
    cases = [
        ("rms_norm", (16384, 8192), lambda s: (torch.randn(s, device=dev, dtype=dt), torch.randn(s[-1], device=dev, dtype=dt), 1e-6), 2),
        ("fused_add_rms_norm", (16384, 8192), lambda s: (torch.randn(s, device=dev, dtype=dt), torch.randn(s, device=dev, dtype=dt), torch.randn(s[-1], device=dev, dtype=dt), 1e-6), 4),
        ("silu_and_mul", (16384, 16384), lambda s: (torch.randn(s, device=dev, dtype=dt),), 1.5),
        ("gelu_and_mul", (16384, 16384), lambda s: (torch.randn(s, device=dev, dtype=dt),), 1.5),
        ("rms_norm", (32, 8192), lambda s: (torch.randn(s, device=dev, dtype=dt), torch.randn(s[-1], device=dev, dtype=dt), 1e-6), 2),
        ("silu_and_mul", (32, 16384), lambda s: (torch.randn(s, device=dev, dtype=dt),), 1.5),
    ]
    print(f"{'op':<20} {'shape':<16} {'ours us':>9} {'GB/s':>7} {'%copy':>6} {'eager us':>9} {'compile us':>11} {'vs compile':>10}")
    for name, shape, make, traffic in cases:
        ours_fn, torch_fn = OPS[name]
        numel = shape[0] * shape[1]
        nbytes = int(traffic * numel * 2)
        args = sets(lambda: make(shape), nbytes)
        ref_compiled = torch.compile(torch_fn)
        ours = bench(ours_fn, args)
        eager = bench(torch_fn, args)
        comp = bench(ref_compiled, args)
        gbs = nbytes / ours / 1e6
        print(f"{name:<20} {str(shape):<16} {ours * 1e3:9.1f} {gbs:7.0f} {100 * gbs / copy_gbs:5.0f}% "
              f"{eager * 1e3:9.1f} {comp * 1e3:11.1f} {comp / ours:9.2f}x")


if __name__ == "__main__":
    main()
