"""How the `ref` ops become torch calls: integer ATen arithmetic, exactly as
`qir.dialects.ref` defines it.

At the reference stage a quantized value is its integer storage tensor (uint8,
int8, ...), as at the quantized stage (`qir.emit_quant`). Each ref op is
emitted as the arithmetic of its definition, on the storage:

    x64  = x.to(float64) - zx                  integers, exact in float64
    acc  = conv(x64, w64, b64)                 w64 = w - zw and b64 = round(b / (sx * sw)),
                                               both computed once, here
    y    = clamp(round(acc * m) + zy, lo, hi)  m = (sx * sw) / sy, a get_attr constant per channel
    out  = y.to(uint8)

Sums of products of integers below 2^53 are exact in float64 whatever order a
kernel adds them in, so a float64 convolution, linear or matmul is the exact
integer accumulation. What depends only on constants is computed once at
emission and registered on the module (`Emitter.get_attr`): centered float64
weights, quantized biases, multipliers, the bin matrices of adaptive pooling,
lookup tables (the float64 ATen op over every storage value). Nothing depends
on the batch size: the shapes are the tensors' own at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import getitem
from typing import Any

import torch
import torch.fx as fx
from xdsl.dialects.builtin import IntegerType, NoneAttr, NoneType
from xdsl.ir import SSAValue

from qir.accumulation import Reduction, conv_saturation, linear_saturation, risky_pairs
from qir.dialects import ref
from qir.dialects.aten import from_attr, resolve_overload
from qir.dialects.quant import UniformQuantizedPerAxisType
from qir.emitter import Emitter, emits
from qir.errors import QirError
from qir.params import constant_tensor

_aten = torch.ops.aten

_CONVS = {1: _aten.conv1d.default, 2: _aten.conv2d.default, 3: _aten.conv3d.default}
_CONV_TRANSPOSES = {1: _aten.conv_transpose1d.default, 2: _aten.conv_transpose2d.input,
                    3: _aten.conv_transpose3d.input}
_AVG_POOLS = {1: _aten.avg_pool1d.default, 2: _aten.avg_pool2d.default, 3: _aten.avg_pool3d.default}


class _Call:
    """Emits the calls of one ref op: names its nodes after the op's result, its constants too."""

    def __init__(self, em: Emitter, op):
        self.em = em
        self.op = op
        hint = op.results[0].name_hint or op.name.split(".")[-1]
        self.hint = hint
        self.prefix = f"ref.{hint}_{len(em.attrs)}"  # unique: every registration grows em.attrs
        self._centered: dict[SSAValue, fx.Node] = {}

    def __call__(self, target: Any, *args: Any, what: str = "") -> fx.Node:
        return self.em.call(target, args, name=f"{self.hint}_{what}" if what else self.hint)

    def const(self, what: str, tensor: torch.Tensor) -> fx.Node:
        return self.em.get_attr(f"{self.prefix}.{what}", tensor, "constant")

    def node(self, value: SSAValue) -> fx.Node:
        return self.em.node(value)

    # -- the shared arithmetic ------------------------------------------

    def centered(self, value: SSAValue, what: str) -> fx.Node:
        """`float64(x) - zx` of a per-tensor quantized value (once per value: a conv_add of its own
        input, `x * x`, read it twice)."""
        node = self._centered.get(value)
        if node is None:
            qtype = ref.per_tensor(value)
            node = self(_aten.to.dtype, self.node(value), torch.float64, what=f"{what}64")
            if qtype.zero_point:
                node = self(_aten.sub.Tensor, node, qtype.zero_point, what=f"{what}_c")
            self._centered[value] = node
        return node

    def scale_by(self, value: fx.Node, factors: Sequence[float], shape: Sequence[int], what: str) -> fx.Node:
        """`value * factors`, one factor per channel (a constant of `shape`), or one for all."""
        if len(set(factors)) == 1:
            if factors[0] == 1.0:
                return value
            return self(_aten.mul.Tensor, value, float(factors[0]), what=what)
        tensor = torch.tensor(list(factors), dtype=torch.float64).reshape(tuple(shape))
        return self(_aten.mul.Tensor, value, self.const(what, tensor), what=what)

    def requantize(self, value: fx.Node) -> fx.Node:
        """`clamp(post(round(value) + zy), qmin, qmax)` in the result's storage dtype."""
        qout = ref.per_tensor(self.op.results[0])
        lo, hi = _bounds(self.op, qout)
        y = self(_aten.round.default, value, what="round")
        if qout.zero_point:
            y = self(_aten.add.Tensor, y, qout.zero_point, what="zp")
        y = self(_aten.clamp.default, y, lo, hi, what="clamp")
        return self(_aten.to.dtype, y, _storage_dtype(qout))

    def finish(self, acc: fx.Node, acc_scales: Sequence[float], shape: Sequence[int],
               extra: fx.Node | None = None) -> fx.Node:
        """An accumulator of per-channel scale `acc_scales` as the op's result: requantized,
        or to a float result `float(acc * scale)`."""
        out = self.op.results[0]
        qout = ref.per_tensor(out)
        if qout is None:
            real = self.scale_by(acc, acc_scales, shape, "dequantize")
            return self(_aten.to.dtype, real, _float_dtype(out))
        y = self.scale_by(acc, [s / qout.scale for s in acc_scales], shape, "multiplier")
        if extra is not None:
            y = self(_aten.add.Tensor, y, extra, what="sum")
        return self.requantize(y)

    def rescaled(self, value: SSAValue, what: str) -> fx.Node:
        """`(x - zx) * (sx / sy)` of an input, in float64, for the op's result."""
        sx, sy = ref.per_tensor(value).scale, ref.per_tensor(self.op.results[0]).scale
        return self.scale_by(self.centered(value, what), [sx / sy], (), f"{what}_m")

    # -- constants of conv and linear -----------------------------------

    def weight(self) -> fx.Node:
        """`float64(w) - zw` (per channel along the weight's axis): computed once when the weight is a constant."""
        value = self.op.weight
        qtype = ref.quantized(value)
        rank = len(value.type.get_shape())
        if isinstance(qtype, UniformQuantizedPerAxisType):
            shape = [1] * rank
            shape[qtype.axis] = -1
            zero = torch.tensor(qtype.zero_points, dtype=torch.float64).reshape(shape)
            has_zero = any(qtype.zero_points)
        else:
            zero = torch.tensor(float(qtype.zero_point), dtype=torch.float64)
            has_zero = bool(qtype.zero_point)
        tensor = _constant_tensor(self.em, value)
        if tensor is not None:
            return self.const("weight", tensor.to(torch.float64) - zero)
        w = self(_aten.to.dtype, self.node(value), torch.float64, what="w64")
        return self(_aten.sub.Tensor, w, self.const("weight_zero_points", zero), what="w_c") if has_zero else w

    def bias(self, acc_scales: Sequence[float]) -> fx.Node:
        """The bias in accumulator units: an int32 bias as is, a float one `round(b / (sx * sw[c]))`."""
        value = self.op.bias
        is_int = isinstance(ref.element(value), IntegerType)
        scales = torch.tensor(list(acc_scales), dtype=torch.float64)
        tensor = _constant_tensor(self.em, value)
        if tensor is not None:
            b = tensor.to(torch.float64)
            return self.const("bias", b if is_int else torch.round(b / scales))
        b = self(_aten.to.dtype, self.node(value), torch.float64, what="b64")
        if is_int:
            return b
        b = self(_aten.div.Tensor, b, self.const("bias_scales", scales), what="b_div")
        return self(_aten.round.default, b, what="b_round")


