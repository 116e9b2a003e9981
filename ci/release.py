# SPDX-License-Identifier: Apache-2.0
"""The release (called by `nox -s release`): for every CUDA variant of ci/variants.toml
that builds on this machine, build -> wheel gate -> torch matrix -> publish -> verify.

    nox -s release -- --repository-url http://127.0.0.1:8080/       the whole release
    nox -s release -- --dry-run [--static-index DIR]                  everything but the upload
    nox -s release -- --matrix torch=2.11 python=3.11                 a part of the torch matrix
    nox -s release -- --verify-only --repository-url URL              verify a published release again

Per variant, two wheels are published: the built file with the plain version to the
root index (default variant only, with the sdist), and a copy labelled with the
variant (0.1.0+cu130: dist-info, METADATA, _build_info and RECORD rewritten; the
compiled libraries byte-identical) to the variant's own index, {URL}<variant>/.
Nothing is uploaded until every step passed for every wheel, and nothing is
uploaded if any file is already on its index. Upload credentials come from
TWINE_USERNAME / TWINE_PASSWORD or keyring, through twine's own environment: never
on a command line, never printed. After the upload each wheel is installed back
from its index into a fresh venv, imported, smoke-tested, and its sha256 and
installed files are checked against the built ones. The release manifest
(dist/release/release-manifest.json) records what was published; docs/release.md
says how to cut a release.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import matrix
import static_index
import variants as variants_mod
from _common import DIST, ROOT, git_revision, log, run, sha256, uv, wheel_info

OUT = DIST / "release"
PROJECT = "stablekernels"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
# top-level folders of a checkout that must never end up in the sdist
SDIST_NEVER = {"build", "dist", ".nox", ".venv", "reports", "site", "wheelhouse"}


class ReleaseError(Exception):
    """A step failed: the message says which step, which wheel, and why."""

    def __init__(self, step: str, subject: str, message: str) -> None:
        super().__init__(message)
        self.step, self.subject, self.message = step, subject, message


# ---------------------------------------------------------------- progress and summary


@dataclass
class Summary:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, step: str, subject: str, result: str, detail: str = "") -> None:
        self.rows.append((step, subject, result, detail))
        log(f"{step:8} {subject:58} {result}{(' - ' + detail) if detail else ''}")

    def table(self) -> str:
        head = ("step", "what", "result", "detail")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(3)]
        lines = [
            " | ".join(h.ljust(w) for h, w in zip(head[:3], widths, strict=True)) + " | detail"
        ]
        lines.append("-+-".join("-" * w for w in widths) + "-+-------")
        for r in self.rows:
            lines.append(
                " | ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + " | " + r[3]
            )
        return "\n".join(lines)


# ---------------------------------------------------------------- wheels and labels


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def check_record(wheel: Path) -> None:
    """Every file of the wheel is in RECORD with its hash and size, and nothing else is:
    a wheel whose RECORD is wrong is never published."""
    with zipfile.ZipFile(wheel) as zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        record_name = next((n for n in names if n.endswith(".dist-info/RECORD")), None)
        if record_name is None:
            raise ValueError(f"{wheel.name} has no RECORD")
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode())))
        listed = {}
        for row in rows:
            if not row:
                continue
            if len(row) != 3:
                raise ValueError(f"{wheel.name}: malformed RECORD line {row}")
            listed[row[0]] = (row[1], row[2])
        for name in names:
            if name == record_name:
                continue
            if name not in listed:
                raise ValueError(f"{wheel.name}: {name} is not in RECORD")
            data = zf.read(name)
            digest, size = listed[name]
            if digest != _record_hash(data) or size != str(len(data)):
                raise ValueError(f"{wheel.name}: RECORD hash or size of {name} is wrong")
        extra = set(listed) - set(names)
        if extra:
            raise ValueError(f"{wheel.name}: RECORD lists missing files {sorted(extra)}")


def record_hashes(wheel: Path) -> dict[str, str]:
    """RECORD of a wheel: file -> sha256=..., without RECORD itself."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        rows = csv.reader(io.StringIO(zf.read(name).decode()))
        return {r[0]: r[1] for r in rows if r and r[1]}


