"""How the dynamic-quantization ops (`ops`) become torch calls, in any dialect declaring them.

Registered in the quantized kernels' emission table by kernel name (the x86 dialect's emission
covers them with its other ops); `EMITTERS` gives them to a backend with an emission table of its
own (onednn). Weights are packed once, when the module is built; the running module calls
`qir.dynamic_runtime` for the parameters and the storage (per token, when only int8 linears read
it, one generated kernel for both: `kernels.quantize_rows`), then one int8 kernel and the float
rescale of its int32 accumulator.
"""

from __future__ import annotations

import operator

import torch
from torch import fx

from qir import dynamic_runtime as rt
from qir.dialects import ref
from qir.dialects.quant import ChooseQParamsOp
from qir.emitter import Emitter
from qir.errors import QirError
from qir.lowering.dynamic_kernels import kernels
from qir.lowering.dynamic_kernels import ops as d
from qir.lowering.quantized_kernels.emit import _rule

_onednn = torch.ops.onednn


def _dtype(qtype) -> torch.dtype:
    return getattr(torch, qtype.storage_dtype_name)


def zero_points_are_zero(zero_point) -> bool:
    """Whether run-time zero points are known to be 0: chosen symmetric for signed storage."""
    owner = zero_point.owner
    return (isinstance(owner, ChooseQParamsOp | d.ChooseQParams) and owner.is_symmetric
            and owner.quantized_type.is_signed)


def _symmetric_rows(op: d.DynamicQuantize) -> bool:
    """Whether a per-token quantize takes its scales and zero points from a symmetric per-token
    choice for its own input, into storage holding [-127, 127] (`rt.quantize_per_token`'s
    `symmetric`)."""
    owner = op.scale.owner
    qtype = op.quantized_type
    return (isinstance(owner, ChooseQParamsOp | d.ChooseQParams) and owner.is_symmetric and owner.per_token
            and op.zero_point.owner is owner and owner.input is op.input and qtype.is_signed
            and qtype.storage_min <= -127 and qtype.storage_max >= 127)


@_rule("choose_qparams")
def _emit_choose_qparams(em: Emitter, op: d.ChooseQParams) -> None:
    qtype = op.quantized_type
    fused = _fused_quantize(op)
    if fused is not None:
        node = _quantize_rows(em, op, fused)
    elif op.per_token:
        node = em.call(rt.choose_qparams_per_token, (em.node(op.input), op.is_symmetric),
                       name=f"{op.scale.name_hint or 'x'}_qparams")
    else:
        node = em.call(rt.choose_qparams_per_tensor, (em.node(op.input), qtype.storage_min, qtype.storage_max,
                                                      op.is_symmetric, _dtype(qtype)),
                       name=f"{op.scale.name_hint or 'x'}_qparams")
    em.bind(op, node, multiple=True)


def _fused_quantize(op: d.ChooseQParams) -> d.DynamicQuantize | None:
    """The quantize computed with a per-token choice by one kernel (`kernels.quantize_rows`), if
    any: a quantize of the choice's own input with its scales and zero points, made as shifted
    storage (`_shifted`), without a clamp when the choice is symmetric (`_symmetric_rows`)."""
    if not op.per_token:
        return None
    for use in op.scale.uses:
        quantize = use.operation
        if (isinstance(quantize, d.DynamicQuantize) and quantize.scale is op.scale and quantize.input is op.input
                and quantize.zero_point.owner is op and _shifted(quantize)
                and (not op.is_symmetric or _symmetric_rows(quantize))):
            return quantize
    return None


def _quantize_rows(em: Emitter, choose: d.ChooseQParams, quantize: d.DynamicQuantize) -> fx.Node:
    """The call computing a choice and its fused quantize (scales, zero points, storage), made
    once for both ops."""
    qtype = quantize.quantized_type
    return em.once(("quantize_rows", choose), lambda: em.call(
        kernels.quantize_rows, (em.node(choose.input), choose.is_symmetric, qtype.storage_min, qtype.storage_max),
        name=f"{choose.scale.name_hint or 'x'}_rows"))


def _read_by_kernels_only(op: d.DynamicQuantize) -> bool:
    """Whether every reader of a quantize's storage is a dynamic linear taking it as its input:
    then the storage may be emitted as oneDNN's shifted uint8 (`linear_rows`), nothing else
    seeing it."""
    uses = list(op.result.uses)
    return bool(uses) and all(isinstance(use.operation, d.DynamicLinear) and use.index == 0 for use in uses)


def _shifted(op: d.DynamicQuantize) -> bool:
    """Whether a quantize's storage is made as oneDNN's uint8 `q + 128`: int8 per token, read by
    dynamic linears only."""
    return op.per_token and op.quantized_type.storage_dtype_name == "int8" and _read_by_kernels_only(op)


