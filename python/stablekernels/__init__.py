# SPDX-License-Identifier: Apache-2.0
"""stablekernels: PyTorch kernels built once on the LibTorch stable ABI.

One compiled wheel serves every torch release from the floor recorded in
:data:`stablekernels.build_info` on, and every CPython from 3.10 on (abi3).
The ops live in ``torch.ops.stablekernels``; this package adds functional
wrappers that allocate their outputs, fake (meta) kernels for ``torch.compile``,
and pure-torch references.
"""

from __future__ import annotations

import sys

from . import _build_info as build_info
from ._loader import LoadState, load_libraries

__version__ = build_info.VERSION


def _started_by_python_m() -> bool:
    # While `python -m stablekernels` imports this package, sys.argv[0] is "-m"
    # (documented in the Python command-line docs). Then a load failure is shown
    # by stablekernels.__main__ as a report instead of a traceback.
    return sys.argv[:1] == ["-m"]


try:
    _state: LoadState = load_libraries()
except ImportError as _err:
    if not _started_by_python_m():
        raise
    _state = LoadState(error=_err)

if _state.error is None:
    from .ops import *  # noqa: F403
    from .ops import __all__ as _ops_all
else:
    _ops_all = []


def cuda_library_loaded() -> bool:
    """Whether the CUDA kernels were loaded (a CUDA wheel under a CUDA build of torch)."""
    return _state.cuda_loaded


__all__ = ["__version__", "build_info", "cuda_library_loaded", *_ops_all]
