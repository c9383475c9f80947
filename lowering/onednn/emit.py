"""How `onednn` ops become torch calls.

Prepacking happens here, once, while the module is built: a `onednn.qconv_prepack` becomes
an opaque oneDNN weight registered on the module (a `get_attr`), and so do each kernel's
weight scales, weight zero points and float bias, so the running module only calls
kernels. Activations are plain uint8 / int8 tensors; the kernels' scales and zero points
are read off the types. The ops oneDNN has no kernel for call the functions of
`qir.lowering.onednn.storage_kernels`, with their constants computed here.

The bias a kernel gets is the `ref` op's bias as `qir.dialects.ref` defines it, in float:
a float bias `b` becomes `round(b / (sx * sw)) * (sx * sw)`, an i32 bias `b * (sx * sw)`. The
kernel adds it to `acc * sx * sw`, so it computes `(acc + round(b / (sx * sw))) * sx * sw`,
the definition's accumulator, and not a differently rounded one.
"""

from __future__ import annotations

import torch
from xdsl.dialects.builtin import IntegerType
from xdsl.ir import Block, SSAValue

from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.quant import UniformQuantizedPerAxisType
from qir.dialects.ref import per_tensor, quantized
from qir.emitter import Emission, Emitter
from qir.errors import QirError
from qir.lowering.dynamic_kernels.emit import EMITTERS
from qir.lowering.onednn import dialect as onednn
from qir.lowering.onednn import storage_kernels as kernels
from qir.lowering.onednn import storage_ops as storage

EMISSION = Emission()
"""The emission of every `onednn` op, handed to the backend."""

for _op in onednn.DYNAMIC_OPS:  # dynamic quantization's kernels, emitted as x86 emits them
    EMISSION.rule(_op.name)(EMITTERS[_op.name.split(".", 1)[1]])

_onednn = torch.ops.onednn
_aten = torch.ops.aten

_CONVS = {
    "onednn.qconv1d_pointwise": _onednn.qconv1d_pointwise.default,
    "onednn.qconv2d_pointwise": _onednn.qconv2d_pointwise.default,
    "onednn.qconv3d_pointwise": _onednn.qconv3d_pointwise.default,
}


# --------------------------------------------------------------------------
# Constants.
# --------------------------------------------------------------------------


def _constant(em: Emitter, op, value: SSAValue, what: str) -> torch.Tensor:
    tensor = em.constant(value)
    if tensor is None:
        raise QirError(f"{op.name}: the {what} must be a parameter (it is read once, when the module is built)")
    return tensor


def _name(value: SSAValue, default: str) -> str:
    return (value.name_hint or default).removeprefix("p_")


def _weight_scales(weight: SSAValue) -> torch.Tensor:
    """Per-channel or per-tensor scales of a weight, as the kernels take them (float32)."""
    qtype = quantized(weight)
    if isinstance(qtype, UniformQuantizedPerAxisType):
        return torch.tensor(qtype.scales, dtype=torch.float32)
    return torch.tensor([qtype.scale], dtype=torch.float32)


def _prepack(op):
    prepack = onednn.prepack_of(op)
    if not isinstance(prepack, onednn.QConvPrepackOp | onednn.QLinearPrepackOp):
        raise QirError(f"{op.name}: the packed weight must come from an onednn prepack op "
                       f"(its scales and geometry are read from it)")
    return prepack


def _weight_qparams(em: Emitter, op, prepack) -> tuple:
    """get_attr nodes of the packed weight's scales and zero points (one pair per prepack)."""
    target = em.node(op.packed).target
    scales = _weight_scales(prepack.weight)
    return (em.get_attr(f"{target}_scales", scales, "constant"),
            em.get_attr(f"{target}_zero_points", torch.zeros(scales.shape, dtype=torch.int64), "constant"))


