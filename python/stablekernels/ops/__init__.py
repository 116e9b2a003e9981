# SPDX-License-Identifier: Apache-2.0
"""The op families built into this wheel, one module each.

``stablekernels.ops.REGISTRY`` maps each op name to its :class:`OpSpec`.
"""

from __future__ import annotations

import importlib

from .. import _build_info
from ._registry import REGISTRY as REGISTRY
from ._registry import OpSpec as OpSpec

__all__: list[str] = []

for _family in _build_info.FAMILIES:
    _module = importlib.import_module(f"{__name__}.{_family}")
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
    __all__ += _module.__all__

__all__ = sorted(__all__)
