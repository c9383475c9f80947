"""fold-smoothing: SmoothQuant's division taken into the norm before it, where nothing else reads the norm.

`smooth-quant` divides a linear's input by per-channel powers of two (`aten.op "mul.Tensor"
{smoothing}`). In a pre-norm transformer (GPT-2, Llama, OPT) that input is a LayerNorm's or
RMSNorm's output read by the linears alone, and the norm ends in a constant per-channel scale:
the division can be that scale's, and costs nothing when the program runs. Before:

    %n = aten.op "layer_norm.default"(%x, [2], %w, %b, 1.0e-05, false) : (...) -> tensor<3x2xf32>
    %s = aten.op "mul.Tensor"(%n, %inv) {smoothing} : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %q = quant.qcast %s : ...

After (two new parameters, `w * inv` and `b * inv`; the store's tensors are never changed):

    %n = aten.op "layer_norm.default"(%x, [2], %w_smoothed, %b_smoothed, 1.0e-05, false) : (...) -> tensor<3x2xf32>
    %q = quant.qcast %n : ...

What folds: a `{smoothing}` multiplication by a constant whose other operand is the result of
`layer_norm` or `rms_norm` with a constant weight (and bias), or of a multiplication by a
constant of the value's last dimension (an RMSNorm written out: Llama's `weight * x`), that
nothing else reads, whose constants nothing writes. Each fold counts as `folded`.

Exact: the scales are powers of two, and the norm's weight and bias enter its result linearly,
so scaling them scales every rounded step of its arithmetic exactly (barring subnormals). The
lowering pipeline runs this pass (`qir.api.lowering_pipeline`); the quantized program keeps the
division, where the numeric debugger (`qir.debug`) matches the norm with the float model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, f32
from xdsl.ir import SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from qir.aliasing import Mutations
from qir.context import params_of
from qir.dialects.aten import AtenOp, ParamOp
from qir.params import ParamStore, new_param, param_tensor
from qir.pass_manager import QirPass, count

NORMS = {"layer_norm": ("weight", "bias"), "rms_norm": ("weight",)}
"""Norms whose result ends in a constant per-channel scale (and shift): their affine parameters."""


@dataclass(frozen=True)
class FoldSmoothing(QirPass):
    name = "fold-smoothing"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        divisions = [o for o in op.walk() if isinstance(o, AtenOp) and "smoothing" in o.attributes]
        if not divisions:
            return
        store, mutations = params_of(ctx), Mutations.of(op)
        for division in divisions:
            if _fold(division, store, mutations):
                count(ctx, "folded")


def _fold(division: AtenOp, store: ParamStore, mutations: Mutations) -> bool:
    value, inverse = division.arg("self"), division.arg("other")
    if not (isinstance(value, SSAValue) and _constant(inverse, mutations)) or not value.has_one_use():
        return False
    producer = value.owner
    if not isinstance(producer, AtenOp):
        return False
    if producer.op_name in NORMS:
        parameters = [producer.arg(name) for name in NORMS[producer.op_name]]
        if parameters[0] is None:
            return False  # no affine parameters to take the scales
    elif producer.target.data == "mul.Tensor":
        parameters = [_channel_factor(producer, value)]
    else:
        return False
    parameters = [p for p in parameters if p is not None]
    scales = param_tensor(inverse.owner, store)
    if not parameters or not all(_scales_channels(p, scales, mutations) for p in parameters):
        return False
    for parameter in parameters:
        param = parameter.owner
        scaled = new_param(store, f"{param.param_name}_smoothed", param_tensor(param, store) * scales,
                           param.kind.data)
        Rewriter.insert_op(scaled, InsertPoint.before(producer))
        producer.operands[list(producer.operands).index(parameter)] = scaled.result
        if not param.result.uses:
            Rewriter.erase_op(param)
    division.results[0].replace_all_uses_with(value)
    Rewriter.erase_op(division)
    if not inverse.uses:
        Rewriter.erase_op(inverse.owner)
    return True


def _constant(value, mutations: Mutations) -> bool:
    return isinstance(value, SSAValue) and isinstance(value.owner, ParamOp) and not mutations.written(value)


def _channel_factor(mul: AtenOp, result: SSAValue) -> SSAValue | None:
    """The constant factor of `mul` (`self * other`) when the other factor has the result's type."""
    left, right = mul.arg("self"), mul.arg("other")
    for factor, other in ((left, right), (right, left)):
        if isinstance(factor, SSAValue) and isinstance(factor.owner, ParamOp) and isinstance(other, SSAValue) \
                and other.type == result.type:
            return factor
    return None


def _scales_channels(value: SSAValue, scales: torch.Tensor, mutations: Mutations) -> bool:
    """Whether the constant `value` holds one float32 entry per channel of the last dimension
    (so multiplying it by `scales` divides those channels and changes no shape)."""
    if not _constant(value, mutations):
        return False
    shape = value.type.get_shape()
    return len(shape) >= 1 and shape[-1] == scales.numel() and value.type.element_type == f32