@_rule("dynamic_quantize")
def _emit_dynamic_quantize(em: Emitter, op: d.DynamicQuantize) -> None:
    """Per token, read by dynamic linears only (MiniLM's 25 quantizes, 12 of them read by three
    linears each), the storage is made as uint8 `q + 128` in the quantize itself, once for all its
    linears: with its scales when it is its choice's fused quantize (`kernels.quantize_rows`),
    else by `rt.quantize_per_token_shifted`; otherwise as int8 or uint8, the type's storage."""
    qtype = op.quantized_type
    x, s, z = em.node(op.input), em.node(op.scale), em.node(op.zero_point)
    name = op.result.name_hint or "q"
    choose = op.scale.owner
    if isinstance(choose, d.ChooseQParams) and _fused_quantize(choose) is op:
        node = em.call(operator.getitem, (_quantize_rows(em, choose, op), 2), name=name)
    elif _shifted(op):
        node = em.call(rt.quantize_per_token_shifted, (x, s, z, qtype.storage_min, qtype.storage_max,
                                                       _symmetric_rows(op)), name=name)
    elif op.per_token:
        node = em.call(rt.quantize_per_token, (x, s, z, qtype.storage_min, qtype.storage_max, _dtype(qtype),
                                               _symmetric_rows(op)), name=name)
    else:
        node = em.call(rt.quantize_per_tensor, (x, s, z, qtype.storage_min, qtype.storage_max, _dtype(qtype)),
                       name=name)
    em.bind(op, node)


@torch.no_grad()  # an int8 kernel has no gradient; `out=` and in-place forms refuse inputs that require one
def linear_rows(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, packed: torch.Tensor,
                weight_scales: torch.Tensor, weight_zero_points: torch.Tensor, bias: torch.Tensor,
                corrections: torch.Tensor | None) -> torch.Tensor:
    """An int8 input with its own scale per row (or one for the tensor): oneDNN's int8 linear with
    a scale of 1 gives `sum(q * w) * sw`; then, in float32, less `z * sum(w) * sw` when the zero
    points may be nonzero (`corrections`), times the rows' `s`, plus the bias.

    The kernel is given `q + 128` as uint8 with a zero point of 128: oneDNN has fast int8 matmuls
    for uint8 sources only, and sends an int8 source to its reference implementation, thousands
    of times slower (3.3 s against 0.8 ms for one 512x384x1536 product on an AVX-512 VNNI host).
    `q` is that uint8 storage when its quantize made it so (`rt.quantize_per_token_shifted`; a
    per-token input is int8 otherwise, so uint8 here always means shifted), or int8, whose sign
    bit is flipped here. Without VNNI the shifted pairs may saturate in int16; the quantizer fits
    such weights to inputs up to 255 (`DynamicQuantizer`), so the sums stay exact."""
    shifted = q.view(torch.uint8).bitwise_xor(128) if q.dtype == torch.int8 else q
    y = _onednn.qlinear_pointwise.default(shifted, 1.0, 128, packed, weight_scales, weight_zero_points, None, 1.0,
                                          0, torch.float32, "none", [], "")
    if corrections is not None:
        y.addcmul_(zero_point.to(torch.float32), corrections, value=-1.0)
    return torch.addcmul(bias, y, scale.to(torch.float32), out=y)


@_rule("dynamic_linear")
def _emit_dynamic_linear(em: Emitter, op: d.DynamicLinear) -> None:
    weight = em.constant(op.weight)
    bias = em.constant(op.bias)
    if weight is None or bias is None:
        raise QirError(f"{op.name}: the weight and the bias must be parameters (packed when the module is built)")
    if weight.is_quantized:  # a from_storage of the parameter
        weight = weight.int_repr()
    qweight = ref.quantized(op.weight)
    if any(getattr(qweight, "zero_points", (getattr(qweight, "zero_point", 0),))):
        raise QirError(f"{op.name}: oneDNN's int8 kernels take weights with zero points of 0 only")
    channels = weight.shape[0]
    scales = torch.tensor(ref.channel_scales(op.weight, channels), dtype=torch.float32)
    name = (op.weight.name_hint or "weight").removeprefix("p_")
    x, s, z = em.node(op.input), em.node(op.scale), em.node(op.zero_point)
    packed = em.new_attr(f"packed.{name}", _onednn.qlinear_prepack(weight.to(torch.int8), None))
    scales_node = em.new_attr(f"packed.{name}_scales", scales)
    zero_points = em.new_attr(f"packed.{name}_zero_points", torch.zeros(channels, dtype=torch.int64))
    bias_node = em.new_attr(f"biases.{name}", bias.float())
    if not op.input.type.element_type.is_signed:  # uint8, one scale: the kernel takes it
        args = (x, s, z, packed, scales_node, zero_points, bias_node, 1.0, 0, torch.float32, "none", [], "")
        em.bind(op, em.call(_onednn.qlinear_pointwise.tensor, args, name=op.output.name_hint))
        return
    corrections = None if zero_points_are_zero(op.zero_point) else em.new_attr(
        f"packed.{name}_corrections", weight.to(torch.float64).sum(1).mul_(scales.double()).float())
    args = (x, s, z, packed, scales_node, zero_points, bias_node, corrections)
    em.bind(op, em.call(linear_rows, args, name=op.output.name_hint))


EMITTERS = {"choose_qparams": _emit_choose_qparams, "dynamic_quantize": _emit_dynamic_quantize,
            "dynamic_linear": _emit_dynamic_linear}
"""Kernel name (the op's name after its dialect's) -> its emission."""
