"""Reading the Q/DQ form: which quantized value an op reads, which quantize ends its result.

After `convert`, a quantized op is still a float op between casts: its inputs are
dequantized, it runs in float, [an add and an activation fused into it follow,] and
its output is quantized again:

    %x_dq = quant.dcast %x_q : ... to tensor<1x3x8x8xf32>
    %w_dq = quant.dcast %w : ... to tensor<4x3x3x3xf32>          (%w a quantized aten.param)
    %c = aten.op "conv2d.default"(%x_dq, %w_dq, %b) : ...
    %r = aten.op "relu.default"(%c) : ...
    %r_q = quant.qcast %r : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!quant.uniform<u8:f32, 0.01>>

Every stage that asks what is quantized reads these chains the same way, here:
`reference-rewrite` turns them into `ref` ops, the backends' saturation check
(`qir.accumulation.qdq_may_saturate`) asks which conv or linear reads uint8 activations
and int8 weights, `convert` gives a custom module the quantized boundary its casts say, and
`qir.debug` pairs each quantized op with its float twin. By op identity and dataflow only, as
everything else in qir.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from xdsl.ir import Operation, OpResult, SSAValue

from qir.dialects import ref
from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.quant import (
    DequantizeCastOp,
    DynamicDequantizeCastOp,
    QuantizeCastOp,
    UniformQuantizedPerAxisType,
)

ADD = frozenset({"add.Tensor", "add_.Tensor"})
"""The adds a conv fuses (`ref.conv_add`) and that are quantized adds themselves (`ref.add`)."""

# --------------------------------------------------------------------------
# Into an op: what its operands dequantize.
# --------------------------------------------------------------------------


def dequantized(value: Any) -> SSAValue | None:
    """The quantized value that `value` dequantizes (`quant.dcast`), or None."""
    if isinstance(value, OpResult) and isinstance(value.owner, DequantizeCastOp):
        return value.owner.input
    return None


def per_tensor_dequantized(value: Any) -> SSAValue | None:
    """The per-tensor quantized value `value` dequantizes, or None."""
    source = dequantized(value)
    return source if source is not None and ref.per_tensor(source) is not None else None


def dequantized_param(value: Any, axis: int) -> SSAValue | None:
    """The quantized `aten.param` a weight operand dequantizes, quantized along `axis` if per
    channel; None for anything else."""
    source = dequantized(value)
    if source is None or not isinstance(source.owner, ParamOp):
        return None
    qtype = ref.quantized(source)
    if isinstance(qtype, UniformQuantizedPerAxisType) and qtype.axis != axis:
        return None
    return source


def dynamically_dequantized(value: Any) -> DynamicDequantizeCastOp | None:
    """The `quant.dynamic_dcast` giving `value` (an input quantized at run time), or None."""
    if isinstance(value, OpResult) and isinstance(value.owner, DynamicDequantizeCastOp):
        return value.owner
    return None


def is_dequantized(value: SSAValue) -> bool:
    """Whether `value` is dequantized, with parameters known at compile time or at run time."""
    return dequantized(value) is not None or dynamically_dequantized(value) is not None


# --------------------------------------------------------------------------
# Out of an op: the quantize its result meets.
# --------------------------------------------------------------------------


def only_user(value: SSAValue) -> Operation | None:
    use = value.get_unique_use()
    return use.operation if use is not None else None


def only_quantize(value: SSAValue) -> QuantizeCastOp | None:
    """The per-tensor quantize that is the only reader of `value`, or None."""
    user = only_user(value)
    if isinstance(user, QuantizeCastOp) and ref.per_tensor(user.result) is not None:
        return user
    return None


def quantize_reading(value: SSAValue) -> QuantizeCastOp | None:
    """The first quantize among the readers of `value`, of any granularity, or None."""
    return next((use.operation for use in value.uses if isinstance(use.operation, QuantizeCastOp)), None)


def output_casts(value: SSAValue) -> tuple[QuantizeCastOp, DequantizeCastOp] | None:
    """The quantize reading `value` and the dequantize reading that: the pair `convert` puts on
    a quantized output for the float ops after it; None when there is none."""
    for use in value.uses:
        if isinstance(use.operation, QuantizeCastOp):
            qcast = use.operation
            for q_use in qcast.result.uses:
                if isinstance(q_use.operation, DequantizeCastOp):
                    return qcast, q_use.operation
    return None


# --------------------------------------------------------------------------
# The fused tail: [add of a dequantized tensor] [activation] quantize.
# --------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """A constant int or float argument as a float (not a bool), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def writes_first_operand(op: AtenOp) -> bool:
    """In-place ATen ops (`relu_`, `add_`) end in `_`; their first argument is written."""
    return op.op_name.endswith("_") and not op.op_name.endswith("__")


