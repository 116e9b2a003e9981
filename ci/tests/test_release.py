# SPDX-License-Identifier: Apache-2.0
"""Tests of the release (ci/release.py) against a real package index on loopback:
ci/index_server.py (pypiserver, one index at the root and one per variant, uploads
behind an htpasswd user). They reuse the wheel in dist/ (never rebuild) and one
torch matrix cell, run once by the dry run and reused (by sha256) afterwards.

The tests of this file run in order: the dry run records the matrix cell, the
release publishes, the later tests act on what it published."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from gate_fixtures import CI, ROOT, rewrite_wheel

sys.path.insert(0, str(CI))
import release as rel
import static_index
from _common import sha256

USER = "releaser"
PASSWORD = "pw-" + secrets.token_hex(12)
MATRIX = ["--matrix", "torch=2.11", "python=3.11"]
PYTEST = ["--", "-q", "-k", "test_rms_norm_in_place"]  # the cell runs a few tests, to stay short


@dataclass
class Index:
    url: str
    data: Path  # root/ and <variant>/ package folders of the server

    def files(self, index: str = "root") -> list[str]:
        folder = self.data / index
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("index")
    port_file = root / "port"
    log = open(root / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            CI / "index_server.py",
            "--root",
            root / "data",
            "--port",
            "0",
            "--port-file",
            port_file,
            "--user",
            USER,
            "--no-fallback",
            "--variants",
            "cu130,cu129",
        ],
        env=dict(os.environ, STABLEKERNELS_INDEX_PASSWORD=PASSWORD),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert proc.poll() is None, (root / "server.log").read_text()
        assert time.monotonic() < deadline, "index server did not start"
        time.sleep(0.2)
    yield Index(f"http://127.0.0.1:{port_file.read_text().strip()}/", root / "data")
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    assert PASSWORD not in (root / "server.log").read_text()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("release")


def run_release(
    *args, work: Path, out: str = "out", user: str | None = USER, password: str | None = PASSWORD
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    env["STABLEKERNELS_REPORTS"] = str(work / "reports")  # matrix cells kept apart from reports/
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"  # no keyring on CI machines
    if user:
        env["TWINE_USERNAME"] = user
    if password:
        env["TWINE_PASSWORD"] = password
    proc = subprocess.run(
        [sys.executable, CI / "release.py", "--out", work / out, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1200,
    )
    output = proc.stdout + proc.stderr
    assert PASSWORD not in output, "the upload password appeared in the release's output"
    if password:
        assert password not in output
    return proc


def _out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def test_label_wheel(real_wheel: Path, tmp_path: Path) -> None:
    """The +cu130 copy: own file, own sha256, version everywhere, same libraries, RECORD right."""
    labelled = rel.label_wheel(real_wheel, "cu130", tmp_path)
    version = real_wheel.name.split("-")[1]
    assert labelled.name == real_wheel.name.replace(f"-{version}-", f"-{version}+cu130-")
    assert sha256(labelled) != sha256(real_wheel)
    rel.check_record(labelled)
    with zipfile.ZipFile(real_wheel) as a, zipfile.ZipFile(labelled) as b:
        names = b.namelist()
        assert f"stablekernels-{version}+cu130.dist-info/METADATA" in names
        assert not any(n.startswith(f"stablekernels-{version}.dist-info/") for n in names)
        meta = b.read(f"stablekernels-{version}+cu130.dist-info/METADATA").decode()
        assert f"\nVersion: {version}+cu130\n" in meta
        assert f'VERSION = "{version}+cu130"' in b.read("stablekernels/_build_info.py").decode()
        for n in a.namelist():
            if n.endswith(".so"):
                assert a.read(n) == b.read(n), n
    with pytest.raises(ValueError, match="already has a local version label"):
        rel.label_wheel(labelled, "cu130", tmp_path / "again")
    # a wheel whose RECORD is wrong is caught
    bad = tmp_path / "bad" / real_wheel.name
    bad.parent.mkdir()
    with zipfile.ZipFile(real_wheel) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "stablekernels/_build_info.py":
                data += b"# edited after RECORD was written\n"
            zout.writestr(info, data)
    with pytest.raises(ValueError, match=r"RECORD hash or size of stablekernels/_build_info\.py"):
        rel.check_record(bad)


def test_static_index_keeps_releases_and_refuses_replacement(
    real_wheel: Path, tmp_path: Path
) -> None:
    """A later release adds to the static index; a file is never replaced."""
    out = tmp_path / "static"
    older = tmp_path / real_wheel.name.replace("-0.1.0-", "-0.0.9-")
    shutil.copy2(real_wheel, older)
    static_index.write(out, [("root", older)], {"version": "0.0.9", "wheels": []})
    static_index.write(out, [("root", real_wheel)], {"version": "0.1.0", "wheels": []})
    page = json.loads((out / "simple" / "stablekernels" / "index.json").read_text())
    assert [f["filename"] for f in page["files"]] == sorted([older.name, real_wheel.name])
    html = (out / "simple" / "stablekernels" / "index.html").read_text()
    assert (
        f'#sha256={sha256(real_wheel)}" data-requires-python="&gt;=3.10">{real_wheel.name}</a>'
        in html
    )
    assert sorted(p.name for p in (out / "manifests").iterdir()) == [
        "release-manifest-0.0.9.json",
        "release-manifest-0.1.0.json",
    ]
    other = tmp_path / "other" / real_wheel.name
    other.parent.mkdir()
    other.write_bytes(real_wheel.read_bytes() + b"\0")
    with pytest.raises(SystemExit, match="never replaced"):
        static_index.write(out, [("root", other)], {"version": "0.1.0", "wheels": []})


def test_dry_run_static_index_with_pip(real_wheel: Path, work: Path, tmp_path: Path) -> None:
    """--dry-run: build (given), gate, one matrix cell, sdist, a static PEP 503/691 index
    verified from loopback; then plain `python -m http.server` on that folder and pip."""
    static = work / "static"
    proc = run_release(
        "--dry-run", "--wheel", real_wheel, "--static-index", static, *MATRIX, *PYTEST, work=work
    )
    assert proc.returncode == 0, _out(proc)
    assert "nothing uploaded" in proc.stdout
    version = real_wheel.name.split("-")[1]
    labelled = real_wheel.name.replace(f"-{version}-", f"-{version}+cu130-")
    # PEP 691 JSON shape
    page = json.loads((static / "simple" / "stablekernels" / "index.json").read_text())
    assert page["meta"] == {"api-version": "1.0"} and page["name"] == "stablekernels"
    names = {f["filename"]: f for f in page["files"]}
    assert set(names) == {real_wheel.name, f"stablekernels-{version}.tar.gz"}
    for f in page["files"]:
        assert set(f) >= {"filename", "url", "hashes"} and len(f["hashes"]["sha256"]) == 64
        assert f["requires-python"] == ">=3.10"
    assert names[real_wheel.name]["hashes"]["sha256"] == sha256(real_wheel)
    projects = json.loads((static / "simple" / "index.json").read_text())
    assert projects["projects"] == [{"name": "stablekernels"}]
    variant_page = json.loads(
        (static / "cu130" / "simple" / "stablekernels" / "index.json").read_text()
    )
    assert [f["filename"] for f in variant_page["files"]] == [labelled]
    manifest = json.loads((static / "release-manifest.json").read_text())
    assert {w["filename"] for w in manifest["wheels"]} == {real_wheel.name, labelled}
    # pip reads the HTML pages served by the plain standard-library server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=static,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        for sub, spec, name in (
            ("", f"stablekernels=={version}", real_wheel.name),
            ("cu130/", f"stablekernels=={version}+cu130", labelled),
        ):
            dest = tmp_path / (sub or "root")
            pip = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-cache-dir",
                    "--only-binary=:all:",
                    "--index-url",
                    f"http://127.0.0.1:{port}/{sub}simple/",
                    "-d",
                    dest,
                    spec,
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert pip.returncode == 0, pip.stdout + pip.stderr
            assert sha256(dest / name) == sha256(static / sub / "files" / name)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_no_credentials_refused(real_wheel: Path, work: Path, index: Index) -> None:
    """No credentials: refused before anything is built or uploaded; a wrong password:
    the index refuses the first upload, and nothing is published."""
    proc = run_release(
        "--repository-url",
        index.url,
        "--wheel",
        real_wheel,
        *MATRIX,
        work=work,
        user=None,
        password=None,
    )
    assert proc.returncode == 1
    assert "no upload credentials" in _out(proc) and "nothing was published" in _out(proc)
    wrong = "wrong-" + secrets.token_hex(8)
    proc = run_release(
        "--repository-url",
        index.url,
        "--wheel",
        real_wheel,
        "--reuse-matrix",
        "--no-sdist",
        *MATRIX,
        work=work,
        password=wrong,
    )
    assert proc.returncode == 1, _out(proc)
    assert "authentication failed" in _out(proc)
    assert "nothing was published" in _out(proc)
    assert index.files("root") == [] and index.files("cu130") == []


def test_gate_failure_publishes_nothing(
    real_wheel: Path, work: Path, index: Index, tmp_path: Path
) -> None:
    """A wheel that fails the gate (a ceiling on torch) stops the release before any upload."""
    bad = rewrite_wheel(
        real_wheel,
        tmp_path / real_wheel.name,
        edit={
            "*METADATA": lambda t: t.replace(
                "Requires-Dist: torch>=2.10", "Requires-Dist: torch<3,>=2.10"
            )
        },
    )
    proc = run_release("--repository-url", index.url, "--wheel", bad, *MATRIX, work=work, out="bad")
    assert proc.returncode == 1, _out(proc)
    assert "FAILED at step gate" in _out(proc) and "nothing was published" in _out(proc)
    assert "metadata.torch" in _out(proc)
    assert index.files("root") == [] and index.files("cu130") == []


def test_release_publishes_and_installs_back(
    real_wheel: Path, work: Path, index: Index, tmp_path: Path
) -> None:
    """The whole release: publish to the root and the cu130 index, install back, verify."""
    proc = run_release(
        "--repository-url", index.url, "--wheel", real_wheel, "--reuse-matrix", *MATRIX, work=work
    )
    assert proc.returncode == 0, _out(proc)
    version = real_wheel.name.split("-")[1]
    labelled = real_wheel.name.replace(f"-{version}-", f"-{version}+cu130-")
    assert index.files("root") == sorted([real_wheel.name, f"stablekernels-{version}.tar.gz"])
    assert index.files("cu130") == [labelled]
    assert index.files("cu129") == []
    assert sha256(index.data / "root" / real_wheel.name) == sha256(real_wheel)
    out = proc.stdout
    assert out.count("verify   ") >= 2 and "release published and verified" in out
    manifest = json.loads((work / "out" / "release-manifest.json").read_text())
    wheels = {w["filename"]: w for w in manifest["wheels"]}
    assert set(wheels) == {real_wheel.name, labelled}
    for name, w in wheels.items():
        on_index = index.data / ("root" if w["index"] == "root" else "cu130") / name
        assert w["sha256"] == sha256(on_index)
        assert w["variant"] == "cu130" and w["torch_floor"] == "2.10"
        assert w["matrix_passed"] == ["2.11.0"]
        assert w["sass_archs"]
    assert manifest["git_revision"] and manifest["sdist"]["filename"].endswith(".tar.gz")
    # pip, as a user would: the root index serves the plain version
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-cache-dir",
            "--index-url",
            f"{index.url}simple/",
            "-d",
            tmp_path,
            "stablekernels",
            "--only-binary=:all:",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert sha256(tmp_path / real_wheel.name) == sha256(real_wheel)


def test_reupload_refused(real_wheel: Path, work: Path, index: Index, monkeypatch) -> None:
    """Publishing the same version again: refused up front, and by the index itself when
    twine tries, with a message naming the file and the index."""
    before = {n: sha256(index.data / "root" / n) for n in index.files("root")}
    proc = run_release(
        "--repository-url",
        index.url,
        "--wheel",
        real_wheel,
        "--reuse-matrix",
        *MATRIX,
        work=work,
        out="again",
    )
    assert proc.returncode == 1, _out(proc)
    assert "is already on" in _out(proc) and "never replaced" in _out(proc)
    assert "Traceback" not in _out(proc)
    assert {n: sha256(index.data / "root" / n) for n in index.files("root")} == before
    # the index's own refusal, through twine
    monkeypatch.setenv("TWINE_USERNAME", USER)
    monkeypatch.setenv("TWINE_PASSWORD", PASSWORD)
    with pytest.raises(rel.ReleaseError) as err:
        rel.upload(work / "out" / "upload" / "root" / real_wheel.name, index.url)
    assert real_wheel.name in err.value.message and index.url in err.value.message
    assert "already on the index" in err.value.message
    assert PASSWORD not in err.value.message


def test_corrupted_file_caught_by_verify(real_wheel: Path, work: Path, index: Index) -> None:
    """A file replaced on the index after the upload fails verification."""
    stored = index.data / "root" / real_wheel.name
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    proc = run_release("--verify-only", "--repository-url", index.url, work=work)
    assert proc.returncode == 1, _out(proc)
    assert "corrupted or was replaced" in _out(proc) or "lists " in _out(proc)
    assert real_wheel.name in _out(proc)
    shutil.copy2(real_wheel, stored)  # put the intact file back
