"""How the x86 dialect's dynamic-quantization ops (`dynamic_ops`) become torch calls.

Registered in the quantized kernels' emission table by kernel name, so the x86 dialect's
emission covers them with its other ops. Weights are packed once, when the module is built;
the running module calls `qir.dynamic_runtime` for the parameters and the storage, then one
int8 kernel and the float rescale of its int32 accumulator.
"""

from __future__ import annotations

import torch

from qir import dynamic_runtime as rt
from qir.dialects import ref
from qir.dialects.quant import ChooseQParamsOp
from qir.emitter import Emitter
from qir.errors import QirError
from qir.lowering.quantized_kernels.emit import _rule
from qir.lowering.x86 import dynamic_ops as d

_onednn = torch.ops.onednn


def _dtype(qtype) -> torch.dtype:
    return getattr(torch, qtype.storage_dtype_name)


def zero_points_are_zero(zero_point) -> bool:
    """Whether run-time zero points are known to be 0: chosen symmetric for signed storage."""
    owner = zero_point.owner
    return (isinstance(owner, ChooseQParamsOp | d.ChooseQParams) and owner.is_symmetric
            and owner.quantized_type.is_signed)


@_rule("choose_qparams")
def _emit_choose_qparams(em: Emitter, op: d.ChooseQParams) -> None:
    qtype = op.quantized_type
    if op.per_token:
        node = em.call(rt.choose_qparams_per_token, (em.node(op.input), op.is_symmetric),
                       name=f"{op.scale.name_hint or 'x'}_qparams")
    else:
        node = em.call(rt.choose_qparams_per_tensor, (em.node(op.input), qtype.storage_min, qtype.storage_max,
                                                      op.is_symmetric, _dtype(qtype)),
                       name=f"{op.scale.name_hint or 'x'}_qparams")
    em.bind(op, node, multiple=True)


@_rule("dynamic_quantize")
def _emit_dynamic_quantize(em: Emitter, op: d.DynamicQuantize) -> None:
    qtype = op.quantized_type
    args = (em.node(op.input), em.node(op.scale), em.node(op.zero_point), qtype.storage_min, qtype.storage_max,
            _dtype(qtype))
    if op.per_token:
        node = em.call(rt.quantize_per_token, (*args, zero_points_are_zero(op.zero_point)),
                       name=op.result.name_hint or "q")
    else:
        node = em.call(rt.quantize_per_tensor, args, name=op.result.name_hint or "q")
    em.bind(op, node)


def linear_onednn_shifted(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, packed: torch.Tensor,
                          weight_scales: torch.Tensor, weight_zero_points: torch.Tensor, bias: torch.Tensor,
                          corrections: torch.Tensor | None) -> torch.Tensor:
    """int8 storage `q` as uint8 `q + 128` with zero point 128 on oneDNN's u8 x s8 kernel:
    `sum((q - z) * w) * s * sw + b`, the zero-point term `z * sum(w) * sw` subtracted when the zero
    points may be nonzero (`corrections`)."""
    shifted = torch.bitwise_xor(q.view(torch.uint8), 128)
    y = _onednn.qlinear_pointwise.default(shifted, 1.0, 128, packed, weight_scales, weight_zero_points, None, 1.0,
                                          0, torch.float32, "none", [], "")
    if corrections is not None:
        y.addcmul_(zero_point.to(torch.float32), corrections, value=-1.0)
    y.mul_(scale)
    return y.add_(bias)


def linear_int_mm(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, weight_t: torch.Tensor,
                  weight_scales: torch.Tensor, bias: torch.Tensor, column_sums: torch.Tensor | None) -> torch.Tensor:
    """`torch._int_mm` of the int8 storage by the int8 weight (exact in int32 with AVX-512 VNNI),
    less `z * sum(w)` when the zero points may be nonzero, then `* s * sw + b` in float32."""
    shape = q.shape
    acc = torch._int_mm(q.reshape(-1, shape[-1]), weight_t)
    if column_sums is not None:
        acc.sub_(zero_point.reshape(-1, 1).to(torch.int32) * column_sums)
    y = acc.to(torch.float32)
    y.mul_(scale.reshape(-1, 1))
    y.mul_(weight_scales)
    y.add_(bias)
    return y.reshape(*shape[:-1], weight_t.shape[1])


@_rule("dynamic_linear")
def _emit_dynamic_linear(em: Emitter, op: d.DynamicLinear) -> None:
    weight = em.constant(op.weight)
    bias = em.constant(op.bias)
    if weight is None or bias is None:
        raise QirError(f"{op.name}: the weight and the bias must be parameters (packed when the module is built)")
    if weight.is_quantized:  # an x86.from_storage of the parameter
        weight = weight.int_repr()
    qweight = ref.quantized(op.weight)
    if any(getattr(qweight, "zero_points", (getattr(qweight, "zero_point", 0),))):
        raise QirError(f"{op.name}: x86's int8 kernels take weights with zero points of 0 only")
    channels = weight.shape[0]
    scales = torch.tensor(ref.channel_scales(op.weight, channels), dtype=torch.float32)
    name = (op.weight.name_hint or "weight").removeprefix("p_")
    kernel = op.kernel.data
    x, s, z = em.node(op.input), em.node(op.scale), em.node(op.zero_point)
    exact_zero = zero_points_are_zero(op.zero_point)
    bias_node = em.new_attr(f"biases.{name}", bias.float())
    scales_node = em.new_attr(f"packed.{name}_scales", scales)
    if kernel == "int_mm":
        weight_t = em.new_attr(f"packed.{name}_t", weight.to(torch.int8).t())
        sums = None if exact_zero else em.new_attr(f"packed.{name}_sums", weight.to(torch.int32).sum(1))
        args = (x, s, z, weight_t, scales_node, bias_node, sums)
        em.bind(op, em.call(linear_int_mm, args, name=op.output.name_hint))
        return
    packed = em.new_attr(f"packed.{name}", _onednn.qlinear_prepack(weight.to(torch.int8), None))
    zero_points = em.new_attr(f"packed.{name}_zero_points", torch.zeros(channels, dtype=torch.int64))
    if kernel == "onednn":
        args = (x, s, z, packed, scales_node, zero_points, bias_node, 1.0, 0, torch.float32, "none", [], "")
        em.bind(op, em.call(_onednn.qlinear_pointwise.tensor, args, name=op.output.name_hint))
        return
    corrections = None if exact_zero else em.new_attr(
        f"packed.{name}_corrections", weight.to(torch.float64).sum(1).mul_(scales.double()).float())
    args = (x, s, z, packed, scales_node, zero_points, bias_node, corrections)
    em.bind(op, em.call(linear_onednn_shifted, args, name=op.output.name_hint))
