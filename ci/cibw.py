# SPDX-License-Identifier: Apache-2.0
"""cibuildwheel for one CUDA variant on one platform (called by `nox -s wheels`).

    python ci/cibw.py --variant cu130 --platform x86_64      build into wheelhouse/cu130/
    python ci/cibw.py --check-identifiers                    what `nox -s lint` checks
    python ci/cibw.py --record-manifest wheelhouse/cu130     build-manifest.json for a folder

The configuration is [tool.cibuildwheel] in pyproject.toml; this script only
passes it the variant from ci/variants.toml (environment variables that
cibuildwheel forwards into the container: the variant, its arch set, the git
revision, the compile jobs for this machine), then records the repaired wheel in
build-manifest.json next to it, as `nox -s build` does, so the torch matrix can
test it. Building needs a container engine (docker or podman).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import build_wheel
import variants
from _common import ROOT, find_wheels, git_revision, log, run, split_passthrough, write_manifest


def cibuildwheel() -> str:
    exe = shutil.which("cibuildwheel", path=str(Path(sys.executable).parent)) or shutil.which(
        "cibuildwheel"
    )
    if not exe:
        raise SystemExit("cibuildwheel is not installed (the `wheels` dependency group)")
    return exe


def platforms(config: dict) -> list[str]:
    """The platforms some variant builds for, in the order of [platform.*]."""
    used = {b.platform for b in variants.builds(config)}
    return [p for p in config["platform"] if p in used]


def expected_identifiers(config: dict) -> list[str]:
    """abi3: one CPython build (cp310) per platform, whatever the number of variants
    (the variant is an environment variable of the run, not a build identifier)."""
    return [f"cp310-manylinux_{p}" for p in platforms(config)]


def check_identifiers(config: dict) -> int:
    archs = ",".join(platforms(config))
    cmd = [cibuildwheel(), "--print-build-identifiers", "--platform", "linux", "--archs", archs]
    log("$ " + " ".join(cmd))
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    found = out.split()
    want = expected_identifiers(config)
    for ident in found:
        print(f"  {ident}")
    if sorted(found) != sorted(want):
        log(f"cibuildwheel identifiers: expected {want}, got {found}")
        return 1
    log(f"cibuildwheel identifiers: {len(found)} builds, as expected")
    return 0


def record_manifest(folder: Path) -> None:
    wheels = find_wheels(folder)
    if len(wheels) != 1:
        raise SystemExit(
            f"expected one stablekernels wheel in {folder}, found {[w.name for w in wheels]}"
        )
    info = write_manifest(wheels[0], folder / "build-manifest.json")
    log(f"{wheels[0].name}: variant {info['variant']}, sha256 {info['sha256']}")


def build(config: dict, variant: str, platform: str, out: Path, extra: list[str]) -> int:
    b = variants.find(config, variant, platform)
    env = dict(os.environ)
    env.update(
        STABLEKERNELS_VARIANT=b.variant,
        STABLEKERNELS_CUDA_VARIANT=b.variant,
        STABLEKERNELS_CUDA_ARCHS=b.archs,
        STABLEKERNELS_GIT_REVISION=git_revision(),
    )
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(build_wheel.parallel_jobs()))
    out.mkdir(parents=True, exist_ok=True)
    for old in find_wheels(out):
        old.unlink()
    log(f"variant {b.variant} (CUDA {b.cuda}) on {platform}, archs {b.archs}, into {out}")
    rc = run(
        [cibuildwheel(), "--platform", "linux", "--archs", platform, "--output-dir", out, *extra],
        cwd=ROOT,
        env=env,
        check=False,
    ).returncode
    if rc == 0:
        record_manifest(out)
    return rc


def main(argv: list[str]) -> int:
    argv, extra = split_passthrough(argv)
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    config = variants.load()
    p.add_argument("--variant", default=variants.default_variant(config))
    p.add_argument("--platform", default=os.uname().machine, help="x86_64 or aarch64")
    p.add_argument("--output-dir", type=Path, help="default: wheelhouse/<variant>")
    p.add_argument("--check-identifiers", action="store_true")
    p.add_argument("--record-manifest", type=Path, metavar="FOLDER")
    args = p.parse_args(argv)
    if args.check_identifiers:
        return check_identifiers(config)
    if args.record_manifest:
        record_manifest(args.record_manifest)
        return 0
    out = args.output_dir or ROOT / "wheelhouse" / args.variant
    return build(config, args.variant, args.platform, out, extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
