"""The kernels, `torch.library` ops on integer storage (`x` stands for `sx * (x - zx)`), and
the emission of `mybackend` ops as their calls (`EMISSION`, which the backend hands over).

Accumulation is exact in int32; requantization rounds half to even, as the `ref` ops define."""

import torch
from torch import Tensor

from qir.dialects.ref import per_tensor
from qir.lowering import Emission, torch_dtype


def _requantize(acc: Tensor, multiplier: float, zp: int, lo: int, hi: int, dtype: torch.dtype) -> Tensor:
    return torch.clamp(torch.round(acc.double() * multiplier) + zp, lo, hi).to(dtype)


@torch.library.custom_op("mybackend::qlinear", mutates_args=())
def qlinear(x: Tensor, sx: float, zx: int, w: Tensor, sw: float, zw: int, bias: Tensor,
            sy: float, zy: int, lo: int, hi: int, dtype: torch.dtype) -> Tensor:
    acc = torch.matmul(x.int() - zx, (w.int() - zw).t()).double()
    acc = acc + (torch.round(bias.double() / (sx * sw)) if bias.is_floating_point() else bias.double())
    if dtype.is_floating_point:  # a float result: sy, zy, lo, hi are unused
        return (acc * (sx * sw)).to(dtype)
    return _requantize(acc, sx * sw / sy, zy, lo, hi, dtype)


@torch.library.custom_op("mybackend::qbmm", mutates_args=())
def qbmm(a: Tensor, sa: float, za: int, b: Tensor, sb: float, zb: int,
         sy: float, zy: int, lo: int, hi: int, dtype: torch.dtype) -> Tensor:
    return _requantize(torch.matmul(a.int() - za, b.int() - zb), sa * sb / sy, zy, lo, hi, dtype)


@torch.library.custom_op("mybackend::qbmm_softmax", mutates_args=())
def qbmm_softmax(a: Tensor, sa: float, za: int, b: Tensor, sb: float, zb: int, sm: float, zm: int, lom: int,
                 him: int, dim: int, sy: float, zy: int, lo: int, hi: int, dtype: torch.dtype) -> Tensor:
    logits = _requantize(torch.matmul(a.int() - za, b.int() - zb), sa * sb / sm, zm, lom, him, torch.float32)
    p = torch.softmax((logits - zm) * sm, dim)
    return torch.clamp(torch.round(p * (1.0 / sy)) + zy, lo, hi).to(dtype)


def _qparams(qtype) -> tuple:
    return qtype.scale, qtype.zero_point, qtype.storage_min, qtype.storage_max


def _call(em, op, target, *extra) -> None:
    """`target(x, sx, zx, ..., *extra, sy, zy, lo, hi, dtype)`: each operand with the scale and zero
    point of its type (a float bias alone), then the result's parameters (none if it is float)."""
    args = []
    for value in op.operands:
        qtype = per_tensor(value)
        args += [em.node(value), qtype.scale, qtype.zero_point] if qtype else [em.node(value)]
    out = per_tensor(op.output)
    args += [*extra, *(_qparams(out) if out else (1.0, 0, 0, 0)), torch_dtype(op.output.type.element_type)]
    em.bind(op, em.call(target, tuple(args), name=op.output.name_hint))


EMISSION = Emission({
    "mybackend.qlinear": lambda em, op: _call(em, op, torch.ops.mybackend.qlinear.default),
    "mybackend.qbmm": lambda em, op: _call(em, op, torch.ops.mybackend.qbmm.default),
    "mybackend.qbmm_softmax": lambda em, op: _call(em, op, torch.ops.mybackend.qbmm_softmax.default,
                                                   *_qparams(op.mid), op.dim.value.data),
})
