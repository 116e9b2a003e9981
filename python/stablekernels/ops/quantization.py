# SPDX-License-Identifier: Apache-2.0
"""FP8 quantization: ``static_scaled_fp8_quant``, ``dynamic_scaled_fp8_quant`` and
``dynamic_per_token_scaled_fp8_quant``.

Each converts a float32, float16 or bfloat16 tensor to ``torch.float8_e4m3fn`` as
``saturate(input / scale)``, in float32, with a float32 scale that is given (static) or
computed from the data (dynamic: ``amax(|input|) / 448``, per tensor or per row). The rules,
identical on the CPU and CUDA:

- ``input / scale`` is an IEEE float32 division; its result rounds to the nearest fp8 value,
  ties to even, after clamping to ``[-448, 448]``: ``+-inf`` and larger values saturate.
- A NaN quotient becomes the fp8 NaN ``0x7F`` (whatever its sign).
- The amax of a dynamic scale is taken over the finite values only: NaN and ``+-inf`` do not
  change the scale of the other values.
- A dynamic scale is at least ``MIN_SCALE = 1 / (448 * 512)``: an all-zero row or tensor
  quantizes to zeros with that scale, and a scale is never 0 or NaN.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ._registry import BenchCase, OpSpec, element_size, memory_bound, regime, register

__all__ = [
    "dynamic_per_token_scaled_fp8_quant",
    "dynamic_scaled_fp8_quant",
    "static_scaled_fp8_quant",
]

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0
MIN_SCALE = 1.0 / (448.0 * 512.0)
FP8_NAN_BITS = 0x7F


def static_scaled_fp8_quant(input: Tensor, scale: Tensor) -> Tensor:
    """Quantize to float8_e4m3fn with a given per-tensor scale.

    Args:
        input: ``[..., hidden]``, float32, float16 or bfloat16, on the CPU or a CUDA GPU.
            Any leading dims with any strides; the last dim must be contiguous.
        scale: float32 tensor with one element (any shape), on the device of ``input``.
            Used as given: a scale of 0 turns every nonzero value into ``+-448`` and 0
            into NaN.

    Returns:
        A new contiguous ``torch.float8_e4m3fn`` tensor shaped like ``input``:
        ``saturate(input / scale)``, rounded to nearest even, NaN to NaN.
    """
    result = torch.empty(input.shape, dtype=FP8_DTYPE, device=input.device)
    torch.ops.stablekernels.static_scaled_fp8_quant.default(result, input, scale)
    return result


def dynamic_scaled_fp8_quant(input: Tensor) -> tuple[Tensor, Tensor]:
    """Quantize to float8_e4m3fn with a per-tensor scale computed from the data.

    Args:
        input: ``[..., hidden]``, float32, float16 or bfloat16, on the CPU or a CUDA GPU.
            Any leading dims with any strides; the last dim must be contiguous.

    Returns:
        ``(result, scale)``: ``scale`` is a new float32 tensor of shape ``[1]``,
        ``max(amax / 448, MIN_SCALE)`` with ``amax`` the largest finite ``|input|``;
        ``result`` is a new contiguous ``torch.float8_e4m3fn`` tensor shaped like
        ``input``, ``saturate(input / scale)``.
    """
    result = torch.empty(input.shape, dtype=FP8_DTYPE, device=input.device)
    scale = torch.empty(1, dtype=torch.float32, device=input.device)
    torch.ops.stablekernels.dynamic_scaled_fp8_quant.default(result, input, scale)
    return result, scale


def dynamic_per_token_scaled_fp8_quant(
    input: Tensor, scale_ub: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Quantize to float8_e4m3fn with one scale per row (token) computed from the data.

    Args:
        input: ``[..., hidden]``, float32, float16 or bfloat16, on the CPU or a CUDA GPU.
            Any leading dims with any strides; the last dim must be contiguous. Its rows
            are the ``num_tokens = input.numel() // hidden`` vectors along the last dim.
        scale_ub: optional float32 tensor with one element, on the device of ``input``:
            an upper bound on each row's amax (so each scale is at most
            ``max(scale_ub / 448, MIN_SCALE)``). A NaN bound is ignored.

    Returns:
        ``(result, scale)``: ``scale`` is a new float32 ``[num_tokens, 1]`` tensor,
        ``max(min(amax_row, scale_ub) / 448, MIN_SCALE)`` with ``amax_row`` the largest
        finite ``|x|`` of the row; ``result`` is a new contiguous ``torch.float8_e4m3fn``
        tensor shaped like ``input``, each row ``saturate(row / scale[row])``.
    """
    result = torch.empty(input.shape, dtype=FP8_DTYPE, device=input.device)
    scale = torch.empty((_rows(input), 1), dtype=torch.float32, device=input.device)
    torch.ops.stablekernels.dynamic_per_token_scaled_fp8_quant.default(
        result, input, scale, scale_ub
    )
    return result, scale