def _storage_dtype(qtype) -> torch.dtype:
    return getattr(torch, qtype.storage_dtype_name)


def _float_dtype(value: SSAValue) -> torch.dtype:
    from qir.tensors import torch_dtype

    return torch_dtype(ref.element(value))


def _constant_tensor(em: Emitter, value: SSAValue) -> torch.Tensor | None:
    """The tensor behind `value` when it is an `aten.param` (seen through `quant.scast`)."""
    return constant_tensor(value, em.program.params)


def _bounds(op, qout) -> tuple[int, int]:
    """The clamp of requantization: the post op's bounds, then the storage range's."""
    lo, hi = qout.storage_min, qout.storage_max
    post = getattr(op, "post", None)
    post = post.data if post is not None else None
    if post is None:
        return lo, hi
    zy, sy = qout.zero_point, qout.scale
    if post == "relu":
        post_lo, post_hi = zy, hi
    else:  # hardtanh
        a, b = op.post_args.get_values()
        post_lo, post_hi = zy + round(a / sy), zy + round(b / sy)
    return min(max(post_lo, lo), hi), min(max(post_hi, lo), hi)


def _channel_shape(channels: int, trailing: int) -> list[int]:
    return [channels] + [1] * trailing


def _acc_scales(op, out_channels: int) -> list[float]:
    sx = ref.per_tensor(op.input).scale
    return [sx * sw for sw in ref.channel_scales(op.weight, out_channels)]


