# SPDX-License-Identifier: Apache-2.0
"""An unpacked wheel: its name and tags, METADATA, _build_info.py and compiled libraries."""

from __future__ import annotations

import ast
import email.parser
import hashlib
import zipfile
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

DEVICE_CODE_SECTION = ".nv_fatbin"


@dataclass
class Library:
    """One compiled library (ELF shared object) inside the wheel."""

    arcname: str  # its path inside the wheel
    path: Path  # the unpacked file
    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)  # undefined dynamic symbols
    exports: list[str] = field(default_factory=list)  # defined global dynamic symbols
    sections: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.arcname.rsplit("/", 1)[-1]

    @property
    def is_extension_module(self) -> bool:
        return any(s.startswith(("PyInit_", "PyModExport_")) for s in self.exports)

    @property
    def has_device_code(self) -> bool:
        return DEVICE_CODE_SECTION in self.sections

    @classmethod
    def read(cls, arcname: str, path: Path) -> Library:
        lib = cls(arcname=arcname, path=path)
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for section in elf.iter_sections():
                lib.sections.append(section.name)
                if isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            lib.needed.append(tag.needed)
                        elif tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                            lib.runpath.append(
                                getattr(tag, "runpath", "") or getattr(tag, "rpath", "")
                            )
                elif isinstance(section, SymbolTableSection) and section.name == ".dynsym":
                    for sym in section.iter_symbols():
                        if not sym.name:
                            continue
                        if sym["st_shndx"] == "SHN_UNDEF":
                            lib.imports.append(sym.name)
                        elif sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK"):
                            lib.exports.append(sym.name)
        return lib


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def parse_build_info(text: str) -> dict[str, Any]:
    """The constants of a generated _build_info.py, read without importing it."""
    info: dict[str, Any] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    info[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return info


@dataclass
class Wheel:
    path: Path
    root: Path  # where it was unpacked
    name: str  # the distribution name
    version: Version
    filename_tags: frozenset[Tag]
    wheel_file_tags: list[str]
    metadata: Message
    files: list[str]
    libraries: list[Library]
    build_info: dict[str, Any]
    size: int
    sha256: str

    @classmethod
    def open(cls, path: Path, workdir: Path) -> Wheel:
        path = Path(path)
        name, version, _build, tags = parse_wheel_filename(path.name)
        root = workdir / "unpacked"
        root.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path) as zf:
            files = [i.filename for i in zf.infolist() if not i.is_dir()]
            zf.extractall(root)
        dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info = next(
            (f.split("/")[0] for f in files if f.endswith(".dist-info/METADATA")), dist_info
        )
        parser = email.parser.BytesParser()
        meta_path = root / dist_info / "METADATA"
        metadata = parser.parsebytes(meta_path.read_bytes()) if meta_path.exists() else Message()
        wheel_path = root / dist_info / "WHEEL"
        wheel_meta = (
            parser.parsebytes(wheel_path.read_bytes()) if wheel_path.exists() else Message()
        )
        package = str(canonicalize_name(name)).replace("-", "_")
        info_path = root / package / "_build_info.py"
        build_info = parse_build_info(info_path.read_text()) if info_path.exists() else {}
        libraries = [
            Library.read(f, root / f)
            for f in sorted(files)
            if (f.endswith(".so") or ".so." in f.rsplit("/", 1)[-1]) and _is_elf(root / f)
        ]
        return cls(
            path=path,
            root=root,
            name=str(name),
            version=version,
            filename_tags=tags,
            wheel_file_tags=wheel_meta.get_all("Tag") or [],
            metadata=metadata,
            files=files,
            libraries=libraries,
            build_info=build_info,
            size=path.stat().st_size,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        )

    @property
    def package(self) -> str:
        return str(canonicalize_name(self.name)).replace("-", "_")

    def requirements(self) -> list[tuple[str, Requirement | None]]:
        """Each Requires-Dist line with its parsed requirement (None when it does not parse)."""
        out = []
        for line in self.metadata.get_all("Requires-Dist") or []:
            try:
                out.append((line, Requirement(line)))
            except InvalidRequirement:
                out.append((line, None))
        return out

    def torch_floor(self) -> Version | None:
        """The X.Y of the `torch>=X.Y` Requires-Dist, the torch floor the wheel declares."""
        for _line, req in self.requirements():
            if req is not None and canonicalize_name(req.name) == "torch" and not req.marker:
                floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
                if floors:
                    return max(floors)
        return None

    def summary(self) -> dict[str, Any]:
        b = self.build_info
        floor = self.torch_floor()
        return {
            "name": self.name,
            "version": str(self.version),
            "tags": sorted(str(t) for t in self.filename_tags),
            "torch_floor": str(floor) if floor else None,
            "with_cuda": b.get("WITH_CUDA"),
            "cuda_variant": b.get("CUDA_VARIANT"),
            "cuda_version": b.get("CUDA_VERSION"),
            "arch_set": arch_set(b),
            "sass_archs": list(b.get("SASS_ARCHS") or ()),
            "ptx_archs": list(b.get("PTX_ARCHS") or ()),
            "libraries": [lib.arcname for lib in self.libraries],
        }


def arch_set(build_info: dict[str, Any]) -> str | None:
    """The name of the arch set the wheel was built for ("cpu" for a CPU-only wheel)."""
    if not build_info:
        return None
    if not build_info.get("WITH_CUDA"):
        return "cpu"
    return build_info.get("CUDA_ARCHS_SPEC") or None