def _rows(input: Tensor) -> int:
    n = 1
    for s in input.shape[:-1]:
        n *= s
    return n


@torch.library.register_fake("stablekernels::static_scaled_fp8_quant")
def _static_scaled_fp8_quant_fake(result: Tensor, input: Tensor, scale: Tensor) -> None:
    return None


@torch.library.register_fake("stablekernels::dynamic_scaled_fp8_quant")
def _dynamic_scaled_fp8_quant_fake(result: Tensor, input: Tensor, scale: Tensor) -> None:
    return None


@torch.library.register_fake("stablekernels::dynamic_per_token_scaled_fp8_quant")
def _dynamic_per_token_scaled_fp8_quant_fake(
    result: Tensor, input: Tensor, scale: Tensor, scale_ub: Tensor | None
) -> None:
    return None


# --- references (float64 where it does not change the result) -------------------------


def _to_fp8(q: Tensor) -> Tensor:
    """float32 quotients -> float8_e4m3fn with the family's rules (saturate, NaN -> 0x7F)."""
    bits = q.clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE).view(torch.uint8)
    bits = torch.where(q.isnan(), torch.full_like(bits, FP8_NAN_BITS), bits)
    return bits.view(FP8_DTYPE)


def _quantize_ref(input: Tensor, scale: Tensor) -> Tensor:
    # A float64 quotient of two float32 values rounds to the float32 quotient exactly.
    q = (input.double() / scale.double()).float()
    return _to_fp8(q)


def _finite_abs(x: Tensor) -> Tensor:
    a = x.double().abs()
    return torch.where(a.isfinite(), a, torch.zeros_like(a))


def _scale_from_amax(amax: Tensor) -> Tensor:
    # amax / 448 in float64 rounds to the float32 division exactly.
    return (amax / FP8_MAX).float().clamp_min(MIN_SCALE)


def static_scaled_fp8_quant_ref(input: Tensor, scale: Tensor) -> Tensor:
    """Pure-torch reference of `static_scaled_fp8_quant`."""
    return _quantize_ref(input, scale.reshape(()))


def dynamic_scaled_fp8_quant_ref(input: Tensor) -> tuple[Tensor, Tensor]:
    """Pure-torch reference of `dynamic_scaled_fp8_quant`."""
    amax = _finite_abs(input).amax() if input.numel() else torch.zeros((), dtype=torch.float64)
    scale = _scale_from_amax(amax.to(input.device)).reshape(1)
    return _quantize_ref(input, scale.reshape(())), scale