# --------------------------------------------------------------------------
# Rules.
# --------------------------------------------------------------------------


def _conv(em: Emitter, op, transposed: bool, addend: SSAValue | None) -> None:
    call = _Call(em, op)
    shape = op.weight.type.get_shape()
    groups = op.groups.value.data
    out_channels = shape[1] * groups if transposed else shape[0]
    spatial = op.spatial_rank
    scales = _acc_scales(op, out_channels)
    x = call.centered(op.input, "x")
    w = call.weight()
    b = call.bias(scales)
    stride, padding = list(op.stride.get_values()), list(op.padding.get_values())
    dilation = list(op.dilation.get_values())
    if transposed:
        output_padding = list(op.output_padding.get_values()) if op.output_padding else [0] * spatial
        acc = call(_CONV_TRANSPOSES[spatial], x, w, b, stride, padding, output_padding, groups, dilation,
                   what="acc")
    else:
        acc = call(_CONVS[spatial], x, w, b, stride, padding, dilation, groups, what="acc")
        if op.saturate is not None:
            table = _risky_pairs(em, op, Reduction(tuple(shape), groups))
            qin = ref.per_tensor(op.input)
            pad = qin.zero_point if op.saturate.data == "fbgemm" else 0
            kernel = list(shape[2:])
            lost = call(conv_saturation, call.node(op.input), call.const("saturating_pairs", table), out_channels,
                        kernel, stride, padding, dilation, groups, pad, what="saturation")
            acc = call(_aten.add.Tensor, acc, lost, what="saturated")
    extra = call.rescaled(addend, "addend") if addend is not None else None
    em.bind(op, call.finish(acc, scales, _channel_shape(out_channels, spatial), extra))


@emits("ref.conv")
def _emit_conv(em: Emitter, op: ref.ConvOp) -> None:
    _conv(em, op, op.is_transposed, None)


@emits("ref.conv_add")
def _emit_conv_add(em: Emitter, op: ref.ConvAddOp) -> None:
    _conv(em, op, False, op.addend)


@emits("ref.linear")
def _emit_linear(em: Emitter, op: ref.LinearOp) -> None:
    call = _Call(em, op)
    out_channels = op.weight.type.get_shape()[0]
    scales = _acc_scales(op, out_channels)
    acc = call(_aten.linear.default, call.centered(op.input, "x"), call.weight(), call.bias(scales), what="acc")
    if op.saturate is not None:
        table = _risky_pairs(em, op, Reduction(tuple(op.weight.type.get_shape())))
        lost = call(linear_saturation, call.node(op.input), call.const("saturating_pairs", table), out_channels,
                    what="saturation")
        acc = call(_aten.add.Tensor, acc, lost, what="saturated")
    em.bind(op, call.finish(acc, scales, [out_channels]))


