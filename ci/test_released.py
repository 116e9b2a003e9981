# SPDX-License-Identifier: Apache-2.0
"""Test a released wheel under the newest torch or torch nightly (called by
`nox -s test_released`, the scheduled job; inside the session's fresh venv).

    python ci/test_released.py --torch latest                    default variant, from PyPI
    python ci/test_released.py --torch nightly --variant cu129 --index-url URL
    python ci/test_released.py --torch latest --wheel dist/stablekernels-...whl

The wheel is downloaded with pip (--no-deps, binary only): from PyPI for the
default variant, from --index-url (a variant's index) otherwise. `latest`
installs the newest torch release, `nightly` the newest pre-release from
--nightly-index-url. Set UV_TORCH_BACKEND=cpu for CPU builds of torch. Then
ci/run_tests.py runs the suite against that torch, unchanged.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import variants
from _common import ROOT, find_wheels, log, run, split_passthrough, uv_pip_install, wheel_info

NIGHTLY_CPU = "https://download.pytorch.org/whl/nightly/cpu"


def download(variant: str, version: str | None, index_url: str | None, dest: Path) -> Path:
    spec = f"stablekernels=={version}" if version else "stablekernels"
    index = ["--index-url", index_url] if index_url else []
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            dest,
            *index,
            spec,
        ]
    )
    wheels = find_wheels(dest)
    if len(wheels) != 1:
        raise SystemExit(
            f"expected one wheel from {index_url or 'PyPI'}, got {[w.name for w in wheels]}"
        )
    return wheels[0]


def install_torch(channel: str, nightly_index: str) -> None:
    if channel == "latest":
        uv_pip_install("--upgrade", "torch")
    elif channel == "nightly":
        uv_pip_install("--upgrade", "--pre", "--index-url", nightly_index, "torch")
    else:
        uv_pip_install(f"torch=={channel}")


def main(argv: list[str]) -> int:
    argv, pytest_args = split_passthrough(argv)
    config = variants.load()
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--torch", default="latest", help="latest, nightly or a version (default: %(default)s)"
    )
    p.add_argument(
        "--variant", default=variants.default_variant(config), help="default: %(default)s"
    )
    p.add_argument("--version", help="stablekernels release to test (default: the newest)")
    p.add_argument("--index-url", help="the variant's index (needed for a non-default variant)")
    p.add_argument("--nightly-index-url", default=NIGHTLY_CPU, help="default: %(default)s")
    p.add_argument("--wheel", type=Path, help="test this wheel file instead of downloading one")
    args = p.parse_args(argv)
    if args.variant not in config["variant"]:
        raise SystemExit(f"unknown variant {args.variant} (ci/variants.toml)")
    is_default = args.variant == variants.default_variant(config)
    if not args.wheel and not is_default and not args.index_url:
        raise SystemExit(f"{args.variant} is not on PyPI: pass --index-url of its index")
    with tempfile.TemporaryDirectory(prefix="sk-released-") as tmp:
        wheel = args.wheel or download(args.variant, args.version, args.index_url, Path(tmp))
        info = wheel_info(wheel)
        if info["variant"] != args.variant:
            raise SystemExit(f"{wheel.name} is variant {info['variant']}, not {args.variant}")
        log(
            f"released wheel {wheel.name}: {info['version']}, {info['variant']}, sha256 {info['sha256']}"
        )
        install_torch(args.torch, args.nightly_index_url)
        cmd = [
            sys.executable,
            ROOT / "ci" / "run_tests.py",
            "--wheel",
            wheel,
            "--torch",
            "installed",
        ]
        return run([*cmd, "--", *pytest_args] if pytest_args else cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
