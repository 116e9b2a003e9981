# SPDX-License-Identifier: Apache-2.0
"""A package index on loopback with upload authentication, laid out like the release's
indexes: the default variant at the root, each variant under /<variant>/.

    python ci/index_server.py --root DIR [--port 8080] [--user NAME] [--no-fallback]

Each index is a real pypiserver application (one package folder each), mounted on
one WSGI server:

    http://127.0.0.1:PORT/               upload URL of the root index (plain versions)
    http://127.0.0.1:PORT/simple/        its PEP 503 simple index
    http://127.0.0.1:PORT/cu130/         upload URL of the cu130 index (+cu130 versions)
    http://127.0.0.1:PORT/cu130/simple/  its simple index

Packages live in DIR/root/ and DIR/<variant>/. Uploads need a user of the htpasswd
file (--htpasswd, or DIR/htpasswd written by --user NAME with the password read from
STABLEKERNELS_INDEX_PASSWORD: never from the command line). Listing and downloading
are open. Re-uploading an existing file is refused (pypiserver's default). A project
the index does not hold (torch) is redirected to PyPI unless --no-fallback, so
`pip install stablekernels --index-url http://127.0.0.1:PORT/simple/` resolves torch.
Links carry sha256 fragments. Used by `nox -s index_server`, the release tests and
docs/release.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

PASSWORD_ENV = "STABLEKERNELS_INDEX_PASSWORD"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # one line per request, to stderr
        sys.stderr.write(f"[index] {self.address_string()} {format % args}\n")


def write_htpasswd(path: Path, user: str, password: str) -> None:
    from passlib.apache import HtpasswdFile

    ht = HtpasswdFile(str(path), new=not path.exists())
    ht.set_password(user, password)
    ht.save()


def _pypiserver_app(root: Path, htpasswd: Path, fallback: bool):
    import pypiserver

    root.mkdir(parents=True, exist_ok=True)
    return pypiserver.app(
        roots=[root],
        password_file=str(htpasswd),
        authenticate=["update"],
        disable_fallback=not fallback,
        overwrite=False,
        hash_algo="sha256",
    )


def make_app(root: Path, variants: list[str], htpasswd: Path, fallback: bool = True):
    """One WSGI application: the root index at /, each variant's index at /<variant>/."""
    base = _pypiserver_app(root / "root", htpasswd, fallback)
    mounted = {v: _pypiserver_app(root / v, htpasswd, fallback) for v in variants}

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        head, _, rest = path.lstrip("/").partition("/")
        if head in mounted:
            environ = dict(environ)
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "").rstrip("/") + "/" + head
            environ["PATH_INFO"] = "/" + rest
            return mounted[head](environ, start_response)
        return base(environ, start_response)

    return app


def serve(
    root: Path,
    variants: list[str],
    htpasswd: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    fallback: bool = True,
    quiet: bool = False,
):
    """Start the server in a thread; returns (server, base_url). server.shutdown() stops it."""
    server = make_server(
        host,
        port,
        make_app(root, variants, htpasswd, fallback),
        server_class=_ThreadingServer,
        handler_class=_Silent if quiet else _QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_port}/"


class _Silent(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


def main(argv: list[str]) -> int:
    import variants as variants_mod

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--root", type=Path, required=True, help="folder of the package folders")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port (default: 8080)")
    p.add_argument("--port-file", type=Path, help="write the port chosen here once listening")
    p.add_argument("--htpasswd", type=Path, help="htpasswd file of the upload users")
    p.add_argument(
        "--user",
        help=f"write DIR/htpasswd with this user, password from ${PASSWORD_ENV}",
    )
    p.add_argument(
        "--variants",
        help="comma-separated variant indexes to mount (default: every variant of ci/variants.toml)",
    )
    p.add_argument(
        "--no-fallback",
        action="store_true",
        help="answer 404 for projects not held here instead of redirecting to PyPI",
    )
    args = p.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    htpasswd = args.htpasswd or args.root / "htpasswd"
    if args.user:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            p.error(f"--user needs the password in ${PASSWORD_ENV}")
        write_htpasswd(htpasswd, args.user, password)
    if not htpasswd.is_file():
        p.error(f"no htpasswd file at {htpasswd}: pass --htpasswd FILE or --user NAME")
    names = [v for v in (args.variants or "").split(",") if v] or list(
        variants_mod.load()["variant"]
    )
    server, url = serve(
        args.root,
        names,
        htpasswd,
        host=args.host,
        port=args.port,
        fallback=not args.no_fallback,
    )
    print(f"[index] serving {url} (simple index {url}simple/)", flush=True)
    for v in names:
        print(f"[index]   {v}: upload {url}{v}/, simple index {url}{v}/simple/", flush=True)
    if args.port_file:
        args.port_file.write_text(f"{server.server_port}\n")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
