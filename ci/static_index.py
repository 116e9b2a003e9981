# SPDX-License-Identifier: Apache-2.0
"""A static package index of the release, for object-storage hosting (`nox -s release --
--static-index DIR`): PEP 503 HTML and PEP 691 JSON pages with sha256 hashes and
Requires-Python, the default variant at the root and each variant below it.

    DIR/simple/index.html, index.json                    project list (root index)
    DIR/simple/stablekernels/index.html, index.json      its files (plain versions, sdist)
    DIR/files/<file>                                     the files of the root index
    DIR/<variant>/simple/..., DIR/<variant>/files/...    the same, per variant (+<variant>)
    DIR/release-manifest.json                            the newest release's manifest
    DIR/manifests/release-manifest-<version>.json        every release's manifest

Writing into a folder that already holds releases adds the new files and rewrites
the pages from every file present, so older versions stay installable. A file of
the same name with other contents is refused: a published file is never replaced.

The pages are plain files: a host that serves DIR/simple/stablekernels/index.html
for .../simple/stablekernels/ serves PEP 503 (what pip and uv read); a host that
can pick index.json when the request's Accept header asks for
application/vnd.pypi.simple.v1+json serves PEP 691 too (serve() below does).
"""

from __future__ import annotations

import html
import json
import shutil
import tarfile
import threading
import zipfile
from email.parser import HeaderParser
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _common import sha256

PROJECT = "stablekernels"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def requires_python(path: Path) -> str | None:
    """Requires-Python of a wheel (METADATA) or an sdist (PKG-INFO)."""
    text = None
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            text = zf.read(name).decode()
    elif path.name.endswith(".tar.gz"):
        with tarfile.open(path) as tf:
            member = next(
                m
                for m in tf.getmembers()
                if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
            )
            text = tf.extractfile(member).read().decode()
    if text is None:
        return None
    return HeaderParser().parsestr(text).get("Requires-Python")


def _write_pages(index_root: Path) -> int:
    files_dir = index_root / "files"
    files = sorted(p for p in files_dir.iterdir() if p.is_file()) if files_dir.is_dir() else []
    simple = index_root / "simple"
    project_dir = simple / PROJECT
    project_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for f in files:
        entries.append(
            {
                "filename": f.name,
                "url": f"../../files/{f.name}",
                "hashes": {"sha256": sha256(f)},
                "requires-python": requires_python(f),
            }
        )
    links = []
    for e in entries:
        rp = e["requires-python"]
        attr = f' data-requires-python="{html.escape(rp)}"' if rp else ""
        links.append(
            f'    <a href="{e["url"]}#sha256={e["hashes"]["sha256"]}"{attr}>'
            f"{html.escape(e['filename'])}</a><br>"
        )
    (project_dir / "index.html").write_text(
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>Links for {PROJECT}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {PROJECT}</h1>\n" + "\n".join(links) + "\n  </body>\n</html>\n"
    )
    (project_dir / "index.json").write_text(
        json.dumps(
            {
                "meta": {"api-version": "1.0"},
                "name": PROJECT,
                "files": [{k: v for k, v in e.items() if v is not None} for e in entries],
            },
            indent=2,
        )
        + "\n"
    )
    (simple / "index.html").write_text(
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
        f'    <a href="{PROJECT}/">{PROJECT}</a><br>\n  </body>\n</html>\n'
    )
    (simple / "index.json").write_text(
        json.dumps({"meta": {"api-version": "1.0"}, "projects": [{"name": PROJECT}]}, indent=2)
        + "\n"
    )
    return len(entries)


def write(out: Path, files: list[tuple[str, Path]], manifest: dict) -> None:
    """Add `files` ((index, path): index "root" or a variant) to the static index in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    touched = set()
    for index, path in files:
        root = out if index == "root" else out / index
        dest = root / "files" / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and sha256(dest) != sha256(path):
            raise SystemExit(
                f"{dest} exists with other contents: a published file is never replaced"
            )
        shutil.copy2(path, dest)
        touched.add(root)
    for root in sorted(touched):
        _write_pages(root)
    manifests = out / "manifests"
    manifests.mkdir(exist_ok=True)
    text = json.dumps(manifest, indent=2) + "\n"
    (manifests / f"release-manifest-{manifest['version']}.json").write_text(text)
    (out / "release-manifest.json").write_text(text)


class _Handler(SimpleHTTPRequestHandler):
    """Serves the folder; a directory asked for with the PEP 691 Accept type gets index.json."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if (
            path.is_dir()
            and self.path.endswith("/")
            and JSON_TYPE in self.headers.get("Accept", "")
        ):
            target = path / "index.json"
            if target.is_file():
                data = target.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", JSON_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return _Bytes(data)
        return super().send_head()

    def log_message(self, format, *args):
        pass


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, *_):
        data, self.data = self.data, b""
        return data

    def close(self):
        pass


def serve(folder: Path, host: str = "127.0.0.1", port: int = 0):
    """Serve `folder` on loopback in a thread: (server, base URL)."""
    server = ThreadingHTTPServer((host, port), partial(_Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_port}/"