def kernel_bias(bias: torch.Tensor, integer: bool, x_scale: float, weight: SSAValue) -> torch.Tensor:
    """The float bias that makes the kernel compute the `ref` definition's accumulator (module
    docstring): `round(b / (sx * sw)) * (sx * sw)`, or `b * (sx * sw)` for an i32 bias."""
    channels = weight.type.get_shape()[0]
    qtype = quantized(weight)
    scales = (torch.tensor(qtype.scales, dtype=torch.float64) if isinstance(qtype, UniformQuantizedPerAxisType)
              else torch.full((channels,), qtype.scale, dtype=torch.float64))
    acc_scales = x_scale * scales
    units = bias.double() if integer else torch.round(bias.double() / acc_scales)
    return (units * acc_scales).float()


def _bias(em: Emitter, op, prepack):
    tensor = _constant(em, op, op.bias, "bias")
    integer = isinstance(op.bias.type.element_type, IntegerType)
    value = kernel_bias(tensor, integer, per_tensor(op.input).scale, prepack.weight)
    return em.new_attr(f"biases.{_name(op.output, 'kernel')}", value)


def _output(value: SSAValue) -> tuple[float, int, torch.dtype]:
    """Output scale, zero point and dtype of a kernel (1, 0, float32 for a float result)."""
    qtype = per_tensor(value)
    if qtype is None:
        return 1.0, 0, torch.float32
    return qtype.scale, qtype.zero_point, _dtype(qtype)


def _dtype(qtype) -> torch.dtype:
    return getattr(torch, qtype.storage_dtype_name)


def _post(op) -> tuple[str, list[float], str]:
    """(attr, scalars, algorithm) of a kernel's post op, as torch's oneDNN ops spell them."""
    if op.post is None:
        return "none", [], ""
    args = [float(a) for a in op.post_args.get_values()] if op.post_args is not None else []
    return op.post.data, args, op.algorithm.data if op.algorithm is not None else ""


def _ints(attr) -> list[int]:
    return [int(v) for v in attr.get_values()]


def _input_qparams(value: SSAValue) -> tuple[float, int]:
    qtype = per_tensor(value)
    return qtype.scale, qtype.zero_point


def _call(em: Emitter, op, target, args: tuple) -> None:
    em.bind(op, em.call(target, args, name=op.results[0].name_hint))


# --------------------------------------------------------------------------
# Prepacking.
# --------------------------------------------------------------------------


@EMISSION.rule("onednn.qconv_prepack")
def _emit_conv_prepack(em: Emitter, op: onednn.QConvPrepackOp) -> None:
    weight = _constant(em, op, op.weight, "weight")
    x_shape = _ints(op.x_shape) if op.x_shape is not None else None
    packed = _onednn.qconv_prepack(weight, _weight_scales(op.weight), op.x_scale.value.data,
                                   op.x_zero_point.value.data, _ints(op.stride), _ints(op.padding),
                                   _ints(op.dilation), op.groups.value.data, x_shape)
    em.nodes[op.output] = em.new_attr(f"packed.{_name(op.weight, 'weight')}", packed)


@EMISSION.rule("onednn.qlinear_prepack")
def _emit_linear_prepack(em: Emitter, op: onednn.QLinearPrepackOp) -> None:
    weight = _constant(em, op, op.weight, "weight")
    x_shape = _ints(op.x_shape) if op.x_shape is not None else None
    em.nodes[op.output] = em.new_attr(f"packed.{_name(op.weight, 'weight')}", _onednn.qlinear_prepack(weight, x_shape))


# --------------------------------------------------------------------------
# oneDNN kernels.
# --------------------------------------------------------------------------


def _conv_geometry(prepack: onednn.QConvPrepackOp) -> tuple:
    return _ints(prepack.stride), _ints(prepack.padding), _ints(prepack.dilation), prepack.groups.value.data


@EMISSION.rule("onednn.qconv1d_pointwise")
@EMISSION.rule("onednn.qconv2d_pointwise")
@EMISSION.rule("onednn.qconv3d_pointwise")
def _emit_qconv(em: Emitter, op) -> None:
    prepack = _prepack(op)
    scales, zero_points = _weight_qparams(em, op, prepack)
    out_scale, out_zero_point, dtype = _output(op.output)
    node = em.call(_CONVS[op.name], (em.node(op.input), *_input_qparams(op.input), em.node(op.packed), scales,
                                     zero_points, _bias(em, op, prepack), *_conv_geometry(prepack), out_scale,
                                     out_zero_point, dtype, *_post(op)), name=op.output.name_hint)
    if dtype == torch.float32:
        # oneDNN leaves channels-last tensors; float code after a float conv may `view` them.
        node = em.call(_aten.contiguous.default, (node,), name=op.output.name_hint)
    em.bind(op, node)