def in_place_ok(op: AtenOp) -> bool:
    """An in-place op may become a functional op of the chain only when nothing else reads the
    tensor it writes (otherwise that reader would have seen the write)."""
    if not writes_first_operand(op):
        return True
    first = op.arg(0)
    return isinstance(first, SSAValue) and first.has_one_use()


def plain_add(op: AtenOp) -> bool:
    """`add.Tensor(a, b)` of two tensors without an `alpha` other than 1."""
    if len(op.operands) != 2 or len(op.args.data) != 2:
        return False
    alpha = op.kwargs.data.get("alpha") if op.kwargs is not None else None
    return op.kwargs is None or (set(op.kwargs.data) == {"alpha"} and number(op.value(alpha)) == 1.0)


@dataclass(frozen=True)
class Activation:
    """A fused activation: `relu`, or `hardtanh` with its bounds."""

    name: str
    args: tuple[float, ...] = ()


def activation(op: Operation, value: SSAValue) -> Activation | None:
    """The activation `op` applies to `value`, if it is one a quantized op can fuse: `relu`,
    `relu6`, `hardtanh`, `clamp` / `clamp_min` with constant finite bounds (in place or not)."""
    if not isinstance(op, AtenOp) or len(op.operands) != 1 or op.operands[0] is not value \
            or len(op.results) != 1 or op.results[0].type != value.type or not in_place_ok(op):
        return None
    name = op.op_name.rstrip("_")
    if name == "relu":
        return Activation("relu")
    if name == "relu6":
        return Activation("hardtanh", (0.0, 6.0))
    if name == "hardtanh":
        lo, hi = number(op.arg("min_val", -1.0)), number(op.arg("max_val", 1.0))
    elif name == "clamp" and op.target.data in ("clamp.default", "clamp_.default"):
        lo, hi = op.arg("min"), op.arg("max")
        if hi is None and number(lo) == 0.0:
            return Activation("relu")
        lo, hi = number(lo), number(hi)
    elif name == "clamp_min" and op.target.data in ("clamp_min.default", "clamp_min_.default"):
        return Activation("relu") if number(op.arg("min")) == 0.0 else None
    else:
        return None
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        return None
    return Activation("hardtanh", (lo, hi))


@dataclass
class Tail:
    """What follows a producer: the ops fused into it and the quantize that ends them."""

    ops: list[Operation] = field(default_factory=list[Operation])
    """The fused ops after the producer, in order (add, activation)."""
    addend: SSAValue | None = None
    """The per-tensor quantized value the fused add dequantizes and adds."""
    activation: Activation | None = None
    quantize: QuantizeCastOp | None = None
    """The per-tensor quantize ending the chain; None when the result is read in float."""


def tail(value: SSAValue, allow_add: bool = False) -> Tail:
    """Follow `value`'s single-reader chain: [add of a dequantized tensor of its shape, with
    `allow_add`] [activation] per-tensor quantize."""
    found = Tail()
    user = only_user(value)
    if allow_add and isinstance(user, AtenOp) and user.target.data in ADD and plain_add(user) \
            and len(user.results) == 1 and user.results[0].type == value.type:
        a, b = user.operands
        other = b if a is value else a
        source = per_tensor_dequantized(other)
        written = a  # add_ writes its first operand
        if source is not None and other is not value and source.type.get_shape() == value.type.get_shape() \
                and (not writes_first_operand(user) or written.has_one_use()):
            found.ops.append(user)
            found.addend = source
            value = user.results[0]
            user = only_user(value)
    if user is not None and (post := activation(user, value)) is not None:
        found.ops.append(user)
        found.activation = post
        value = user.results[0]
        user = only_user(value)
    if isinstance(user, QuantizeCastOp) and ref.per_tensor(user.result) is not None:
        found.quantize = user
    return found