def dynamic_per_token_scaled_fp8_quant_ref(
    input: Tensor, scale_ub: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Pure-torch reference of `dynamic_per_token_scaled_fp8_quant`."""
    rows = _rows(input)
    x = input.reshape(rows, input.shape[-1])
    if input.shape[-1]:
        amax = _finite_abs(x).amax(-1, keepdim=True)
    else:
        amax = torch.zeros((rows, 1), dtype=torch.float64, device=input.device)
    if scale_ub is not None:
        amax = torch.fmin(amax.float(), scale_ub.reshape(()).float()).double()
    scale = _scale_from_amax(amax)
    return _quantize_ref(x, scale).reshape(input.shape), scale


# --- native: what a user writes in pure torch (float32 math) --------------------------


def _native_quantize(x: Tensor, scale: Tensor) -> Tensor:
    return (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)


def static_scaled_fp8_quant_native(input: Tensor, scale: Tensor) -> Tensor:
    """`static_scaled_fp8_quant` in pure torch (float32 math)."""
    return _native_quantize(input, scale)


def dynamic_scaled_fp8_quant_native(input: Tensor) -> tuple[Tensor, Tensor]:
    """`dynamic_scaled_fp8_quant` in pure torch (float32 math)."""
    scale = (input.float().abs().amax() / FP8_MAX).clamp_min(MIN_SCALE).reshape(1)
    return _native_quantize(input, scale), scale


def dynamic_per_token_scaled_fp8_quant_native(
    input: Tensor, scale_ub: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """`dynamic_per_token_scaled_fp8_quant` in pure torch (float32 math)."""
    x = input.float()
    amax = x.abs().amax(-1, keepdim=True)
    if scale_ub is not None:
        amax = amax.clamp_max(scale_ub)
    scale = (amax / FP8_MAX).clamp_min(MIN_SCALE)
    return _native_quantize(x, scale), scale.reshape(-1, 1)


# --- samples and benchmarks ------------------------------------------------------------


def _inputs(device: torch.device, dtype: torch.dtype) -> Iterator[Tensor]:
    g = torch.Generator().manual_seed(0)
    for shape in [(3, 32), (2, 3, 111), (4, 7)]:
        yield (10 * torch.randn(shape, generator=g)).to(device=device, dtype=dtype)


def _fp8_like(x: Tensor) -> Tensor:
    return torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device)


def _static_samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    for x in _inputs(device, dtype):
        yield _fp8_like(x), x, torch.tensor([0.05], device=device)


def _dynamic_samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    for x in _inputs(device, dtype):
        yield _fp8_like(x), x, torch.empty(1, device=device)


def _per_token_samples(device: torch.device, dtype: torch.dtype) -> Iterator[tuple]:
    for i, x in enumerate(_inputs(device, dtype)):
        ub = torch.tensor([5.0], device=device) if i % 2 else None
        yield _fp8_like(x), x, torch.empty((_rows(x), 1), device=device), ub


def _bench(kind: str, tokens: list[int], hiddens: list[int]) -> tuple[BenchCase, ...]:
    """Cases over tokens x hidden: read a [tokens, hidden] input, write fp8 of its shape."""

    def case(t: int, h: int) -> BenchCase:
        def make(device: torch.device, dtype: torch.dtype) -> tuple:
            x = torch.randn(t, h, device=device, dtype=dtype)
            if kind == "static":
                return (x, torch.tensor([0.01], device=device))
            return (x,)

        def nbytes(dtype: torch.dtype) -> int:
            size = element_size(dtype)
            return t * h * (size + 1) + 4 * (t if kind == "per_token" else 1)

        def dram_bytes(dtype: torch.dtype, onchip: int) -> int:
            # Every output element needs the one scale, which needs every input element:
            # what the chip cannot hold of the input when it has read its last element is
            # read from memory again (writing anything out instead costs a write and a read).
            return nbytes(dtype) + max(0, t * h * element_size(dtype) - onchip)

        targets = memory_bound(t, vs_compile=1.2 if kind == "per_token" else None)
        return BenchCase(
            f"tokens={t} hidden={h}",
            regime(t),
            make,
            nbytes,
            targets,
            dram_bytes if kind == "dynamic" else None,
        )

    return tuple(case(t, h) for t in tokens for h in hiddens)


_DECODE = [1, 32]
_PREFILL = [4096, 16384]
_HIDDEN = [4096, 8192]
_LONG = [32768]  # the longest prefill, at one hidden size

for _name, _kind, _wrapper, _ref, _native, _outputs, _samples in [
    (
        "static_scaled_fp8_quant",
        "static",
        static_scaled_fp8_quant,
        static_scaled_fp8_quant_ref,
        static_scaled_fp8_quant_native,
        ("result",),
        _static_samples,
    ),
    (
        "dynamic_scaled_fp8_quant",
        "dynamic",
        dynamic_scaled_fp8_quant,
        dynamic_scaled_fp8_quant_ref,
        dynamic_scaled_fp8_quant_native,
        ("result", "scale"),
        _dynamic_samples,
    ),
    (
        "dynamic_per_token_scaled_fp8_quant",
        "per_token",
        dynamic_per_token_scaled_fp8_quant,
        dynamic_per_token_scaled_fp8_quant_ref,
        dynamic_per_token_scaled_fp8_quant_native,
        ("result", "scale"),
        _per_token_samples,
    ),
]:
    register(
        OpSpec(
            name=_name,
            family="quantization",
            wrapper=_wrapper,
            reference=_ref,
            outputs=_outputs,
            sample_args=_samples,
            native=_native,
            bench=_bench(_kind, _DECODE + _PREFILL, _HIDDEN) + _bench(_kind, _LONG, [8192]),
            bench_quick=_bench(_kind, [4, 512], [1024]),
        )
    )
