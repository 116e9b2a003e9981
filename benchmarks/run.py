# SPDX-License-Identifier: Apache-2.0
"""Benchmark every op of the registry side by side: ours, the pure-torch `native`
implementation in eager mode, torch.compile of it, and the measured copy
bandwidth ceiling, in one run.

    python benchmarks/run.py --device cuda                 # full run (GPU machine)
    python benchmarks/run.py --device cpu --quick          # smoke run
    python benchmarks/run.py --device cuda --ops rms_norm --dtypes bf16

GPU timing: CUDA events around each repetition, the GPU kept busy by a sleep kernel
while the host launches (host cost stays out), L2 flushed between repetitions by
rotating input sets and reading a buffer twice the size of L2, median of the repetitions
after warm-up. Decode shapes (<= 64 tokens) are also timed under CUDA graphs (32
calls a graph, inputs in L2: the kernels back to back). GB/s counts the minimal
bytes: each input read once, each output written once; "% of copy" divides by the
copy bandwidth of a large buffer, "% same" by a copy of the same traffic timed the
same way (the ceiling at that size, launch and tail included). CPU timing: wall
clock, minimum of the repetitions. Writes reports/bench-<device>.json, .md and .svg (a
chart: benchmarks/bench_chart.py) after every op, so a run cut short keeps what it
measured; ends with the check of the targets (benchmarks/targets.py), also in the .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import stablekernels
import torch
from stablekernels.ops import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_chart  # benchmarks/bench_chart.py, beside this script
import targets  # benchmarks/targets.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class Timer:
    def __init__(self, device: str, reps: int, warmup: int) -> None:
        self.device, self.reps, self.warmup = device, reps, warmup
        if device == "cuda":
            l2 = torch.cuda.get_device_properties(0).L2_cache_size
            self.flush_buf = torch.zeros(
                max(2 * l2, 64 << 20) // 4, dtype=torch.float32, device="cuda"
            )

    def flush(self) -> None:
        """Evict the inputs from L2 by reading a buffer twice its size. Reading, not writing:
        a written buffer (zero_) leaves L2 full of its dirty lines, which the timed kernel's
        misses then write back to memory in the kernel's own time (2.5-5 us a call on an
        H200, on ours and torch.compile's alike)."""
        self.flush_buf.sum()

    def time(self, fn: Callable[..., object], arg_sets: list[tuple]) -> float:
        """Median seconds per call of fn(*args), cycling through arg_sets."""
        for i in range(self.warmup):
            fn(*arg_sets[i % len(arg_sets)])
        if self.device != "cuda":
            # CPU: the minimum is the least disturbed by other processes on the machine
            times = []
            for i in range(self.reps):
                t0 = time.perf_counter()
                fn(*arg_sets[i % len(arg_sets)])
                times.append(time.perf_counter() - t0)
            return min(times)
        torch.cuda.synchronize()
        times = []
        for i in range(self.reps):
            args = arg_sets[i % len(arg_sets)]
            self.flush()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda._sleep(100_000)  # keep the GPU busy while the host launches
            start.record()
            fn(*args)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times)

    def time_graph(
        self, fn: Callable[..., object], arg_sets: list[tuple], calls: int = 32
    ) -> float:
        """Median seconds per call of fn(*args) inside a CUDA graph (decode shapes): one
        graph holds `calls` calls cycling through arg_sets, so that the time is the kernels'
        back to back on the GPU (launch gaps inside a graph included), not the host's cost of
        a replay, which one call per replay measured for kernels shorter than it (about 2.5
        us). The inputs are in L2, as a decode step's activations are; each replay is timed
        behind a sleep kernel as in time()."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for args in arg_sets:
                fn(*args)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(calls):
                fn(*arg_sets[i % len(arg_sets)])
        for _ in range(3):
            graph.replay()
        torch.cuda.synchronize()
        times = []
        for _ in range(max(self.reps // 2, 5)):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda._sleep(100_000)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / calls)
        return statistics.median(times)


def copy_seconds(timer: Timer, device: str, traffic: int) -> float:
    """Seconds of a device copy moving `traffic` bytes (half read, half written)."""
    n = max(traffic // 2, 1)
    src = torch.empty(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return timer.time(lambda a, b: b.copy_(a), [(src, dst)])


def copy_bandwidth(timer: Timer, device: str) -> float:
    """Bytes per second of a device copy (read + write) of a large buffer."""
    traffic = 2 * ((1 << 30) if device == "cuda" else (256 << 20))
    return traffic / copy_seconds(timer, device, traffic)


def device_facts(device: str) -> dict:
    """What the target check (benchmarks/targets.py) needs to know of the device: on a GPU,
    its memory's peak rate (2 x the memory clock x the bus width) and the bytes it holds on
    chip (L2, and every SM's shared memory and registers), where torch reports them."""
    if device != "cuda":
        return {"device_kind": device}
    p = torch.cuda.get_device_properties(0)
    facts: dict = {"device_kind": device}
    clock_khz, bus_bits = getattr(p, "memory_clock_rate", 0), getattr(p, "memory_bus_width", 0)
    if clock_khz and bus_bits:
        facts["dram_peak_gbps"] = 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9
    smem = getattr(p, "shared_memory_per_multiprocessor", 0)
    regs = getattr(p, "regs_per_multiprocessor", 0)
    if smem and regs:
        facts["onchip_bytes"] = p.L2_cache_size + p.multi_processor_count * (smem + 4 * regs)
    return facts


def host_overhead(reps: int = 20000) -> list[dict]:
    """Per-call cost from Python on the CPU: our boxed stable-ABI op against a native
    aten op on a tensor small enough that the work is negligible."""
    x = torch.randn(1, 8)
    w = torch.ones(8)
    out = torch.empty_like(x)
    g = torch.randn(1, 16)
    h = torch.empty(1, 8)
    cases = [
        (
            "torch.ops.stablekernels.rms_norm (1x8)",
            lambda: torch.ops.stablekernels.rms_norm(out, x, w, 1e-6),
        ),
        (
            "torch.ops.stablekernels.silu_and_mul (1x16)",
            lambda: torch.ops.stablekernels.silu_and_mul(h, g),
        ),
        ("torch.ops.aten.mul.out (1x8)", lambda: torch.ops.aten.mul.out(x, w, out=out)),
        ("torch.mul(out=) (1x8)", lambda: torch.mul(x, w, out=out)),
    ]
    rows = []
    for name, fn in cases:
        for _ in range(1000):
            fn()
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            samples.append((time.perf_counter() - t0) / reps)
        rows.append({"call": name, "us_per_call": min(samples) * 1e6})
    return rows


def save(result: dict, out: Path, stem: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    (out / f"{stem}.svg").write_text(bench_chart.svg(result))


def run(args: argparse.Namespace, stem: str) -> dict:
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU visible")
    timer = Timer(device, args.reps, args.warmup)
    ceiling = copy_bandwidth(timer, device)
    facts = device_facts(device)
    gpu = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else platform.processor() or platform.machine()
    )
    print(
        f"{gpu} | torch {torch.__version__} | stablekernels {stablekernels.__version__} | "
        f"copy bandwidth {ceiling / 1e9:.0f} GB/s",
        flush=True,
    )
    header = (
        f"{'op':<20} {'dtype':<5} {'shape':<24} {'ours us':>9} {'GB/s':>6} {'%copy':>6} "
        f"{'%same':>6} {'eager us':>9} {'compile us':>10} {'vs comp':>8}"
    )
    if device == "cuda":
        header += f" {'graph us':>9} {'comp graph':>10}"
    print(header, flush=True)
    rows: list[dict] = []
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": gpu,
        "torch": torch.__version__,
        "stablekernels": stablekernels.__version__,
        "copy_gbps": ceiling / 1e9,
        **facts,
        "quick": args.quick,
        "rows": rows,
    }
    names = args.ops.split(",") if args.ops else sorted(REGISTRY)
    for name in names:
        matched = 0
        spec = REGISTRY[name]
        cases = spec.bench_quick if args.quick else spec.bench
        if spec.native is None or not cases:
            print(f"{name:<20} (no benchmark cases)", flush=True)
            continue
        ours_fn = spec.bench_fn or spec.wrapper
        for dt_name in args.dtypes.split(","):
            dtype = DTYPES[dt_name]
            for case in cases:
                if args.match and args.match not in case.label:
                    continue
                matched += 1
                nbytes = case.nbytes(dtype)
                n_sets = 1 if device != "cuda" else max(2, min(8, int(256e6 // max(nbytes, 1)) + 1))
                sets = [case.make_args(torch.device(device), dtype) for _ in range(n_sets)]
                # a fresh, static-shape compile per case: what torch.compile gives a model
                # whose shapes are known (no recompile limit, no dynamic-shape kernels)
                torch._dynamo.reset()
                compiled = torch.compile(spec.native, dynamic=False)
                t_ours = timer.time(ours_fn, sets)
                t_eager = timer.time(spec.native, sets)
                t_comp = timer.time(compiled, sets)
                # the ceiling at this size: a copy of the same traffic has the same launch,
                # ramp-up and tail costs, which a large copy spreads thin
                t_copy = copy_seconds(timer, device, nbytes)
                row = targets.with_figures(
                    {
                        "op": name,
                        "dtype": dt_name,
                        "shape": case.label,
                        "regime": case.regime,
                        "bytes": nbytes,
                        "ours_us": t_ours * 1e6,
                        "eager_us": t_eager * 1e6,
                        "compile_us": t_comp * 1e6,
                        "copy_same_us": t_copy * 1e6,
                        **targets.case_fields(case, dtype, facts.get("onchip_bytes")),
                    },
                    ceiling / 1e9,
                )
                line = (
                    f"{name:<20} {dt_name:<5} {case.label:<24} {row['ours_us']:9.1f} {row['ours_gbps']:6.0f} "
                    f"{row['pct_copy']:5.0f}% {row['pct_copy_same']:5.0f}% "
                    f"{row['eager_us']:9.1f} {row['compile_us']:10.1f} "
                    f"{row['speedup_vs_compile']:7.2f}x"
                )
                if device == "cuda" and case.regime == "decode":
                    row["ours_graph_us"] = timer.time_graph(ours_fn, sets) * 1e6
                    row["compile_graph_us"] = timer.time_graph(compiled, sets) * 1e6
                    line += f" {row['ours_graph_us']:9.2f} {row['compile_graph_us']:10.2f}"
                print(line, flush=True)
                rows.append(row)
                del sets
        if not matched:
            print(f"{name:<20} (no shape matches --match {args.match!r})", flush=True)
        save(result, args.out, stem)
    if device == "cpu":
        result["host_overhead"] = host_overhead(2000 if args.quick else 20000)
        print("\nhost overhead per call (CPU, from Python):")
        for r in result["host_overhead"]:
            print(f"  {r['call']:<45} {r['us_per_call']:6.2f} us")
    return result


def markdown(result: dict) -> str:
    lines = [
        f"Measured {result['date']} on {result['device']}, torch {result['torch']}, stablekernels "
        f"{result['stablekernels']}; device copy bandwidth {result['copy_gbps']:.0f} GB/s.",
        "",
    ]
    if len(result.get("runs", [])) > 1:  # benchmarks/merge_runs.py
        lines[0] += (
            f" Each time is the median of {len(result['runs'])} runs ({', '.join(result['runs'])})."
        )
    graph = any("ours_graph_us" in r for r in result["rows"])
    same = any("pct_copy_same" in r for r in result["rows"])
    head = "| op | dtype | shape | ours (us) | GB/s | % of copy |"
    sep = "|---|---|---|---:|---:|---:|"
    if same:
        head += " % of same-size copy |"
        sep += "---:|"
    head += " eager (us) | compile (us) | vs compile |"
    sep += "---:|---:|---:|"
    if graph:
        head += " ours, graph (us) | compile, graph (us) |"
        sep += "---:|---:|"
    lines += [head, sep]
    for r in result["rows"]:
        line = f"| {r['op']} | {r['dtype']} | {r['shape']} | {r['ours_us']:.1f} | {r['ours_gbps']:.0f} | {r['pct_copy']:.0f}% |"
        if same:
            line += f" {r['pct_copy_same']:.0f}% |" if "pct_copy_same" in r else " |"
        line += f" {r['eager_us']:.1f} | {r['compile_us']:.1f} | {r['speedup_vs_compile']:.2f}x |"
        if graph:
            line += (
                f" {r['ours_graph_us']:.2f} | {r['compile_graph_us']:.2f} |"
                if "ours_graph_us" in r
                else " | |"
            )
        lines.append(line)
    if "host_overhead" in result:
        lines += ["", "| call (CPU, from Python) | us per call |", "|---|---:|"]
        lines += [f"| {r['call']} | {r['us_per_call']:.2f} |" for r in result["host_overhead"]]
    lines += ["", "Targets (benchmarks/targets.py):", "", targets.markdown(result).rstrip("\n")]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    p.add_argument(
        "--quick", action="store_true", help="small shapes and few repetitions (smoke run)"
    )
    p.add_argument("--ops", default="", help="comma-separated op names (default: all)")
    p.add_argument("--match", default="", help="only the shapes whose label contains this text")
    p.add_argument("--dtypes", default="bf16,fp16", help="comma-separated of bf16, fp16, fp32")
    p.add_argument(
        "--reps", type=int, default=0, help="timed repetitions (default: 50 GPU, 20 CPU, 5 quick)"
    )
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", type=Path, default=ROOT / "reports")
    args = p.parse_args(argv)
    unknown = [n for n in args.ops.split(",") if args.ops and n not in REGISTRY]
    if unknown:
        p.error(
            f"--ops: unknown op(s) {', '.join(unknown)}; expected names from {', '.join(sorted(REGISTRY))}"
        )
    bad = [d for d in args.dtypes.split(",") if d not in DTYPES]
    if bad:
        p.error(
            f"--dtypes: unknown {', '.join(bad)}; expected a comma-separated list of {', '.join(DTYPES)}"
        )
    if not args.reps:
        args.reps = 5 if args.quick else (50 if args.device == "cuda" else 20)
    stem = f"bench-{args.device}{'-quick' if args.quick else ''}"
    result = run(args, stem)
    save(result, args.out, stem)
    print("\ntargets:\n" + targets.markdown(result), end="")
    print(f"\nwrote {args.out / (stem + '.json')}, .md and .svg")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