@EMISSION.rule("onednn.qconv2d_pointwise_sum")
def _emit_qconv_sum(em: Emitter, op: onednn.QConv2dSumOp) -> None:
    prepack = _prepack(op)
    scales, zero_points = _weight_qparams(em, op, prepack)
    out_scale, out_zero_point, _ = _output(op.output)
    accum_scale, accum_zero_point = _input_qparams(op.accum)
    copy = must_copy(em, op.accum, op)
    _call(em, op, kernels.qconv2d_sum, (em.node(op.input), *_input_qparams(op.input), em.node(op.packed), scales,
                                        zero_points, em.node(op.accum), _bias(em, op, prepack),
                                        *_conv_geometry(prepack), out_scale, out_zero_point, accum_scale,
                                        accum_zero_point, _post(op)[0], copy))


@EMISSION.rule("onednn.qlinear_pointwise")
def _emit_qlinear(em: Emitter, op: onednn.QLinearOp) -> None:
    prepack = _prepack(op)
    scales, zero_points = _weight_qparams(em, op, prepack)
    _call(em, op, _onednn.qlinear_pointwise.default,
          (em.node(op.input), *_input_qparams(op.input), em.node(op.packed), scales, zero_points,
           _bias(em, op, prepack), *_output(op.output), *_post(op)))


@EMISSION.rule("onednn.qlinear_pointwise_binary")
def _emit_qlinear_binary(em: Emitter, op: onednn.QLinearBinaryOp) -> None:
    prepack = _prepack(op)
    scales, zero_points = _weight_qparams(em, op, prepack)
    x = (em.node(op.input), *_input_qparams(op.input), em.node(op.packed), scales, zero_points)
    unary = _post(op)[0]
    if op.binary.data == "sum":
        out_scale, out_zero_point, _ = _output(op.output)
        _call(em, op, kernels.qlinear_sum, (*x, em.node(op.other), _bias(em, op, prepack), out_scale, out_zero_point,
                                            *_input_qparams(op.other), unary, must_copy(em, op.other, op)))
        return
    # oneDNN reads a float `other` as if it were contiguous (a transposed view comes out as garbage).
    other = em.call(_aten.contiguous.default, (em.node(op.other),))
    _call(em, op, _onednn.qlinear_pointwise.binary,
          (*x, other, _bias(em, op, prepack), *_output(op.output), 1.0, 0, "add", 1.0, unary, [], ""))


def must_copy(em: Emitter, value: SSAValue, op) -> bool:
    """Whether the in-place sum `op` into `value` (its operand 3) could change what an op reads:
    some value that may share `value`'s buffer (views of it, what it is a view of, through data
    movement and earlier in-place sums) is read by `op` itself as another operand (a conv
    reading its accumulator as its input), by an op emitted after `op`, or is an input or a
    parameter (whose buffer the module does not own). Ops are emitted in order: a later
    reader's results are not mapped yet; the return, which has none, comes last."""
    for alias in _aliases(em, value, op):
        if isinstance(alias.owner, Block) or isinstance(alias.owner, ParamOp):
            return True
        for use in alias.uses:
            reader = use.operation
            if reader is op:
                if alias is not value or use.index != 3:  # the kernel reads its accumulator otherwise
                    return True
                continue
            if not reader.results or reader.results[0] not in em.nodes:
                return True
    return False


def _aliases(em: Emitter, value: SSAValue, op) -> list[SSAValue]:
    """`value` and every value that may share its buffer before `op` writes into it: ATen ops on
    quantized values are data movement (their results may be views of their operands), and the
    result of an earlier in-place sum is its accumulator, unless that sum copied it (`op`'s own
    result is the new content)."""
    seen, stack = [value], [value]
    while stack:
        current = stack.pop()
        owner = current.owner
        sources = []
        if isinstance(owner, AtenOp):
            sources = list(owner.operands)
        elif _sums_in_place(em, owner):
            sources = [owner.operands[3]]
        users = []
        for use in current.uses:
            reader = use.operation
            if reader is op:
                continue
            if isinstance(reader, AtenOp) or (use.index == 3 and _sums_in_place(em, reader)):
                users.extend(reader.results)
        for candidate in sources + users:
            if quantized(candidate) is not None and candidate not in seen:
                seen.append(candidate)
                stack.append(candidate)
    return seen