def label_wheel(src: Path, variant: str, dest_dir: Path) -> Path:
    """A copy of `src` whose version carries the variant as local label (0.1.0+cu130):
    the file name, the dist-info folder, METADATA's Version, _build_info.VERSION and
    RECORD are rewritten; every other file (the compiled libraries) is byte-identical."""
    name, version, rest = src.name.split("-", 2)
    if "+" in version:
        raise ValueError(f"{src.name} already has a local version label")
    new_version = f"{version}+{variant}"
    old_info, new_info = f"{name}-{version}.dist-info/", f"{name}-{new_version}.dist-info/"
    dest = dest_dir / f"{name}-{new_version}-{rest}"
    with zipfile.ZipFile(src) as zin:
        entries = [(i, zin.read(i)) for i in zin.infolist() if not i.is_dir()]
    out: list[tuple[zipfile.ZipInfo, bytes]] = []
    record_info = None
    for info, data in entries:
        arcname = info.filename
        if arcname.startswith(old_info):
            arcname = new_info + arcname[len(old_info) :]
        if arcname == new_info + "RECORD":
            record_info = info
            continue
        if arcname == new_info + "METADATA":
            text, n = re.subn(
                r"^Version: .*$", f"Version: {new_version}", data.decode(), count=1, flags=re.M
            )
            if n != 1:
                raise ValueError(f"{src.name}: METADATA has no Version line")
            data = text.encode()
        elif arcname == f"{PROJECT}/_build_info.py":
            text, n = re.subn(
                r'^VERSION = "[^"]*"', f'VERSION = "{new_version}"', data.decode(), flags=re.M
            )
            if n != 1:
                raise ValueError(f"{src.name}: _build_info.py has no VERSION line")
            data = text.encode()
        new = zipfile.ZipInfo(arcname, date_time=info.date_time)
        new.external_attr = info.external_attr
        new.compress_type = zipfile.ZIP_DEFLATED
        out.append((new, data))
    if record_info is None:
        raise ValueError(f"{src.name} has no RECORD")
    lines = [f"{i.filename},{_record_hash(d)},{len(d)}" for i, d in out]
    lines.append(f"{new_info}RECORD,,")
    record = zipfile.ZipInfo(new_info + "RECORD", date_time=record_info.date_time)
    record.external_attr = record_info.external_attr
    record.compress_type = zipfile.ZIP_DEFLATED
    out.append((record, ("\n".join(lines) + "\n").encode()))
    dest_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as zout:
        for info, data in out:
            zout.writestr(info, data)
    check_record(dest)
    return dest


def _show(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def file_version(filename: str) -> str | None:
    """The version in a wheel's or an sdist's file name."""
    if filename.endswith(".whl"):
        return filename.split("-")[1]
    if filename.endswith(".tar.gz"):
        return filename.removesuffix(".tar.gz").rpartition("-")[2]
    return None


def wheel_version(path: Path) -> str:
    return path.name.split("-")[1]


# ---------------------------------------------------------------- index access


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data):
        if self._href is not None and data.strip():
            self.links.append((data.strip(), self._href))
            self._href = None


def project_files(simple_url: str, project: str = PROJECT) -> dict[str, tuple[str, str | None]]:
    """Files of `project` on a simple index: filename -> (absolute URL, sha256 or None).
    A project the index does not hold (404, or a redirect to a fallback index) is {}."""
    page = urllib.parse.urljoin(simple_url, f"{project}/")
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(page, headers={"Accept": f"{JSON_ACCEPT}, text/html;q=0.1"})
    try:
        with opener.open(req, timeout=60) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = resp.read()
    except urllib.error.HTTPError as err:
        if err.code in (301, 302, 303, 307, 308, 404):
            return {}
        raise
    files: dict[str, tuple[str, str | None]] = {}
    if JSON_ACCEPT in ctype:
        for f in json.loads(body)["files"]:
            files[f["filename"]] = (
                urllib.parse.urljoin(page, f["url"]),
                f.get("hashes", {}).get("sha256"),
            )
        return files
    parser = _Links()
    parser.feed(body.decode())
    for text, href in parser.links:
        url, _, frag = urllib.parse.urljoin(page, href).partition("#")
        m = re.fullmatch(r"sha256=([0-9a-f]{64})", frag)
        files[text] = (url, m.group(1) if m else None)
    return files


# ---------------------------------------------------------------- credentials and upload


def _credentials(repository_url: str) -> tuple[str | None, str | None, str]:
    """(username, password, source) from the environment or keyring; never printed."""
    user = os.environ.get("TWINE_USERNAME")
    password = os.environ.get("TWINE_PASSWORD")
    if user and password:
        return user, password, "environment (TWINE_USERNAME, TWINE_PASSWORD)"
    try:
        import keyring

        if user:
            password = keyring.get_password(repository_url, user)
        else:
            cred = keyring.get_credential(repository_url, None)
            user, password = (cred.username, cred.password) if cred else (None, None)
    except Exception:
        return user, None, "none"
    return user, password, "keyring" if password else "none"


def redact(text: str) -> str:
    secret = os.environ.get("TWINE_PASSWORD")
    return text.replace(secret, "****") if secret else text


