"""Run-time quantization parameters, computed as `quant.choose_qparams` and `quant.dynamic_qcast`
define them, in fewer torch calls than the `quantized_decomposed` ops the Q/DQ form calls.

The `quant` dialect defines dynamic quantization as torch's `quantized_decomposed` ops compute
it (their float32 arithmetic, spelled out in `qir.dialects.quant`). Those ops are a dozen small
tensor operations each: per tensor, `choose_qparams.tensor` takes about 70 us on a 512 x 384
activation where its one pass over the data (`aminmax`) takes 13 us, and
`quantize_per_tensor.tensor` makes four temporaries. A lowered program calls these functions
instead: the same float32 operations in the same order (scalars in numpy's float32, which is
IEEE single precision as torch's CPU kernels are), in place where the decomposed ops allocate.
They return what the decomposed ops return (per tensor a float64 scale and an int64 zero point
of one element each, per token float32 scales and int64 zero points, one per row; the storage
as a uint8/int8 tensor), so every emission reading them takes either.
`quantize_per_token_shifted` is the exception: it stores the int8 values as oneDNN's uint8
`q + 128`, which only the x86 emission's int8 linears read.
`tests/test_dynamic.py` checks them against the decomposed ops bit for bit, rounding ties
included.
"""

from __future__ import annotations

import numpy as np
import torch

EPS = torch.finfo(torch.float32).eps
"""The smallest per-tensor scale (`quant.choose_qparams`'s `eps`)."""

_EPS32 = np.float32(EPS)
_ZERO32 = np.float32(0.0)


def choose_qparams_per_tensor(x: torch.Tensor, qmin: int, qmax: int, symmetric: bool,
                              dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """`choose_qparams.tensor` (affine) or `choose_qparams_symmetric.tensor`, bit for bit."""
    lo, hi = torch.aminmax(x)
    lo = min(np.float32(lo.item()), _ZERO32)
    hi = max(np.float32(hi.item()), _ZERO32)
    if symmetric:
        scale = max(np.float32(max(-lo, hi) / np.float32((qmax - qmin) / 2)), _EPS32)
        zero_point = 128 if dtype == torch.uint8 else 0
    else:
        scale = max(np.float32((hi - lo) / np.float32(qmax - qmin)), _EPS32)
        zero_point = min(max(qmin - int(np.rint(lo / scale)), qmin), qmax)
    return (torch.tensor([float(scale)], dtype=torch.float64),
            torch.tensor([zero_point], dtype=torch.int64))


def choose_qparams_per_token(x: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """`choose_qparams_per_token` (symmetric) or `choose_qparams_per_token_asymmetric`, bit for bit;
    float32 scales and int64 zero points of shape `x.shape[:-1] + (1,)`."""
    if symmetric:  # max(|x|) as max(max(x), -min(x)): the same value, without a temporary |x|
        scale = torch.maximum(x.amax(dim=-1, keepdim=True), x.amin(dim=-1, keepdim=True).neg_())
        scale.clamp_(min=1e-5).div_(127)
        return scale, torch.zeros(scale.shape, dtype=torch.int64)
    qmin, qmax = -128, 127
    lo = x.amin(dim=-1, keepdim=True).clamp_(max=0.0)
    hi = x.amax(dim=-1, keepdim=True).clamp_(min=0.0)
    scale = (hi - lo).div_(float(qmax - qmin)).clamp_(min=EPS)
    descaled_min, descaled_max = lo.div_(scale), hi.div_(scale)
    zero_point = torch.where(descaled_min + qmin + (descaled_max + qmax) > 0, qmin - descaled_min,
                             qmax - descaled_max)
    return scale, zero_point.clamp_(qmin, qmax).round_().to(torch.int64)


def quantize_per_tensor(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
                        dtype: torch.dtype) -> torch.Tensor:
    """`quantize_per_tensor.tensor`, bit for bit: `clamp(round(x * float32(1 / s)) + z)`."""
    y = torch.mul(x, 1.0 / scale.item())
    y.round_()
    z = int(zero_point.item())
    if z:
        y.add_(z)
    return y.clamp_(qmin, qmax).to(dtype)


def quantize_per_token(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
                       dtype: torch.dtype, symmetric: bool = False) -> torch.Tensor:
    """`quantize_per_token` with float32 scales, bit for bit: `clamp(round(x * (1 / s) + z))`.

    `symmetric`: `scale` and `zero_point` are what `choose_qparams_per_token(x, True)` chose for
    this `x`, into a range holding [-127, 127]: the zero points are 0, and no row can leave
    [-127, 127] (`s >= max|x| / 127` up to a float32 rounding, so `|x * (1 / s)| < 127.5`), so
    neither the addition nor the clamp changes a value and both are left out."""
    y = torch.mul(x, scale.reciprocal())
    if symmetric:
        return y.round_().to(dtype)
    y.add_(zero_point)
    return y.round_().clamp_(qmin, qmax).to(dtype)


_ROUND_SHIFTED = float(3 << 22) + 128
"""`1.5 * 2**23 + 128`: a float32 `y` with `|y| < 2**22` plus this is `round(y) + 128` (ties to
even: float32 addition rounds to the nearest integer in [2**23, 2**24), and the constant is even)
in the low byte of the sum's bits, which read as int32 are `0x4B400000 + 128 + round(y)`;
narrowing int32 to uint8 keeps that byte (C++'s conversion to an unsigned type, which torch's
AVX-512, AVX2 and default kernels all make: `tests/test_dynamic.py` runs in AVX2 mode too)."""


def quantize_per_token_shifted(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int,
                               qmax: int, symmetric: bool = False) -> torch.Tensor:
    """`quantize_per_token(...)` to int8, bit for bit, stored as uint8 `q + 128` (the storage
    oneDNN's fast int8 linears take, see `dynamic_kernels.emit.linear_rows`).

    The rounding and the shift are one float32 addition (`_ROUND_SHIFTED`), whose bits' low byte
    is the result: three passes over the activation (multiply, add, narrow int32 to uint8) where
    `quantize_per_token` and a shift made four, and the shift is made once for every linear
    reading the activation instead of once per linear. On MiniLM (16 x 32 tokens, AMD EPYC, one
    thread, CPU time, the fastest of 50-80 calls under load) a call went from 44.2 to 42.4 ms,
    and from 75.6 to 71.9 ms in AVX2 mode. (Narrowing float32 to uint8 directly is slow on torch
    2.13: quantizing 512 x 384 that way took 81 us, to int8 27 us.) Where x86 quantizes an input
    with the scales it has just chosen for it, one generated kernel does both
    (`qir.lowering.dynamic_kernels.kernels.quantize_rows`); these functions are its eager fallback."""
    y = torch.mul(x, scale.reciprocal())
    if not symmetric:
        y.add_(zero_point).round_().clamp_(qmin, qmax)
    return y.add_(_ROUND_SHIFTED).view(torch.int32).to(torch.uint8)
