# SPDX-License-Identifier: Apache-2.0
"""Reading ci/gate.toml, the single file of gate policy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import tomllib

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "gate.toml"

# Every key a check reads; a missing one is a configuration error, named up front
# rather than as a KeyError in the middle of an audit.
_REQUIRED = {
    "torch_abi": ("unmapped_shims", "shim_providers"),
    "python_abi": ("python_tag", "abi_tag"),
    "platform": ("auditwheel_exclude", "required_policy", "needed_allowlist"),
    "size": ("budget_mib",),
    "metadata": ("check_wheel_contents_args",),
}


class ConfigError(ValueError):
    pass


def validate(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    missing = [
        f"[{section}] {key}"
        for section, keys in _REQUIRED.items()
        for key in keys
        if key not in config.get(section, {})
    ]
    if missing:
        raise ConfigError(f"{source} lacks {', '.join(missing)}")
    if config["torch_abi"]["unmapped_shims"] not in ("warn", "fail"):
        raise ConfigError(f"{source}: [torch_abi] unmapped_shims must be 'warn' or 'fail'")
    if "other" not in config["size"]["budget_mib"]:
        raise ConfigError(f"{source}: [size.budget_mib] needs an 'other' entry (the fallback)")
    return config


def load_config(path: Path | str = DEFAULT_CONFIG) -> dict[str, Any]:
    """The parsed, validated gate configuration (a plain dict; tests may edit a copy)."""
    path = Path(path)
    with open(path, "rb") as f:
        config = tomllib.load(f)
    config = validate(config, str(path))
    config["_source"] = str(path)
    return config


def edited(config: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `config` with the given sections' keys replaced."""
    out = copy.deepcopy(config)
    for section, values in sections.items():
        out.setdefault(section, {}).update(values)
    return validate(out)
