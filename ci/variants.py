# SPDX-License-Identifier: Apache-2.0
"""The CUDA variants of ci/variants.toml: load, check, and hand them to CI.

    python ci/variants.py                         list variants x platforms
    python ci/variants.py --default               the variant published to PyPI
    python ci/variants.py --github-matrix         matrix=, variants=, default= for $GITHUB_OUTPUT
    python ci/variants.py --shell cu129 aarch64   shell assignments for the CUDA install

Only the standard library: it also runs inside the manylinux build container,
before anything is installed there.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import tomllib

CONFIG = Path(__file__).with_name("variants.toml")


@dataclass(frozen=True)
class Build:
    """One wheel of a release: a variant on a platform."""

    variant: str
    cuda: str
    default: bool
    platform: str
    runner: str
    archs: str
    toolkit: str
    repo: str
    packages: tuple[str, ...]

    def github(self) -> dict:
        return {
            "variant": self.variant,
            "cuda": self.cuda,
            "default": self.default,
            "platform": self.platform,
            "runner": self.runner,
            "archs": self.archs,
        }


def load(path: Path = CONFIG) -> dict:
    """The parsed file, checked (SystemExit naming the first problem)."""
    with open(path, "rb") as f:
        config = tomllib.load(f)
    check(config, path.name)
    return config


def check(config: dict, where: str = "variants.toml") -> None:
    variants = config.get("variant") or {}
    platforms = config.get("platform") or {}
    toolkits = config.get("toolkit") or {}
    if not variants:
        raise SystemExit(f"{where}: no [variant.*]")
    defaults = [name for name, v in variants.items() if v.get("default", False)]
    if len(defaults) != 1:
        raise SystemExit(f"{where}: exactly one variant must be default = true, found {defaults}")
    for name, p in platforms.items():
        for key in ("runner", "nvidia-repo"):
            if not isinstance(p.get(key), str) or not p[key]:
                raise SystemExit(f'{where}: [platform.{name}] needs {key} = "..."')
    for name, t in toolkits.items():
        if "{repo_arch}" not in t.get("repo", ""):
            raise SystemExit(f"{where}: [toolkit.{name}] repo must contain {{repo_arch}}")
        if not t.get("packages"):
            raise SystemExit(f"{where}: [toolkit.{name}] lists no packages")
    for name, v in variants.items():
        m = re.fullmatch(r"(\d+)\.(\d+)", str(v.get("cuda", "")))
        if not m:
            raise SystemExit(
                f'{where}: [variant.{name}] cuda must be "major.minor", got {v.get("cuda")!r}'
            )
        if name != f"cu{m.group(1)}{m.group(2)}":
            raise SystemExit(
                f"{where}: variant {name} is CUDA {v['cuda']}: name it cu{m.group(1)}{m.group(2)}"
            )
        if v.get("toolkit") not in toolkits:
            raise SystemExit(
                f"{where}: [variant.{name}] toolkit {v.get('toolkit')!r} is not a [toolkit.*] "
                f"({', '.join(toolkits)})"
            )
        if v.get("build-here", "auto") not in ("auto", "system", "pypi"):
            raise SystemExit(
                f"{where}: [variant.{name}] build-here must be auto, system or pypi, "
                f"got {v.get('build-here')!r}"
            )
        archs = v.get("archs") or {}
        if not archs:
            raise SystemExit(f"{where}: [variant.{name}] builds for no platform (archs is empty)")
        for platform, spec in archs.items():
            if platform not in platforms:
                raise SystemExit(
                    f"{where}: [variant.{name}] archs names platform {platform!r}, "
                    f"which has no [platform.{platform}]"
                )
            if not isinstance(spec, str) or not spec.strip():
                raise SystemExit(f"{where}: [variant.{name}] archs.{platform} is empty")


def build_here(config: dict, variant: str) -> str | None:
    """The --cuda-toolchain `nox -s release` builds `variant` with on this kind of machine,
    or None for a variant only CI builds."""
    return config["variant"][variant].get("build-here")


def default_variant(config: dict) -> str:
    return next(name for name, v in config["variant"].items() if v.get("default", False))


def builds(config: dict) -> list[Build]:
    """Every (variant, platform) pair, default variant first, in file order otherwise."""
    out = []
    for name, v in config["variant"].items():
        toolkit = config["toolkit"][v["toolkit"]]
        dash = v["cuda"].replace(".", "-")
        for platform, archs in v["archs"].items():
            p = config["platform"][platform]
            out.append(
                Build(
                    variant=name,
                    cuda=v["cuda"],
                    default=bool(v.get("default", False)),
                    platform=platform,
                    runner=p["runner"],
                    archs=archs,
                    toolkit=v["toolkit"],
                    repo=toolkit["repo"].format(repo_arch=p["nvidia-repo"]),
                    packages=tuple(pkg.format(cuda_dash=dash) for pkg in toolkit["packages"]),
                )
            )
    return sorted(out, key=lambda b: not b.default)


def find(config: dict, variant: str, platform: str) -> Build:
    for b in builds(config):
        if (b.variant, b.platform) == (variant, platform):
            return b
    known = ", ".join(f"{b.variant}/{b.platform}" for b in builds(config))
    raise SystemExit(f"no build {variant}/{platform} in {CONFIG.name} (known: {known})")


def github_matrix(config: dict, variants: list[str] | None = None) -> dict:
    chosen = [b for b in builds(config) if not variants or b.variant in variants]
    if not chosen:
        raise SystemExit(f"no variant of {variants} in {CONFIG.name}")
    return {"include": [b.github() for b in chosen]}


def shell_assignments(build: Build) -> str:
    """Lines `NAME=value` (shell-quoted) describing one build, for `eval` in a script."""
    values = {
        "SK_VARIANT": build.variant,
        "SK_CUDA_VERSION": build.cuda,
        "SK_CUDA_ARCHS": build.archs,
        "SK_CUDA_REPO": build.repo,
        "SK_CUDA_PACKAGES": " ".join(build.packages),
    }
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--default", action="store_true", help="print the default variant")
    g.add_argument(
        "--github-matrix",
        action="store_true",
        help="print matrix=<json> (variant x platform), variants=<json> (names) and "
        "default=<variant>, lines for $GITHUB_OUTPUT",
    )
    g.add_argument(
        "--shell",
        nargs=2,
        metavar=("VARIANT", "PLATFORM"),
        help="print shell assignments (SK_CUDA_VERSION, SK_CUDA_REPO, ...) for one build",
    )
    p.add_argument("--variants", help="comma-separated variants for --github-matrix (default: all)")
    p.add_argument("--config", type=Path, default=CONFIG, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    config = load(args.config)
    if args.default:
        print(default_variant(config))
    elif args.github_matrix:
        chosen = [v for v in (args.variants or "").split(",") if v]
        matrix = github_matrix(config, chosen)
        names = list(dict.fromkeys(b["variant"] for b in matrix["include"]))
        print("matrix=" + json.dumps(matrix, separators=(",", ":")))
        print("variants=" + json.dumps(names, separators=(",", ":")))
        print("default=" + default_variant(config))
    elif args.shell:
        sys.stdout.write(shell_assignments(find(config, *args.shell)))
    else:
        for b in builds(config):
            star = "*" if b.default else " "
            here = build_here(config, b.variant)
            where = f"here: {here}" if here else "CI only"
            print(
                f"{star} {b.variant:7} CUDA {b.cuda:5} {b.platform:8} archs {b.archs:10} "
                f"{b.runner:18} {where}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
