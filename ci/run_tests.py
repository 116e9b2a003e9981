# SPDX-License-Identifier: Apache-2.0
"""Install the built wheel next to a torch release and run the test suite
(called by `nox -s tests`, inside the session's fresh virtual environment).

The wheel is installed with --no-deps, so the torch under test is exactly the
one asked for; its sha256 is printed so a log says which file was tested.
Extra arguments after `--` go to pytest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import (
    ROOT,
    log,
    run,
    sha256,
    single_wheel,
    split_passthrough,
    test_requirements,
    uv_pip_install,
)
from versions import TORCH_TEST_DEFAULT


def main(argv: list[str]) -> int:
    argv, pytest_args = split_passthrough(argv)
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--wheel", type=Path, help="wheel to test (default: the one in dist/)")
    p.add_argument(
        "--torch",
        default=TORCH_TEST_DEFAULT,
        help="torch release from PyPI to test under, or 'installed' to keep the "
        "environment's torch (default: %(default)s)",
    )
    p.add_argument(
        "--find-links",
        metavar="DIR",
        help="also look for torch in this folder of wheels (e.g. a local CPU-only build)",
    )
    p.add_argument("--install-only", action="store_true", help="install, do not run pytest")
    args = p.parse_args(argv)
    wheel = args.wheel or single_wheel()
    if args.torch != "installed":
        extra = ["--find-links", args.find_links] if args.find_links else []
        uv_pip_install(*extra, f"torch=={args.torch}")
    uv_pip_install(*test_requirements())
    uv_pip_install("--no-deps", "--reinstall", str(wheel))
    if args.install_only:
        log(f"installed {wheel.name} (sha256 {sha256(wheel)})")
        return 0
    log(f"testing {wheel.name} (sha256 {sha256(wheel)})")
    run(
        [
            sys.executable,
            "-c",
            "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)",
        ]
    )
    result = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            ROOT / "pyproject.toml",
            "--rootdir",
            ROOT,
            ROOT / "tests",
            *pytest_args,
        ],
        cwd=ROOT,
        check=False,
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