def _sums_in_place(em: Emitter, op) -> bool:
    """Whether `op` is an in-place sum (its operand 3 the accumulator) emitted without a copy."""
    if not (isinstance(op, onednn.QConv2dSumOp)
            or (isinstance(op, onednn.QLinearBinaryOp) and op.binary.data == "sum")):
        return False
    node = em.nodes.get(op.results[0])
    return node is None or node.args[-1] is not True  # not emitted yet: assume the worst


# --------------------------------------------------------------------------
# Arithmetic on storage (what oneDNN has no kernel for).
# --------------------------------------------------------------------------


def _bounds(op, qout) -> tuple[int, int]:
    """The clamp of a requantization: the post op's bounds (`ref`'s definition), then the storage's."""
    lo, hi = qout.storage_min, qout.storage_max
    post = getattr(op, "post", None)
    if post is None:
        return lo, hi
    zy, sy = qout.zero_point, qout.scale
    if post.data == "relu":
        post_lo, post_hi = zy, hi
    else:  # hardtanh
        a, b = op.post_args.get_values()
        post_lo, post_hi = zy + round(a / sy), zy + round(b / sy)
    return min(max(post_lo, lo), hi), min(max(post_hi, lo), hi)


def _requantization(op, in_scale: float) -> tuple[float, int, int, int, torch.dtype]:
    """(multiplier, zero point, lo, hi, dtype) taking values of scale `in_scale` to the op's result."""
    qout = per_tensor(op.output)
    return (in_scale / qout.scale, qout.zero_point, *_bounds(op, qout), _dtype(qout))


@EMISSION.rule("onednn.quantize")
def _emit_quantize(em: Emitter, op: storage.QuantizeOp) -> None:
    qout = per_tensor(op.output)
    _call(em, op, kernels.quantize, (em.node(op.input), 1.0 / qout.scale, qout.zero_point, qout.storage_min,
                                     qout.storage_max, _dtype(qout)))


@EMISSION.rule("onednn.dequantize")
def _emit_dequantize(em: Emitter, op: storage.DequantizeOp) -> None:
    _call(em, op, kernels.dequantize, (em.node(op.input), *_input_qparams(op.input)))


def _requantized(em: Emitter, op, value: SSAValue, name: str):
    """`value` in `op`'s result parameters: itself when they are the same, else requantized."""
    if value.type.element_type == op.output.type.element_type:
        return em.node(value)
    qin = per_tensor(value)
    return em.call(kernels.requantize, (em.node(value), qin.zero_point, *_requantization(op, qin.scale)), name=name)


@EMISSION.rule("onednn.requantize")
def _emit_requantize(em: Emitter, op: storage.RequantizeOp) -> None:
    em.bind(op, _requantized(em, op, op.input, op.output.name_hint or "requantize"))


@EMISSION.rule("onednn.clamp")
def _emit_clamp(em: Emitter, op: storage.ClampOp) -> None:
    _call(em, op, kernels.clamp, (em.node(op.input), op.min.value.data, op.max.value.data))


@EMISSION.rule("onednn.add")
def _emit_add(em: Emitter, op: storage.AddOp) -> None:
    a, b, y = per_tensor(op.lhs), per_tensor(op.rhs), per_tensor(op.output)
    ma, mb = a.scale / y.scale, b.scale / y.scale
    offset = -a.zero_point * ma - b.zero_point * mb
    _call(em, op, kernels.add, (em.node(op.lhs), em.node(op.rhs), ma, mb, offset, y.zero_point, *_bounds(op, y),
                                _dtype(y)))