@emits("ref.dynamic_linear")
def _emit_dynamic_linear(em: Emitter, op: ref.DynamicLinearOp) -> None:
    """`float32(acc * (s * sw[c]) + b)` in float64, `acc` the exact sum of `(x - z) * (w - zw)`; `s`
    and `z` are the run-time parameters as `quant.choose_qparams` was emitted (per tensor torch's
    one-element tensors, per token one per row)."""
    call = _Call(em, op)
    out_channels = op.weight.type.get_shape()[0]
    x = call(_aten.to.dtype, call.node(op.input), torch.float64, what="x64")
    x = call(_aten.sub.Tensor, x, call.node(op.zero_point), what="x_c")
    acc = call(_aten.linear.default, x, call.weight(), what="acc")
    scale = call(_aten.to.dtype, call.node(op.scale), torch.float64, what="s64")
    weight_scales = torch.tensor(ref.channel_scales(op.weight, out_channels), dtype=torch.float64)
    multiplier = call(_aten.mul.Tensor, scale, call.const("weight_scales", weight_scales), what="multiplier")
    y = call(_aten.mul.Tensor, acc, multiplier, what="real")
    bias = _constant_tensor(em, op.bias)
    b = call.const("bias", bias.to(torch.float64)) if bias is not None else \
        call(_aten.to.dtype, call.node(op.bias), torch.float64, what="b64")
    y = call(_aten.add.Tensor, y, b, what="biased")
    em.bind(op, call(_aten.to.dtype, y, _float_dtype(op.output)))


def _risky_pairs(em: Emitter, op, reduction: Reduction) -> torch.Tensor:
    """The pairs of `op`'s kernel family (its `saturate`) that can leave int16 (a constant weight only:
    `emulate-target` marks no other)."""
    weight = _constant_tensor(em, op.weight)
    if weight is None:
        raise QirError(f"{op.name}: saturate needs a constant weight")
    qin = ref.per_tensor(op.input)
    return risky_pairs(weight, reduction, op.saturate.data, qin.storage_min, qin.storage_max)


@emits("ref.matmul")
def _emit_matmul(em: Emitter, op: ref.MatmulOp) -> None:
    call = _Call(em, op)
    lhs, rhs = ref.per_tensor(op.lhs), ref.per_tensor(op.rhs)
    acc = call(_aten.matmul.default, call.centered(op.lhs, "a"), call.centered(op.rhs, "b"), what="acc")
    em.bind(op, call.finish(acc, [lhs.scale * rhs.scale], ()))


@emits("ref.add")
def _emit_add(em: Emitter, op: ref.AddOp) -> None:
    call = _Call(em, op)
    y = call(_aten.add.Tensor, call.rescaled(op.lhs, "a"), call.rescaled(op.rhs, "b"), what="sum")
    em.bind(op, call.requantize(y))


@emits("ref.mul")
def _emit_mul(em: Emitter, op: ref.MulOp) -> None:
    call = _Call(em, op)
    lhs, rhs, out = (ref.per_tensor(v) for v in (op.lhs, op.rhs, op.results[0]))
    product = call(_aten.mul.Tensor, call.centered(op.lhs, "a"), call.centered(op.rhs, "b"), what="product")
    em.bind(op, call.requantize(call.scale_by(product, [(lhs.scale * rhs.scale) / out.scale], (), "multiplier")))


def _requantized_input(call: _Call, value: SSAValue, what: str) -> fx.Node:
    """An input in the result's parameters: itself when they are the same, else requantized."""
    if ref.element(value) == ref.element(call.op.results[0]):
        return call.node(value)
    return call.requantize(call.rescaled(value, what))


@emits("ref.cat")
def _emit_cat(em: Emitter, op: ref.CatOp) -> None:
    call = _Call(em, op)
    inputs = [_requantized_input(call, v, f"in{i}") for i, v in enumerate(op.inputs)]
    em.bind(op, call(_aten.cat.default, inputs, op.dim.value.data))


@emits("ref.requantize")
def _emit_requantize(em: Emitter, op: ref.RequantizeOp) -> None:
    call = _Call(em, op)
    em.bind(op, _requantized_input(call, op.input, "x"))