def upload(path: Path, repository_url: str) -> None:
    """One file to one index with twine; a refusal is a ReleaseError naming both."""
    twine = shutil.which("twine", path=str(Path(sys.executable).parent)) or shutil.which("twine")
    if not twine:
        raise ReleaseError("publish", path.name, "twine is not installed (nox -s release has it)")
    cmd = [
        twine,
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        repository_url,
        str(path),
    ]
    log("$ " + " ".join(cmd[1:]))
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    output = redact(proc.stdout + proc.stderr)
    if proc.returncode == 0:
        return
    tail = " / ".join(line.strip() for line in output.strip().splitlines()[-3:])
    if re.search(r"\b(400|409)\b", output) and path.name in project_files(
        urllib.parse.urljoin(repository_url, "simple/")
    ):
        msg = (
            f"{repository_url} refused {path.name}: that file is already on the index, and a "
            "published version is never replaced; bump the version in pyproject.toml"
        )
    elif re.search(r"\b(401|403)\b", output):
        msg = (
            f"{repository_url} refused {path.name}: authentication failed; check TWINE_USERNAME "
            "and TWINE_PASSWORD (or keyring) for this index"
        )
    elif "Credential not found" in output or "NonInteractive" in output:
        msg = (
            f"no upload credentials for {repository_url} (TWINE_USERNAME/TWINE_PASSWORD or keyring)"
        )
    else:
        msg = f"twine upload of {path.name} to {repository_url} failed: {tail}"
    raise ReleaseError("publish", path.name, msg)


# ---------------------------------------------------------------- verify


SMOKE = r"""
import json, sys, torch, stablekernels
expected = sys.argv[1]
assert stablekernels.__version__ == expected, (stablekernels.__version__, expected)
torch.manual_seed(0)
x = torch.randn(8, 256)
w = torch.randn(256)
out = stablekernels.rms_norm(x, w, 1e-6)
ref = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w
torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
assert torch.ops.stablekernels.rms_norm.default is not None
facts = {"version": stablekernels.__version__, "torch": torch.__version__}
import runpy  # `python -m stablekernels`, the environment report, in this same process
try:
    runpy.run_module("stablekernels", run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as err:
    code = err.code or 0
facts["report_exit"] = code
print(json.dumps(facts))
"""

INSTALLED_RECORD = r"""
import base64, hashlib, json, sys
from importlib import metadata
dist = metadata.distribution("stablekernels")
out = {}
for f in dist.files:
    if f.hash is None:
        continue
    data = f.locate().read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    out[str(f)] = {"record": f"{f.hash.mode}={f.hash.value}", "disk": f"sha256={digest}"}
print(json.dumps({"version": dist.version, "files": out}))
"""


def verify(
    simple_url: str,
    wheel: Path,
    expected_sha: str,
    torch_version: str,
    work: Path,
    summary: Summary,
) -> None:
    """Install `wheel`'s version from the index into a fresh venv and prove it is the built one."""
    name = wheel.name

    def fail(msg: str) -> ReleaseError:
        return ReleaseError("verify", name, msg)

    # 1. the index lists the file, with the built sha256, and serves those bytes
    try:
        files = project_files(simple_url)
    except (urllib.error.URLError, OSError) as err:
        raise fail(f"cannot read {simple_url}{PROJECT}/: {err}") from None
    if name not in files:
        raise fail(f"{simple_url} does not list {name} (it lists {sorted(files) or 'nothing'})")
    url, listed_sha = files[name]
    if listed_sha and listed_sha != expected_sha:
        raise fail(
            f"{simple_url} lists {name} with sha256 {listed_sha}, the release built {expected_sha}"
        )
    download = work / "download" / name
    download.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=300) as resp, open(download, "wb") as f:
        shutil.copyfileobj(resp, f)
    got = sha256(download)
    if got != expected_sha:
        raise fail(
            f"the file {name} served by {simple_url} has sha256 {got}, but the release built "
            f"{expected_sha}: the copy on the index is corrupted or was replaced"
        )
    if wheel_platform(wheel) != host_platform():
        summary.add(
            "verify",
            name,
            "PASS",
            f"from {simple_url}: sha256 {expected_sha[:12]} (a {wheel_platform(wheel)} wheel: "
            f"not installed on this {host_platform()} machine)",
        )
        return
    # 2. a fresh venv: torch, then stablekernels from the index only
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    py = str(venv / "bin" / "python")
    for cmd in (
        [uv(), "venv", "-q", "--python", sys.executable, venv],
        [uv(), "pip", "install", "-q", "--python", py, f"torch=={torch_version}"],
    ):
        if run(cmd, env=env, check=False).returncode != 0:
            raise fail(f"preparing the verify venv failed: {' '.join(map(str, cmd[:4]))} ...")
    version = wheel_version(wheel)
    proc = run(
        [
            uv(),
            "pip",
            "install",
            "-q",
            "--python",
            py,
            "--no-cache",
            "--no-deps",
            "--index-url",
            simple_url,
            f"{PROJECT}=={version}",
        ],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise fail(
            f"installing {PROJECT}=={version} from {simple_url} failed: {proc.stderr.strip()}"
        )
    # 3. the installed files are those of the built wheel, and RECORD matches the disk
    proc = subprocess.run([py, "-c", INSTALLED_RECORD], capture_output=True, text=True, cwd="/")
    if proc.returncode != 0:
        raise fail(f"reading the installed RECORD failed: {proc.stderr.strip()[-500:]}")
    installed = json.loads(proc.stdout)
    built = record_hashes(wheel)
    for path, digest in built.items():
        got_entry = installed["files"].get(path)
        if got_entry is None:
            raise fail(f"{path} of {name} is not installed")
        if got_entry["record"] != digest or got_entry["disk"] != digest:
            raise fail(f"the installed {path} differs from the built wheel's")
    # 4. import, a CPU op against its reference, the environment report
    proc = subprocess.run(
        [py, "-c", SMOKE, version], capture_output=True, text=True, cwd="/", timeout=600
    )
    if proc.returncode != 0:
        raise fail(f"smoke test failed: {proc.stderr.strip()[-800:]}")
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    if facts["report_exit"] != 0:
        raise fail(f"`python -m {PROJECT}` exited {facts['report_exit']}: {proc.stdout[-800:]}")
    summary.add(
        "verify",
        name,
        "PASS",
        f"from {simple_url}: sha256 {expected_sha[:12]}, {len(built)} files, "
        f"rms_norm under torch {facts['torch']}",
    )
    shutil.rmtree(venv, ignore_errors=True)


# ---------------------------------------------------------------- the steps


@dataclass
class VariantBuild:
    variant: str
    default: bool
    archs: str
    toolchain: str
    platform: str
    wheel: Path | None = None  # the built wheel (plain version)
    labelled: Path | None = None  # the +<variant> copy
    info: dict = field(default_factory=dict)
    matrix_cells: list[dict] = field(default_factory=list)


def host_platform() -> str:
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine()
    )


