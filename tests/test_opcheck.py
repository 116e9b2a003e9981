# SPDX-License-Identifier: Apache-2.0
"""torch.library.opcheck on every registered op: schema, fake, autograd registration, AOT dispatch."""

from __future__ import annotations

import pytest
import torch
from helpers import DEVICES
from stablekernels.ops import REGISTRY

ALL_UTILS = (
    "test_schema",
    "test_autograd_registration",
    "test_faketensor",
    "test_aot_dispatch_dynamic",
)
FLOAT8_DTYPES = {torch.float8_e4m3fn, torch.float8_e5m2}


def _has_float8(args: tuple) -> bool:
    return any(isinstance(a, torch.Tensor) and a.dtype in FLOAT8_DTYPES for a in args)


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.uint8).clone()


def _check_schema_mutations(op: torch._ops.OpOverload, args: tuple) -> None:
    """opcheck's test_schema for argument lists holding float8 tensors.

    test_schema runs the op under SchemaCheckMode, which compares every tensor argument
    before and after the call with torch.allclose; torch implements no arithmetic for the
    float8 dtypes, so that comparison raises before it checks anything. This is the same
    check on the bytes of each argument: an argument the schema does not mark as written
    (no ``!``) must come back bit for bit unchanged, and the op returns nothing to alias.
    """
    before = [_bytes(a) if isinstance(a, torch.Tensor) else None for a in args]
    out = op(*args)
    assert out is None or out == (), f"{op}: returned {out!r}"
    for arg, saved, schema_arg in zip(args, before, op._schema.arguments, strict=True):
        if saved is None:
            continue
        written = schema_arg.alias_info is not None and schema_arg.alias_info.is_write
        if not written:
            assert torch.equal(_bytes(arg), saved), (
                f"{op}: '{schema_arg.name}' was modified but the schema does not mark it mutable"
            )


def _clone_args(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _returns_input(op: torch._ops.OpOverload, args: tuple) -> bool:
    """Whether the op, on these arguments, returns one of its tensor arguments although its
    schema declares no alias on the return: hadacore_transform(x, inplace=True) returns x
    under vLLM's schema `(Tensor! x, bool inplace) -> Tensor`."""
    if not op._schema.returns or any(r.alias_info is not None for r in op._schema.returns):
        return False
    args = _clone_args(args)
    out = op(*args)
    outs = out if isinstance(out, tuple) else (out,)
    return any(o is a for o in outs for a in args if isinstance(a, torch.Tensor))


def _check_undeclared_alias(op: torch._ops.OpOverload, args: tuple) -> None:
    """opcheck's test_schema for a call that returns one of its arguments.

    test_schema (SchemaCheckMode) rejects any return that aliases an argument unless the
    schema annotates the return (`-> Tensor(a!)`); vLLM's schema of hadacore_transform does
    not, so for inplace=True it fails by construction. What can still be checked: the
    returned tensor is the argument itself, that argument is one the schema marks as
    written, and every other tensor argument comes back bit for bit unchanged.
    """
    args = _clone_args(args)
    before = [_bytes(a) if isinstance(a, torch.Tensor) else None for a in args]
    out = op(*args)
    for arg, saved, schema_arg in zip(args, before, op._schema.arguments, strict=True):
        if saved is None:
            continue
        written = schema_arg.alias_info is not None and schema_arg.alias_info.is_write
        if arg is out:
            assert written, f"{op}: returns '{schema_arg.name}', which it may not write"
        elif not written:
            assert torch.equal(_bytes(arg), saved), f"{op}: modified '{schema_arg.name}'"
    assert any(out is a for a in args), f"{op}: returns a view, not an argument"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_opcheck(name: str, device: str, dtype: torch.dtype) -> None:
    spec = REGISTRY[name]
    samples = list(spec.sample_args(torch.device(device), dtype))
    assert samples, f"{name} has no sample inputs"
    for args in samples:
        utils = ALL_UTILS
        if _has_float8(args):
            # see _check_schema_mutations: the rest of opcheck handles float8
            utils = tuple(u for u in ALL_UTILS if u != "test_schema")
            _check_schema_mutations(spec.op, args)
        if _returns_input(spec.op, args):
            # see _check_undeclared_alias: the rest of opcheck passes
            utils = tuple(u for u in utils if u != "test_schema")
            _check_undeclared_alias(spec.op, args)
        result = torch.library.opcheck(spec.op, args, test_utils=utils)
        assert set(result) == set(utils)
        failed = {k: v for k, v in result.items() if v != "SUCCESS"}
        assert not failed, f"{name}: {failed}"