@emits("ref.avg_pool")
def _emit_avg_pool(em: Emitter, op: ref.AvgPoolOp) -> None:
    call = _Call(em, op)
    kernel = list(op.kernel_size.get_values())
    stride, padding = list(op.stride.get_values()), list(op.padding.get_values())
    ceil_mode = bool(op.ceil_mode.value.data) if op.ceil_mode is not None else False
    include_pad = bool(op.count_include_pad.value.data) if op.count_include_pad is not None else True
    divisor = op.divisor_override.value.data if op.divisor_override is not None else None
    x = call.centered(op.input, "x")
    spatial = len(kernel)
    if spatial == 1 and divisor is not None:  # avg_pool1d has no divisor_override: a unit-height 2-D pool
        x = call(_aten.unsqueeze.default, x, -2, what="x2d")
        mean = call(_aten.avg_pool2d.default, x, [1, *kernel], [1, *stride], [0, *padding], ceil_mode,
                    include_pad, divisor, what="mean2d")
        mean = call(_aten.squeeze.dim, mean, -2, what="mean")
    elif spatial == 1:
        mean = call(_aten.avg_pool1d.default, x, kernel, stride, padding, ceil_mode, include_pad, what="mean")
    else:
        mean = call(_AVG_POOLS[spatial], x, kernel, stride, padding, ceil_mode, include_pad, divisor, what="mean")
    sx, sy = ref.per_tensor(op.input).scale, ref.per_tensor(op.results[0]).scale
    em.bind(op, call.requantize(call.scale_by(mean, [sx / sy], (), "multiplier")))


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling bins of `size` elements into `out`: `[floor(i*n/o), ceil((i+1)*n/o))`."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


@emits("ref.adaptive_avg_pool")
def _emit_adaptive_avg_pool(em: Emitter, op: ref.AdaptiveAvgPoolOp) -> None:
    call = _Call(em, op)
    sizes = list(op.output_size.get_values())
    spatial = len(sizes)
    in_shape = op.input.type.get_shape()[-spatial:]
    if any(d < 0 for d in in_shape):
        raise QirError(f"ref.adaptive_avg_pool: the pooled dimensions {op.input.type} must be static")
    # The exact sums over the bins: one 0/1 matrix product per pooled dimension, then one division.
    y = call.centered(op.input, "x")
    counts = torch.ones((), dtype=torch.float64)
    for k, (n, o) in enumerate(zip(in_shape, sizes)):
        bins = adaptive_bins(n, o)
        matrix = torch.zeros(o, n, dtype=torch.float64)
        for i, (start, end) in enumerate(bins):
            matrix[i, start:end] = 1.0
        sizes_k = torch.tensor([end - start for start, end in bins], dtype=torch.float64)
        counts = counts.unsqueeze(-1) * sizes_k
        dim = k - spatial  # the pooled dimension, counted from the end
        bins_node = call.const(f"bins{k}", matrix.t().contiguous())
        if dim == -1:
            y = call(_aten.matmul.default, y, bins_node, what=f"sum{k}")
        else:
            y = call(_aten.movedim.int, y, dim, -1, what=f"moved{k}")
            y = call(_aten.matmul.default, y, bins_node, what=f"sum{k}")
            y = call(_aten.movedim.int, y, -1, dim, what=f"back{k}")
    mean = call(_aten.div.Tensor, y, call.const("counts", counts), what="mean")
    sx, sy = ref.per_tensor(op.input).scale, ref.per_tensor(op.results[0]).scale
    em.bind(op, call.requantize(call.scale_by(mean, [sx / sy], (), "multiplier")))


