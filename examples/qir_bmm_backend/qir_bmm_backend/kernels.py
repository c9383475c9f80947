"""The kernels: `torch.library` ops on int8 storage, in the `qbmm` namespace.

torch has an int8 matrix product on CPU, `torch._int_mm` (int8 x int8 -> int32, exact), but
no int8 bmm and no quantized bmm (`torch.ops.quantized` has none), so `bmm` runs `_int_mm`
once per batch entry; zero points are taken out of the int32 accumulator afterwards
(`sum (a - za)(b - zb) = a @ b - zb * rowsum(a) - za * colsum(b) + k * za * zb`). What follows
the accumulator is computed as qir's reference defines it (float64 scaling, requantization
rounding half to even), so the kernels agree with `qir.lower(..., "reference")`.
"""

from __future__ import annotations

import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)
from torch import Tensor


def int_bmm(a: Tensor, za: int, b: Tensor, zb: int) -> Tensor:
    """`(a - za) @ (b - zb)` of int8 batches of matrices, accumulated exactly in int32."""
    if a.shape[0] == 0:
        return torch.zeros(0, a.shape[1], b.shape[2], dtype=torch.int32)
    acc = torch.stack([torch._int_mm(a[i], b[i]) for i in range(a.shape[0])])
    if zb:
        acc -= zb * a.sum(-1, dtype=torch.int32).unsqueeze(-1)
    if za:
        acc -= za * b.sum(-2, dtype=torch.int32).unsqueeze(-2)
    if za and zb:
        acc += a.shape[-1] * za * zb
    return acc


@torch.library.custom_op("qbmm::bmm", mutates_args=())
def bmm(a: Tensor, sa: float, za: int, b: Tensor, sb: float, zb: int,
        sy: float, zy: int, lo: int, hi: int, dtype: torch.dtype) -> Tensor:
    """The int8 bmm, requantized to `sy`/`zy` in [lo, hi] or, for a float `dtype`, scaled to it."""
    acc = int_bmm(a, za, b, zb).double()
    if dtype.is_floating_point:
        return (acc * (sa * sb)).to(dtype)
    return torch.clamp(torch.round(acc * (sa * sb / sy)) + zy, lo, hi).to(dtype)


@torch.library.custom_op("qbmm::bmm_softmax", mutates_args=())
def bmm_softmax(a: Tensor, sa: float, za: int, b: Tensor, sb: float, zb: int, dim: int,
                sy: float, zy: int, lo: int, hi: int, dtype: torch.dtype) -> Tensor:
    """`softmax(bmm(a, b), dim)` with float logits, quantized to `sy`/`zy` in [lo, hi]."""
    logits = (int_bmm(a, za, b, zb).double() * (sa * sb)).to(torch.float32)
    probs = torch.softmax(logits, dim)
    return torch.ops.quantized_decomposed.quantize_per_tensor.default(probs, sy, zy, lo, hi, dtype)


@bmm.register_fake
def _(a, sa, za, b, sb, zb, sy, zy, lo, hi, dtype):
    return a.new_empty((a.shape[0], a.shape[1], b.shape[2]), dtype=dtype)


@bmm_softmax.register_fake
def _(a, sa, za, b, sb, zb, dim, sy, zy, lo, hi, dtype):
    return a.new_empty((a.shape[0], a.shape[1], b.shape[2]), dtype=dtype)
