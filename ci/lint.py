# SPDX-License-Identifier: Apache-2.0
"""Lint: ruff (check + format) on the Python, clang-format on the C++/CUDA, and
the farm's configuration (called by `nox -s lint`; `--fix` rewrites instead of
checking the code style):

- the GitHub workflows against check-jsonschema's vendored workflow schema (and
  its timeout-minutes rule), then zizmor's offline audits;
- [tool.cibuildwheel] against the schema cibuildwheel ships, and the build
  identifiers it prints against those ci/variants.toml implies;
- ci/variants.toml's own checks, and `bash -n` on the ci/ shell scripts;
- every nvcc translation unit (csrc/**/*.cu) torch-free: no include chain under
  csrc/ reaches torch/, ATen/ or c10/ (ci/nvcc_includes.py; docs/farm.md says why);
- every kernel under csrc/ops/ starts with pdl_enter() and is launched through
  launch_kernel, not <<<...>>> (ci/kernel_launches.py; docs/adding-an-op.md says why).

Everything runs offline."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import kernel_launches
import nvcc_includes
import tomllib
from _common import ROOT, log, run

WORKFLOWS = ROOT / ".github" / "workflows"

PY_PATHS = ["python", "tests", "ci", "cmake", "benchmarks", "noxfile.py"]
CXX_SUFFIXES = {".h", ".cpp", ".cu", ".cuh"}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--fix", action="store_true")
    args = p.parse_args(argv)
    failed = []
    ruff = [sys.executable, "-m", "ruff"]
    for cmd in (
        [*ruff, "check", *(["--fix"] if args.fix else []), *PY_PATHS],
        [*ruff, "format", *([] if args.fix else ["--check", "--diff"]), *PY_PATHS],
    ):
        if run(cmd, cwd=ROOT, check=False).returncode:
            failed.append(cmd[3])
    failed += farm_checks()
    for label, check, summary in (
        (
            "torch-free nvcc translation units",
            nvcc_includes.check,
            "nvcc translation units: {} reach torch",
        ),
        (
            "kernel launches",
            kernel_launches.check,
            "kernels and launches: {} not waiting first or not through launch_kernel",
        ),
    ):
        errors = check(ROOT / "csrc")
        for e in errors:
            log(e)
        log(summary.format(len(errors)))
        if errors:
            failed.append(label)
    # csrc/ and the host programs of the farm's tests (ci/tests/, e.g. the fast-division check)
    sources = sorted(
        p for d in ("csrc", "ci/tests") for p in (ROOT / d).rglob("*") if p.suffix in CXX_SUFFIXES
    )
    fmt = ["clang-format", *(["-i"] if args.fix else ["--dry-run", "-Werror"]), *sources]
    if run(fmt, cwd=ROOT, check=False).returncode:
        failed.append("clang-format")
    log(
        f"lint: {'failed: ' + ', '.join(failed) if failed else 'clean'} "
        f"({len(sources)} C++/CUDA files)"
    )
    return 1 if failed else 0


def tool(name: str) -> str:
    """An executable of this environment (the nox session's venv) first, then PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not installed (the `lint` dependency group)")
    return found


def check_cibuildwheel_config() -> bool:
    """[tool.cibuildwheel] against the JSON schema of the installed cibuildwheel."""
    import cibuildwheel
    import jsonschema

    schema_file = Path(cibuildwheel.__file__).parent / "resources" / "cibuildwheel.schema.json"
    schema = json.loads(schema_file.read_text())
    with open(ROOT / "pyproject.toml", "rb") as f:
        config = tomllib.load(f)["tool"]["cibuildwheel"]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(config), key=str)
    for e in errors:
        log(f"[tool.cibuildwheel] {'.'.join(map(str, e.path))}: {e.message}")
    log(f"[tool.cibuildwheel]: {'invalid' if errors else 'valid'} ({schema_file.name})")
    return not errors


def farm_checks() -> list[str]:
    """The CI configuration: workflows, cibuildwheel, variants, shell scripts."""
    import cibw
    import variants

    failed = []
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    if not workflows:
        failed.append("workflows (none found)")
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        cmd = [tool("check-jsonschema"), "--builtin-schema", schema, *workflows]
        if workflows and run(cmd, cwd=ROOT, check=False).returncode:
            failed.append(f"check-jsonschema {schema}")
    cmd = [tool("zizmor"), "--offline", "--no-progress", WORKFLOWS]
    if run(cmd, cwd=ROOT, check=False).returncode:
        failed.append("zizmor")
    if not check_cibuildwheel_config():
        failed.append("[tool.cibuildwheel] schema")
    try:
        config = variants.load()
    except SystemExit as e:
        log(str(e))
        failed.append("ci/variants.toml")
    else:
        if cibw.check_identifiers(config):
            failed.append("cibuildwheel identifiers")
    for script in sorted((ROOT / "ci").glob("*.sh")):
        if run(["bash", "-n", script], cwd=ROOT, check=False).returncode:
            failed.append(f"bash -n {script.name}")
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