def lookup_table(qin, qout, fn: str, fn_args=None) -> torch.Tensor:
    """The table of a `ref.lookup` from `qin` to `qout` computing the ATen operator `fn` (with
    `fn_args`, an ArrayAttr or a list of attributes, see `ref.LookupOp`): entry `i` is the result
    storage value for the input storage value `qin.storage_min + i`, one entry per value of the
    input's storage range. Backends that run lookups index the same table."""
    low, high = qin.storage_min, qin.storage_max
    real = (torch.arange(low, high + 1, dtype=torch.float64) - qin.zero_point) * qin.scale
    target = resolve_overload(fn)
    if target is None:
        raise QirError(f"ref.lookup: torch has no operator {fn!r}")
    attrs = fn_args.data if hasattr(fn_args, "data") else (fn_args or ())
    args, kwargs = _fn_arguments(target, attrs)
    values = target(real, *args, **kwargs).to(torch.float64)
    y = torch.round(values / qout.scale) + qout.zero_point
    y = torch.where(torch.isnan(y), torch.tensor(float(qout.zero_point), dtype=torch.float64), y)
    y = torch.clamp(y, qout.storage_min, qout.storage_max)
    return y.to(_storage_dtype(qout))


def _fn_arguments(fn, attrs) -> tuple[list, dict]:
    """`fn_args` (schema order after the input) as the positional and keyword arguments of `fn`."""
    schema_args = fn._schema.arguments[1:]
    if len(attrs) > len(schema_args):
        raise QirError(f"ref.lookup: {len(attrs)} fn_args for {fn._schema.name}'s {len(schema_args)} arguments")
    args, kwargs = [], {}
    for arg, attr in zip(schema_args, attrs):
        value = None if isinstance(attr, NoneAttr | NoneType) else from_attr(attr, ())
        if arg.kwarg_only:
            kwargs[arg.name] = value
        else:
            args.append(value)
    return args, kwargs


@emits("ref.lookup")
def _emit_lookup(em: Emitter, op: ref.LookupOp) -> None:
    call = _Call(em, op)
    qin = ref.per_tensor(op.input)
    table = lookup_table(qin, ref.per_tensor(op.results[0]), op.fn.data, op.fn_args)
    index = call(_aten.to.dtype, call.node(op.input), torch.int64, what="index")
    if qin.storage_min:
        index = call(_aten.sub.Tensor, index, qin.storage_min, what="offset")
    em.bind(op, call(_aten.take.default, call.const("table", table), index))


# -- weight-only: the weight dequantized once, then float32 arithmetic --------------------------


def _weight_only_weight(call: _Call, value: SSAValue) -> fx.Node:
    """The float32 weight a weight-only op reads, dequantized once here when it is a constant
    (`qir.blockwise.dequantize_weight`: `(float32(q) - zp) * s`, or a float16 one widened)."""
    from qir.blockwise import dequantize_weight

    tensor = _constant_tensor(call.em, value)
    if tensor is None:
        raise QirError(f"{call.op.name}: the weight must be a parameter (it is dequantized when the module is built)")
    return call.const("weight", dequantize_weight(tensor, ref.element(value)))


@emits("ref.weight_only_linear")
def _emit_weight_only_linear(em: Emitter, op: ref.WeightOnlyLinearOp) -> None:
    call = _Call(em, op)
    weight = _weight_only_weight(call, op.weight)
    bias = call.node(op.bias) if op.bias is not None else None
    em.bind(op, call(_aten.linear.default, call.node(op.input), weight, bias))


@emits("ref.weight_only_embedding")
def _emit_weight_only_embedding(em: Emitter, op: ref.WeightOnlyEmbeddingOp) -> None:
    call = _Call(em, op)
    em.bind(op, call(_aten.embedding.default, _weight_only_weight(call, op.weight), call.node(op.indices)))


@emits("ref.weight_only_embedding_bag")
def _emit_weight_only_embedding_bag(em: Emitter, op: ref.WeightOnlyEmbeddingBagOp) -> None:
    call = _Call(em, op)
    scale_grad, mode, sparse, last, padding_idx = ref.embedding_bag_args(op)
    weights = call.node(op.per_sample_weights) if op.per_sample_weights is not None else None
    bags = call(_aten.embedding_bag.padding_idx, _weight_only_weight(call, op.weight), call.node(op.indices),
                call.node(op.offsets), scale_grad, mode, sparse, weights, last, padding_idx, what="bags")
    em.bind(op, call(getitem, bags, 0))