@EMISSION.rule("onednn.mul")
def _emit_mul(em: Emitter, op: storage.MulOp) -> None:
    a, b = per_tensor(op.lhs), per_tensor(op.rhs)
    _call(em, op, kernels.mul, (em.node(op.lhs), em.node(op.rhs), a.zero_point, b.zero_point,
                                *_requantization(op, a.scale * b.scale)))


@EMISSION.rule("onednn.matmul")
def _emit_matmul(em: Emitter, op: storage.MatmulOp) -> None:
    a, b = per_tensor(op.lhs), per_tensor(op.rhs)
    operands = (em.node(op.lhs), em.node(op.rhs), a.zero_point, b.zero_point)
    if per_tensor(op.output) is None:
        _call(em, op, kernels.matmul_float, (*operands, a.scale * b.scale))
    else:
        _call(em, op, kernels.matmul, (*operands, *_requantization(op, a.scale * b.scale)))


@EMISSION.rule("onednn.cat")
def _emit_cat(em: Emitter, op: storage.CatOp) -> None:
    hint = op.output.name_hint or "cat"
    inputs = [_requantized(em, op, v, f"{hint}_in{i}") for i, v in enumerate(op.inputs)]
    _call(em, op, _aten.cat.default, (inputs, op.dim.value.data))


def _flag(attr, default: bool) -> bool:
    return default if attr is None else bool(attr.value.data)


@EMISSION.rule("onednn.avg_pool")
def _emit_avg_pool(em: Emitter, op: storage.AvgPoolOp) -> None:
    qin = per_tensor(op.input)
    divisor = op.divisor_override.value.data if op.divisor_override is not None else None
    _call(em, op, kernels.avg_pool, (em.node(op.input), qin.zero_point, _ints(op.kernel_size), _ints(op.stride),
                                     _ints(op.padding), _flag(op.ceil_mode, False), _flag(op.count_include_pad, True),
                                     divisor, *_requantization(op, qin.scale)))


@EMISSION.rule("onednn.adaptive_avg_pool")
def _emit_adaptive_avg_pool(em: Emitter, op: storage.AdaptiveAvgPoolOp) -> None:
    qin = per_tensor(op.input)
    size = _ints(op.output_size)
    pooled = op.input.type.get_shape()[-len(size):]
    if all(s == 1 for s in size):
        _call(em, op, kernels.global_avg_pool, (em.node(op.input), qin.zero_point, len(size),
                                                *_requantization(op, qin.scale)))
        return
    _call(em, op, kernels.adaptive_avg_pool, (em.node(op.input), qin.zero_point, size,
                                              *_requantization(op, qin.scale)))


@EMISSION.rule("onednn.max_pool")
def _emit_max_pool(em: Emitter, op: storage.MaxPoolOp) -> None:
    _call(em, op, kernels.max_pool, (em.node(op.input), _ints(op.kernel_size), _ints(op.stride), _ints(op.padding),
                                     _ints(op.dilation), bool(op.ceil_mode.value.data),
                                     per_tensor(op.input).storage_min))


def storage_table(qin, qout, fn: str, fn_args) -> torch.Tensor:
    """`ref.lookup`'s table over every bit pattern of 8-bit storage, indexed as unsigned: entry `u`
    is the result for the storage value whose bits are `u` (values outside a narrowed storage
    range, which never occur, take the nearest end's entry)."""
    from qir.emit_ref import lookup_table

    if qin.storage_width != 8:
        raise QirError(f"onednn.lookup: a table over {qin.storage_width}-bit storage is not 8-bit")
    table = lookup_table(qin, qout, fn, fn_args)
    low = -128 if qin.is_signed else 0
    values = torch.arange(low, low + 256)
    full = table[(values.clamp(qin.storage_min, qin.storage_max) - qin.storage_min)]
    return torch.cat([full[128:], full[:128]]) if qin.is_signed else full


@EMISSION.rule("onednn.lookup")
def _emit_lookup(em: Emitter, op: storage.LookupOp) -> None:
    table = storage_table(per_tensor(op.input), per_tensor(op.output), op.fn.data, op.fn_args)
    node = em.new_attr(f"tables.{op.output.name_hint or 'lookup'}", table)
    _call(em, op, kernels.lookup, (em.node(op.input), node))
