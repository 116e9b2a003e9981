# SPDX-License-Identifier: Apache-2.0
"""What every check receives: the unpacked wheel, the configuration, a scratch
folder, and the device code extracted once from each CUDA library."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tools
from .wheel import Library, Wheel

# cuobjdump names what it extracts <lib>.<n>.sm_<arch>.cubin (SASS) and
# <lib>.<n>.sm_<arch>.ptx (PTX for the virtual arch compute_<arch>).
_BLOB_RE = re.compile(r"\.sm_(?P<arch>\d+[a-z]?)\.(?P<kind>cubin|ptx)$")


@dataclass(frozen=True)
class Blob:
    """One piece of device code: SASS (a cubin) or PTX for one arch."""

    kind: str  # "sass" or "ptx"
    arch: str  # "80", "90a", ...
    file: str
    size: int  # bytes as extracted
    deflated: int  # bytes after deflate, about what it adds to the (zip) wheel

    @property
    def label(self) -> str:
        return f"sm_{self.arch}" if self.kind == "sass" else f"compute_{self.arch}"


@dataclass
class Context:
    wheel: Wheel
    config: dict[str, Any]
    workdir: Path
    _device_code: dict[str, list[Blob]] = field(default_factory=dict)

    def device_code(self, lib: Library) -> list[Blob]:
        """The SASS and PTX of a library, extracted with cuobjdump (once per library)."""
        if lib.arcname not in self._device_code:
            out = self.workdir / "device-code" / lib.arcname.replace("/", "__")
            out.mkdir(parents=True, exist_ok=True)
            proc = tools.run([tools.cuobjdump(), "-xelf", "all", "-xptx", "all", lib.path], cwd=out)
            if proc.returncode != 0:
                raise RuntimeError(f"cuobjdump failed on {lib.arcname}: {tools.tail(proc)}")
            blobs = []
            for f in sorted(out.iterdir()):
                m = _BLOB_RE.search(f.name)
                if not m:
                    continue
                data = f.read_bytes()
                blobs.append(
                    Blob(
                        kind="sass" if m["kind"] == "cubin" else "ptx",
                        arch=m["arch"],
                        file=f.name,
                        size=len(data),
                        deflated=len(zlib.compress(data, 6)),
                    )
                )
            self._device_code[lib.arcname] = blobs
        return self._device_code[lib.arcname]