def wheel_platform(path: Path) -> str:
    tag = path.name.removesuffix(".whl").split("-")[-1]
    return next((p for p in ("x86_64", "aarch64") if tag.endswith(p)), tag)


def plan(
    config: dict, chosen: list[str], summary: Summary, given: list[Path] = ()
) -> list[VariantBuild]:
    """The wheels of this release: the --wheel files given (any variant, any platform:
    CI's wheels), or else every variant of ci/variants.toml that builds here."""
    here = host_platform()
    out = []
    unknown = set(chosen) - set(config["variant"])
    if unknown:
        raise ReleaseError("plan", ",".join(sorted(unknown)), "not a variant of ci/variants.toml")
    if given:
        for path in given:
            if not path.is_file():
                raise ReleaseError("plan", str(path), "no such wheel")
            variant = wheel_info(path)["variant"]
            if variant not in config["variant"]:
                raise ReleaseError(
                    "plan", path.name, f"variant {variant!r} is not in variants.toml"
                )
            if chosen and variant not in chosen:
                continue
            vb = VariantBuild(
                variant,
                bool(config["variant"][variant].get("default", False)),
                "given",
                "given",
                wheel_platform(path),
                wheel=path,
            )
            if any((o.variant, o.platform) == (vb.variant, vb.platform) for o in out):
                raise ReleaseError(
                    "plan", path.name, f"two wheels of {variant}/{vb.platform} given"
                )
            out.append(vb)
        if not out:
            raise ReleaseError("plan", "--wheel", "no given wheel is of a chosen variant")
        return sorted(out, key=lambda vb: (not vb.default, vb.variant, vb.platform))
    for b in variants_mod.builds(config):
        if b.platform != here or (chosen and b.variant not in chosen):
            continue
        toolchain = variants_mod.build_here(config, b.variant)
        if toolchain is None:
            summary.add("plan", b.variant, "SKIP", "built by CI only (ci/variants.toml)")
            continue
        out.append(VariantBuild(b.variant, b.default, b.archs, toolchain, b.platform))
    if not out:
        raise ReleaseError("plan", here, "no variant of ci/variants.toml builds on this machine")
    return out


def step_build(vb: VariantBuild, args: argparse.Namespace, summary: Summary) -> None:
    if vb.wheel is not None:
        how = "given (--wheel)"
    elif args.skip_build:
        found = [
            w
            for w in sorted(DIST.glob(f"{PROJECT}-*.whl"))
            if wheel_info(w)["variant"] == vb.variant
        ]
        if len(found) != 1:
            raise ReleaseError(
                "build",
                vb.variant,
                f"--skip-build: expected one {vb.variant} wheel in dist/, found {len(found)}",
            )
        vb.wheel = found[0]
        how = "from dist/ (--skip-build)"
    else:
        out = OUT / "build" / vb.variant
        proc = run(
            [
                sys.executable,
                ROOT / "ci" / "build_wheel.py",
                "--variant",
                vb.variant,
                "--archs",
                vb.archs,
                "--cuda-toolchain",
                vb.toolchain,
                "--out",
                out,
            ],
            check=False,
        )
        wheels = sorted(out.glob(f"{PROJECT}-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise ReleaseError("build", vb.variant, f"ci/build_wheel.py exited {proc.returncode}")
        vb.wheel = wheels[0]
        how = f"built ({vb.toolchain} toolchain, archs {vb.archs})"
    vb.info = wheel_info(vb.wheel)
    if "+" in vb.info["version"]:
        raise ReleaseError("build", vb.wheel.name, "the built wheel already has a local label")
    try:
        check_record(vb.wheel)
    except ValueError as err:
        raise ReleaseError("build", vb.wheel.name, str(err)) from None
    summary.add("build", vb.wheel.name, "PASS", f"{how}, sha256 {vb.info['sha256'][:12]}")


def step_label(vb: VariantBuild, summary: Summary) -> None:
    try:
        vb.labelled = label_wheel(vb.wheel, vb.variant, OUT / "upload" / vb.variant)
    except ValueError as err:
        raise ReleaseError("label", vb.wheel.name, str(err)) from None
    summary.add(
        "label", vb.labelled.name, "PASS", f"RECORD checked, sha256 {sha256(vb.labelled)[:12]}"
    )


def step_gate(wheels: list[Path], summary: Summary) -> None:
    reports = OUT / "gate"
    shutil.rmtree(reports, ignore_errors=True)
    proc = run(
        [sys.executable, ROOT / "ci" / "audit.py", "--reports", reports, *wheels], check=False
    )
    failed = []
    for w in wheels:
        report = reports / f"audit-{w.name.removesuffix('.whl')}.json"
        if not report.exists():
            summary.add("gate", w.name, "FAIL", "no gate report")
            failed.append(w.name)
            continue
        data = json.loads(report.read_text())
        bad = [c["check"] for c in data["checks"] if c["result"] == "fail"]
        if data["passed"]:
            summary.add("gate", w.name, "PASS", f"report {_show(report)}")
        else:
            summary.add("gate", w.name, "FAIL", f"failed: {', '.join(bad)}")
            failed.append(w.name)
    if failed or proc.returncode != 0:
        raise ReleaseError("gate", ", ".join(failed) or "?", "the wheel gate failed")


def _cells_for(sha: str, key: str, dirs: list[Path] | None = None) -> list[dict]:
    """Matrix cells of this wheel (by sha256) and torch release, from reports/cells/ or
    the folders given (CI: the torch-matrix job's reports)."""
    cells = []
    for folder in dirs or [matrix.CELLS_DIR]:
        for path in sorted(folder.rglob("*.json")):
            try:
                cell = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if (
                isinstance(cell, dict)
                and cell.get("wheel_sha256") == sha
                and cell.get("release") == key
            ):
                cells.append(cell)
    return cells


def step_matrix(vb: VariantBuild, args: argparse.Namespace, summary: Summary) -> None:
    sel = matrix.parse_selection(args.matrix)
    config = matrix.load_config()
    keys = sel.get("torch") or [r["key"] for r in config["release"]]
    pythons = [f"python={','.join(sel['python'])}"] if sel.get("python") else []
    sha = vb.info["sha256"]
    for key in keys:
        release = next(r for r in config["release"] if r["key"] == key)
        if args.matrix_cells:  # recorded elsewhere (CI); nothing runs here
            cells = _cells_for(sha, key, args.matrix_cells)
            if not cells and release.get("optional"):
                summary.add("matrix", vb.wheel.name, "SKIP", f"torch {key}: optional, not recorded")
                continue
            if not cells:
                raise ReleaseError(
                    "matrix",
                    vb.wheel.name,
                    f"no matrix cell for torch {key} of this wheel (sha256 {sha[:12]}) in "
                    + ", ".join(map(str, args.matrix_cells)),
                )
        else:
            cells = _cells_for(sha, key) if args.reuse_matrix else []
        reused = bool(cells) and all(c["result"] in ("passed", "refused") for c in cells)
        if not reused and not args.matrix_cells:
            for old in _cells_for(sha, key):
                (matrix.CELLS_DIR / f"{old['id']}.json").unlink(missing_ok=True)
            proc = run(
                [
                    sys.executable,
                    ROOT / "ci" / "matrix.py",
                    "--release",
                    key,
                    f"wheel={vb.wheel}",
                    *pythons,
                    *(["--", *args.pytest_args] if args.pytest_args else []),
                ],
                check=False,
            )
            cells = _cells_for(sha, key)
            if release.get("optional") and not cells and proc.returncode == 0:
                summary.add("matrix", vb.wheel.name, "SKIP", f"torch {key}: optional, not here")
                continue
            if proc.returncode != 0 or not cells:
                raise ReleaseError(
                    "matrix", vb.wheel.name, f"the torch matrix failed at torch {key}"
                )
        bad = [c for c in cells if c["result"] not in ("passed", "refused")]
        if bad:
            raise ReleaseError("matrix", vb.wheel.name, f"torch {key}: cell {bad[0]['id']} failed")
        vb.matrix_cells.extend(cells)
        detail = ", ".join(f"{c['id']} {c['result']}" for c in cells)
        summary.add(
            "matrix", vb.wheel.name, "PASS", detail + (" (recorded earlier)" if reused else "")
        )


def step_sdist(summary: Summary) -> Path:
    out = OUT / "sdist"
    shutil.rmtree(out, ignore_errors=True)
    proc = run(
        [
            uv(),
            "build",
            "--sdist",
            "--no-build-isolation",
            "--python",
            sys.executable,
            "--out-dir",
            out,
            ROOT,
        ],
        check=False,
    )
    sdists = sorted(out.glob(f"{PROJECT}-*.tar.gz"))
    if proc.returncode != 0 or len(sdists) != 1:
        raise ReleaseError("sdist", PROJECT, "uv build --sdist failed")
    with tarfile.open(sdists[0]) as tf:
        stray = sorted(
            {
                m.name.split("/")[1]
                for m in tf.getmembers()
                if m.name.count("/") >= 1 and m.name.split("/")[1] in SDIST_NEVER
            }
        )
    if stray:
        raise ReleaseError(
            "sdist", sdists[0].name, f"holds build or environment folders: {', '.join(stray)}"
        )
    twine = shutil.which("twine", path=str(Path(sys.executable).parent)) or "twine"
    proc = run([twine, "check", "--strict", sdists[0]], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ReleaseError("sdist", sdists[0].name, f"twine check: {proc.stdout.strip()}")
    summary.add(
        "sdist", sdists[0].name, "PASS", f"twine check passed, sha256 {sha256(sdists[0])[:12]}"
    )
    return sdists[0]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:3])


def _torch_of(cell: dict) -> str:
    """The torch release a matrix cell installed, as ci/matrix.toml pins it (2.11.0), the
    version a user installs; the cell's torch.__version__ may carry a local label."""
    for r in matrix.load_config()["release"]:
        if r["key"] == cell["release"]:
            return r["torch"]
    return cell["torch"].split("+")[0]


def manifest(
    builds: list[VariantBuild], sdist: Path | None, base_url: str | None, skip_root: bool = False
) -> dict:
    wheels = []
    for vb in builds:
        passed = sorted(
            {_torch_of(c) for c in vb.matrix_cells if c["result"] == "passed"}, key=_version_key
        )
        refused = sorted(
            {_torch_of(c) for c in vb.matrix_cells if c["result"] == "refused"}, key=_version_key
        )
        for path, index in ((vb.wheel, "root"), (vb.labelled, vb.variant)):
            if index == "root" and (skip_root or not vb.default):
                continue
            wheels.append(
                {
                    "filename": path.name,
                    "sha256": sha256(path),
                    "size": path.stat().st_size,
                    "version": wheel_version(path),
                    "variant": vb.variant,
                    "default_variant": vb.default,
                    "index": index,
                    "index_url": (base_url + ("" if index == "root" else f"{index}/") + "simple/")
                    if base_url
                    else None,
                    "cuda": vb.info["cuda"],
                    "sass_archs": vb.info["sass_archs"],
                    "ptx_archs": vb.info["ptx_archs"],
                    "torch_floor": vb.info["torch_floor"],
                    "torch_headers": vb.info["torch_headers"],
                    "matrix_passed": passed,
                    "matrix_refused": refused,
                    "matrix_cells": [
                        {k: c[k] for k in ("id", "torch", "python", "result")}
                        for c in vb.matrix_cells
                    ],
                    "built_from": vb.wheel.name,
                }
            )
    return {
        "project": PROJECT,
        "version": wheel_version(builds[0].wheel),
        "git_revision": git_revision(),
        "built_git_revision": builds[0].info["git_revision"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wheels": wheels,
        "sdist": {"filename": sdist.name, "sha256": sha256(sdist), "index": "root"}
        if sdist
        else None,
    }


def targets(builds: list[VariantBuild], sdist: Path | None) -> list[tuple[str, Path]]:
    """(index, file): index "root" or a variant name."""
    out = []
    for vb in builds:
        if vb.default:
            out.append(("root", vb.wheel))
        out.append((vb.variant, vb.labelled))
    if sdist:
        out.append(("root", sdist))
    return out


def index_urls(base: str, index: str) -> tuple[str, str]:
    """(upload URL, simple URL) of an index below the base URL."""
    upload_url = base if index == "root" else urllib.parse.urljoin(base, f"{index}/")
    return upload_url, urllib.parse.urljoin(upload_url, "simple/")


def project_version() -> str:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def early_check(base: str, indexes: list[str], version: str, summary: Summary) -> None:
    """Before building: upload credentials exist, and no index holds this version yet
    (so a long build is not spent on a release that cannot go out)."""
    _require_credentials(base, summary)
    for index in indexes:
        simple = index_urls(base, index)[1]
        try:
            present = project_files(simple)
        except (urllib.error.URLError, OSError) as err:
            raise ReleaseError("publish", simple, f"cannot read {simple}: {err}") from None
        label = version if index == "root" else f"{version}+{index}"
        clash = sorted(n for n in present if file_version(n) == label)
        if clash:
            raise ReleaseError(
                "publish",
                clash[0],
                f"version {label} is already on {simple} ({', '.join(clash)}): a published "
                "version is never replaced; bump the version in pyproject.toml",
            )


def _require_credentials(base: str, summary: Summary) -> None:
    user, password, source = _credentials(base)
    if not user or not password:
        raise ReleaseError(
            "publish",
            base,
            f"no upload credentials for {base}: set TWINE_USERNAME and TWINE_PASSWORD in the "
            "environment, or store them in keyring",
        )
    summary.add("publish", base, "OK", f"credentials of user {user!r} from {source}")


def preflight(base: str, files: list[tuple[str, Path]], summary: Summary) -> None:
    """Right before the first upload: credentials exist, and no file is on its index yet."""
    _require_credentials(base, summary)
    for index, path in files:
        _, simple = index_urls(base, index)
        try:
            present = project_files(simple)
        except (urllib.error.URLError, OSError) as err:
            raise ReleaseError("publish", path.name, f"cannot read {simple}: {err}") from None
        if path.name in present:
            raise ReleaseError(
                "publish",
                path.name,
                f"{path.name} is already on {simple}: a published version is never replaced; "
                "bump the version in pyproject.toml",
            )


def verify_all(
    builds: list[VariantBuild],
    files: list[tuple[str, Path]],
    base: str,
    torch_version: str,
    summary: Summary,
    simple_override: str | None = None,
) -> None:
    work = Path(tempfile.mkdtemp(prefix="sk-verify-", dir=OUT))
    try:
        for index, path in files:
            if not path.name.endswith(".whl"):
                continue
            simple = index_urls(base, index)[1]
            if index == "root" and simple_override:
                simple = simple_override
            verify(simple, path, sha256(path), torch_version, work, summary)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verify_torch(builds: list[VariantBuild], requested: str | None) -> str:
    if requested:
        return requested
    passed = [_torch_of(c) for vb in builds for c in vb.matrix_cells if c["result"] == "passed"]
    if not passed:
        from versions import TORCH_TEST_DEFAULT

        return TORCH_TEST_DEFAULT
    return max(passed, key=_version_key)


def parse_args(argv: list[str]) -> argparse.Namespace:
    argv, pytest_args = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--repository-url",
        help="base URL of the indexes: plain versions upload here, <variant> wheels to URL<variant>/",
    )
    p.add_argument(
        "--index-url",
        help="simple index to verify the root index's wheel from (default: <repository-url>simple/)",
    )
    p.add_argument("--dry-run", action="store_true", help="everything but the upload")
    p.add_argument(
        "--static-index",
        type=Path,
        help="also write a static PEP 503 + PEP 691 index of the release into this folder",
    )
    p.add_argument(
        "--variant", default="", help="comma-separated variants (default: all buildable here)"
    )
    p.add_argument(
        "--matrix",
        nargs="+",
        default=[],
        metavar="SEL",
        help="torch matrix selection as for ci/matrix.py: torch=2.11,2.15 python=3.11 "
        "(default: the whole matrix of ci/matrix.toml)",
    )
    p.add_argument(
        "--reuse-matrix",
        action="store_true",
        help="reuse matrix cells recorded in reports/cells/ for this exact wheel (by sha256)",
    )
    p.add_argument(
        "--wheel",
        type=Path,
        action="append",
        default=[],
        help="release this built wheel (no build)",
    )
    p.add_argument("--skip-build", action="store_true", help="release the wheel(s) in dist/")
    p.add_argument("--no-sdist", action="store_true", help="publish no sdist")
    p.add_argument(
        "--matrix-cells",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="take the torch matrix from the cells recorded in DIR (CI's torch-matrix job) "
        "instead of running it; a missing cell fails the release",
    )
    p.add_argument(
        "--skip-root",
        action="store_true",
        help="publish only to the variant indexes (CI: the root index is PyPI, published by "
        "trusted publishing)",
    )
    p.add_argument("--verify-torch", help="torch for the verify venv (default: newest passed)")
    p.add_argument(
        "--verify-only",
        action="store_true",
        help="only verify: the files of dist/release/release-manifest.json, from the index",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help="work folder: builds, upload copies, gate reports, manifest (default: dist/release)",
    )
    args = p.parse_args(argv)
    args.pytest_args = pytest_args
    if args.repository_url and not args.repository_url.endswith("/"):
        args.repository_url += "/"
    if not args.dry_run and not args.repository_url:
        p.error("--repository-url URL is needed (or --dry-run)")
    return args


def verify_only(args: argparse.Namespace, summary: Summary) -> None:
    path = OUT / "release-manifest.json"
    if not path.exists():
        raise ReleaseError("verify", str(path), "no release manifest: run the release first")
    data = json.loads(path.read_text())
    work = Path(tempfile.mkdtemp(prefix="sk-verify-", dir=OUT))
    try:
        for w in data["wheels"]:
            wheel = OUT / "upload" / w["index"] / w["filename"]
            if not wheel.exists():
                raise ReleaseError("verify", w["filename"], f"{wheel} is missing")
            simple = index_urls(args.repository_url, w["index"])[1]
            if w["index"] == "root" and args.index_url:
                simple = args.index_url
            torch_version = args.verify_torch or (w["matrix_passed"] or [None])[-1]
            if torch_version is None:
                from versions import TORCH_TEST_DEFAULT

                torch_version = TORCH_TEST_DEFAULT
            verify(simple, wheel, w["sha256"], torch_version, work, summary)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def release(args: argparse.Namespace, summary: Summary) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if args.verify_only:
        if not args.repository_url:
            raise ReleaseError("verify", "-", "--verify-only needs --repository-url")
        verify_only(args, summary)
        return
    config = variants_mod.load()
    builds = plan(config, [v for v in args.variant.split(",") if v], summary, args.wheel)
    if not args.dry_run:
        indexes = list(
            dict.fromkeys(
                i for vb in builds for i in (["root"] if vb.default else []) + [vb.variant]
            )
        )
        indexes = [i for i in indexes if not (args.skip_root and i == "root")]
        early_check(args.repository_url, indexes, project_version(), summary)
    upload_dir = OUT / "upload"
    shutil.rmtree(upload_dir, ignore_errors=True)
    (OUT / "release-manifest.json").unlink(missing_ok=True)
    for vb in builds:
        step_build(vb, args, summary)
        step_label(vb, summary)
    step_gate([w for vb in builds for w in (vb.wheel, vb.labelled)], summary)
    for vb in builds:
        step_matrix(vb, args, summary)
    sdist = None if args.no_sdist else step_sdist(summary)
    # what gets published: copies under dist/release/upload/<index>/
    for vb in builds:
        if vb.default:
            (upload_dir / "root").mkdir(parents=True, exist_ok=True)
            vb.wheel = Path(shutil.copy2(vb.wheel, upload_dir / "root" / vb.wheel.name))
    if sdist:
        sdist = Path(shutil.copy2(sdist, upload_dir / "root" / sdist.name))
    files = targets(builds, sdist)
    data = manifest(builds, None if args.skip_root else sdist, args.repository_url, args.skip_root)
    manifest_path = OUT / "release-manifest.json"
    manifest_path.write_text(json.dumps(data, indent=2) + "\n")
    summary.add("manifest", _show(manifest_path), "PASS", f"{len(data['wheels'])} wheels")
    static_dir = args.static_index
    if args.dry_run and static_dir is None:
        static_dir = OUT / "static-index"
    if static_dir:
        static_index.write(static_dir, files, data)
        summary.add("index", str(static_dir), "PASS", "static PEP 503 + PEP 691 index written")
    torch_version = verify_torch(builds, args.verify_torch)
    if args.skip_root:
        files = [(index, path) for index, path in files if index != "root"]
        summary.add("publish", "root index", "SKIP", "--skip-root: published elsewhere (PyPI)")
    if args.dry_run:
        summary.add("publish", "-", "SKIP", "--dry-run: nothing uploaded")
        server, base = static_index.serve(static_dir)
        try:
            verify_all(builds, files, base, torch_version, summary)
        finally:
            server.shutdown()
        return
    base = args.repository_url
    preflight(base, files, summary)
    done = []
    for index, path in files:
        url = index_urls(base, index)[0]
        try:
            upload(path, url)
        except ReleaseError as err:
            if done:
                err.message += f" (already published before this: {', '.join(done)})"
            raise
        done.append(f"{path.name} -> {url}")
        summary.add("publish", path.name, "PASS", f"uploaded to {url}")
    verify_all(builds, files, base, torch_version, summary, args.index_url)


def main(argv: list[str]) -> int:
    global OUT
    args = parse_args(argv)
    OUT = args.out.resolve()
    summary = Summary()
    start = time.monotonic()
    try:
        try:
            release(args, summary)
        except subprocess.CalledProcessError as err:
            cmd = err.cmd if isinstance(err.cmd, list) else [err.cmd]
            raise ReleaseError(
                "release",
                Path(str(cmd[0])).name,
                f"{' '.join(map(str, cmd[:4]))} ... exited {err.returncode}",
            ) from None
    except ReleaseError as err:
        summary.add(err.step, err.subject, "FAIL", err.message)
        print("\n" + redact(summary.table()), flush=True)
        published = any(r[0] == "publish" and r[2] == "PASS" and r[1] != "-" for r in summary.rows)
        log(
            f"release FAILED at step {err.step} ({err.subject}): {redact(err.message)}"
            + ("" if published else "; nothing was published")
        )
        return 1
    print("\n" + summary.table(), flush=True)
    what = (
        "verified"
        if args.verify_only
        else "dry run passed"
        if args.dry_run
        else "published and verified"
    )
    log(
        f"release {what} in {time.monotonic() - start:.0f} s; manifest {OUT / 'release-manifest.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
