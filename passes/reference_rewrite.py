"""reference-rewrite: the Q/DQ patterns of the quantized stage become `ref` ops.

After `convert`, a quantized op is still a float op between casts: its inputs
are dequantized, it runs in float, its output is quantized again. This pass
recognises those patterns and writes each as the integer op it stands for,
whose arithmetic `qir.dialects.ref` defines exactly. Before:

    %x_dq = quant.dcast %x_q : tensor<1x3x8x8x!quant.uniform<u8:f32, 0.02:128>> to tensor<1x3x8x8xf32>
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!quant.uniform<i8:f32:0, {...}>>
    %w_dq = quant.dcast %w : tensor<4x3x3x3x!quant.uniform<i8:f32:0, {...}>> to tensor<4x3x3x3xf32>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq, %b, [1, 1], [1, 1]) {module = "c"} : (...) -> tensor<1x4x8x8xf32>
    %r = aten.op "relu.default"(%c) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %r_q = quant.qcast %r : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!quant.uniform<u8:f32, 0.01>>
    %r_dq = quant.dcast %r_q : ... to tensor<1x4x8x8xf32>
    %f = aten.op "flatten.using_ints"(%r_dq, 1) : (tensor<1x4x8x8xf32>) -> tensor<1x256xf32>
    %f_q = quant.qcast %f : tensor<1x256xf32> to tensor<1x256x!quant.uniform<u8:f32, 0.01>>

After (the dequantize sunk through the flatten, which now moves int8 values):

    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!quant.uniform<i8:f32:0, {...}>>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %r_q = ref.conv(%x_q, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>,
             dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu", module = "c"}
             : (...) -> tensor<1x4x8x8x!quant.uniform<u8:f32, 0.01>>
    %f = aten.op "flatten.using_ints"(%r_q, 1) : (tensor<1x4x8x8x!quant.uniform<u8:f32, 0.01>>)
             -> tensor<1x256x!quant.uniform<u8:f32, 0.01>>

What is recognised (target-independently, by op identity and dataflow, the chains read with
`qir.qdq`):

* conv (`conv{1,2,3}d`, `convolution`, `conv_transpose{1,2,3}d`; grouped, depthwise) and
  `linear`, on a dequantized per-tensor activation and a dequantized quantized
  `aten.param` weight, with a float bias, none (an inline zero bias, one per size, at the
  start of the function) or an int32 bias whose scales are `sx * sw` (read through
  `quant.scast`; other int32 biases are float biases); then optionally a relu or
  hardtanh (`relu`, `relu6`, `hardtanh`, `clamp` with constant bounds) and a quantize
  → `ref.conv` / `ref.linear` with the post op. A conv followed by `add` of another
  dequantized tensor [and relu] and a quantize → `ref.conv_add`. Without the quantize
  (the output is read in float: the last layer) → the ref op with a float result.
* `linear` of an input quantized at run time (`quant.dynamic_dcast`) and a dequantized
  quantized `aten.param` weight, with a float bias or none → `ref.dynamic_linear` (a float
  result; the run-time `quant.choose_qparams` and `quant.dynamic_qcast` stay as they are).
* weight-only: `linear` of a float input (not a dequantized activation) by a dequantized
  constant weight (a quantized `aten.param` of any granularity, sub-channel included, through
  `quant.dcast`; or a float16 / bfloat16 one through `_to_copy` to float32), with a float bias
  or none → `ref.weight_only_linear`; `embedding` in such a table → `ref.weight_only_embedding`,
  `embedding_bag` (its bags read, nothing else it returns) → `ref.weight_only_embedding_bag`.
* `matmul` / `bmm` / `mm` of two dequantized tensors → `ref.matmul` (quantized or float).
* `add` / `mul` of two dequantized tensors [+ relu] + quantize → `ref.add` / `ref.mul`.
* `cat` of dequantized tensors + quantize → `ref.cat`.
* `avg_pool{1,2,3}d`, `adaptive_avg_pool{1,2,3}d` + quantize → `ref.avg_pool` /
  `ref.adaptive_avg_pool`.
* any elementwise unary function between a dequantize and a quantize →
  `ref.lookup` (see `elementwise_unary`), named by its functional op (`relu_` → `relu`).
* data movement (views, permutes, slices, splits, `max_pool`, ... see
  `DATA_MOVEMENT`) of a dequantized per-tensor value: the op is applied to the
  quantized value itself, and a dequantize follows it for whoever reads float
  (`max_pool1d`, which torch runs on no integer dtype, as `max_pool2d` of unit height).
* `qcast(dcast(x))` to x's own type is `x`; to other per-tensor parameters
  `ref.requantize`.

Everything else keeps its Q/DQ form. With `backend=NAME`, each ref op built is
offered to that backend (`accepts`) before it goes in; a refused fusion falls
back to the same op with a float result (the tail ops stay in float), and a
refused op leaves the Q/DQ form as it was. Dead casts and parameters are
removed at the end. Counts: one per ref op kind (`ref.conv`, ...),
`dequantize sunk`, `casts folded`, `refused by backend`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch
from xdsl.context import Context
from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    NoneAttr,
    StringAttr,
    TensorType,
    f32,
    i32,
    i64,
)
from xdsl.ir import Attribute, Operation, OpResult, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import VerifyException

from qir import qdq
from qir.aliasing import Mutations
from qir.dead_code import RemoveDeadOps
from qir.context import params_of
from qir.dialects import ref
from qir.dialects.aten import AtenOp, ParamOp, resolve_overload, schema_of, to_attr
from qir.dialects.quant import (
    DequantizeCastOp,
    QuantizeCastOp,
    StorageCastOp,
    UniformQuantizedPerAxisType,
    has_parameters,
)
from qir.errors import QirError
from qir.op_families import CONV, CONV_TRANSPOSE, LINEAR, MATMUL
from qir.pass_manager import QirPass, count
from qir.quantizer.patterns import SHAPE
from qir.target import parse_target, pass_target, record_target
from qir.verification import verify

# --------------------------------------------------------------------------
# Op families.
# --------------------------------------------------------------------------

DATA_MOVEMENT = frozenset(SHAPE | {
    "alias", "unflatten", "movedim", "swapaxes", "swapdims", "unfold", "diagonal", "as_strided",
    "pixel_unshuffle", "channel_shuffle", "flip", "roll", "repeat", "index_select",
    "max_pool1d", "max_pool2d", "max_pool3d",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
})
"""ATen operators that only move, copy or select elements (max-pooling selects the largest: it
commutes with the increasing dequantization), so they are exact on the integer storage of a
per-tensor quantized value. In-place variants are never rewritten."""

STORAGE_KERNELS = {f"upsample_nearest{n}d": frozenset({"uint8"}) for n in (1, 2, 3)}
"""Data movement whose torch kernels take only some integer dtypes (the others take every one).
`max_pool1d` takes none: it becomes `max_pool2d` on the storage (`_max_pool1d_on_storage`)."""

_MUL = {"mul.Tensor", "mul_.Tensor"}
_AVG_POOLS = {"avg_pool1d.default": 1, "avg_pool2d.default": 2, "avg_pool3d.default": 3}
_ADAPTIVE_POOLS = {"adaptive_avg_pool1d.default": 1, "adaptive_avg_pool2d.default": 2,
                   "adaptive_avg_pool3d.default": 3, "_adaptive_avg_pool2d.default": 2,
                   "_adaptive_avg_pool3d.default": 3}
_CAT = {"cat.default"}

_UNARY_WITHOUT_TAG = {"hardswish", "mish", "gelu", "threshold", "log_sigmoid"}
"""Elementwise functions (or in-place variants of them) that torch does not tag `pointwise`."""

_NOT_LOOKUPS = {"_to_copy", "to", "type_as", "fill", "zero", "zeros_like", "ones_like", "full_like",
                "empty_like", "rand_like", "randn_like", "randint_like", "bernoulli", "dropout",
                "native_dropout", "lift_fresh_copy", "copy"}
"""Ops with one tensor argument that are not functions of its values (or change its dtype)."""

_SCALAR_KINDS = {"int", "float", "bool", "Scalar", "str"}


@cache
def elementwise_unary(target: str) -> bool:
    """Whether `target` computes each output element from the input element alone, so that a
    table over the storage values is it: torch's `pointwise` tag (or a function known to be
    elementwise that lacks it), one Tensor argument and the rest scalars, one Tensor result,
    deterministic, writing at most its own input."""
    overload = resolve_overload(target)
    schema = schema_of(target)
    if overload is None or schema is None:
        return False
    name = target.split("::")[-1].rpartition(".")[0]
    base = name[:-1] if name.endswith("_") and not name.endswith("__") else name
    if base in _NOT_LOOKUPS or base in DATA_MOVEMENT:
        return False
    tags = set(overload.tags)
    functional = resolve_overload(f"{base}.{target.rpartition('.')[2]}") if base != name else None
    tagged = torch.Tag.pointwise in tags or (
        functional is not None and torch.Tag.pointwise in set(functional.tags))
    if not (tagged or base in _UNARY_WITHOUT_TAG) or torch.Tag.nondeterministic_seeded in tags:
        return False
    if schema.returns != ("Tensor",) or not schema.args:
        return False
    first = schema.args[0]
    if first.kind != "Tensor" or first.is_list or first.optional:
        return False
    for arg in schema.args[1:]:
        # A Tensor argument may still be given a number (`mul.Tensor(x, 2.0)`); whether it is,
        # is checked on the op. Lists, dtypes, generators are not scalars.
        if arg.is_list or arg.kind not in _SCALAR_KINDS | {"Tensor"}:
            return False
    written = [a for a in overload._schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    return all(a.name == first.name for a in written)


# --------------------------------------------------------------------------
# Arguments (the Q/DQ chains are read by `qir.qdq`).
# --------------------------------------------------------------------------


def _ints(value: Any, n: int, default: int) -> list[int] | None:
    """An `int[n]` argument as n ints (torch expands a single value), or None if not constant."""
    if value is None or value == []:
        return [default] * n
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return [value] * n
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if len(value) == n:
            return list(value)
        if len(value) == 1:
            return value * n
    return None


def _provenance(op: Operation) -> dict[str, Attribute]:
    return {k: v for k, v in op.attributes.items() if k in AtenOp.PROVENANCE}


def _same_scale(a: float, b: float) -> bool:
    """Scales equal up to the last bits (products of the same factors in another order)."""
    return math.isclose(a, b, rel_tol=1e-14, abs_tol=0.0)


# --------------------------------------------------------------------------
# Building ref ops.
# --------------------------------------------------------------------------


@dataclass
class _Build:
    """A candidate rewrite: new ops (the ref op last), the value replaced and the ops erased."""

    ops: list[Operation]
    replaces: SSAValue
    erase: list[Operation]
    anchor: Operation
    """The op the new ops are inserted before (the last one of the pattern)."""

    @property
    def op(self) -> Operation:
        return self.ops[-1]

    def discard(self) -> None:
        """Forget a refused candidate: its ops were never inserted, but hold uses of their operands."""
        for op in reversed(self.ops):
            op.drop_all_references()


@dataclass
class _Rewriter:
    """What every pattern shares: the statistics, and the backend that may refuse ops."""

    ctx: Context
    backend: Any = None
    target: Any = None
    refused: set[tuple[Operation, str]] = field(default_factory=set)
    """Anchors of refused candidates, so a re-walk does not count them again."""
    zero_biases: dict[tuple[Any, int], ParamOp] = field(default_factory=dict)
    """One zero bias per block and size, at the start of the block (it dominates every use)."""

    def zero_bias(self, anchor: Operation, channels: int) -> SSAValue:
        """A zero f32 bias of `channels`, inline (`dense<0.0>`, no weights file entry): made once
        per block, at its start; one no op ends up using goes with the dead code."""
        block = anchor.parent_block()
        key = (block, channels)
        param = self.zero_biases.get(key)
        if param is None or param.parent is None:
            type_ = TensorType(f32, [channels])
            param = ParamOp(f"zero_bias_{channels}", type_, "constant",
                            DenseIntOrFPElementsAttr.from_list(type_, [0.0]))
            param.result.name_hint = f"zero_bias_{channels}"
            Rewriter.insert_op(param, InsertPoint.at_start(block))
            self.zero_biases[key] = param
        return param.result

    def make(self, cls: type[Operation], operands: Sequence[SSAValue], result_type: Attribute,
             properties: dict[str, Attribute], source: Operation, name_hint: str | None) -> Operation:
        op = cls.create(operands=list(operands), result_types=[result_type], properties=properties,
                        attributes=_provenance(source))
        op.location = source.location
        op.results[0].name_hint = name_hint
        return op

    def _accepted(self, op: Operation) -> bool:
        """Whether the backend (if any) runs `op` on the target, its constants in the context's store."""
        return self.backend is None or self.backend.accepts(op, self.target, params_of(self.ctx))

    def apply(self, rewriter: PatternRewriter, candidates: Iterable[_Build | None]) -> bool:
        """Put in the first candidate the backend accepts (the first, without a backend). A
        candidate its verifier rejects (shapes the ref op does not take) is never offered; None
        is one that could not be built. `candidates` may build each when it is asked for (a
        generator): the fallbacks after the one chosen are then never built."""
        for build in candidates:
            if build is None:
                continue
            if _valid(build.op):
                if self._accepted(build.op):
                    rewriter.insert(build.ops, _before(build.anchor))
                    rewriter.replace_all_uses_with(build.replaces, build.op.results[0])
                    for op in build.erase:
                        rewriter.erase(op)
                    count(self.ctx, build.op.name)
                    return True
                if (build.anchor, build.op.name) not in self.refused:
                    self.refused.add((build.anchor, build.op.name))
                    count(self.ctx, "refused by backend")
            build.discard()
        return False


def _before(op: Operation) -> InsertPoint:
    return InsertPoint.before(op)


def _valid(op: Operation) -> bool:
    """Whether the candidate verifies: with `qir.verification`'s compiled checks (one candidate
    per conv or linear, xDSL's own verifier about 15 us more each)."""
    try:
        verify(op)
    except VerifyException:
        return False
    return True


def _bias_operand(bias: Any, x_type, weight: SSAValue, channels: int, new_ops: list[Operation],
                  zero: Any) -> SSAValue | None:
    """The bias a ref conv/linear takes: float as given, int32 through `quant.scast` when its
    scales are `sx * sw[c]`, `zero()` for none. None when the bias is something else."""
    if bias is None:
        return zero()
    if not isinstance(bias, SSAValue) or not isinstance(bias.type, TensorType) or bias.type.get_num_dims() != 1:
        return None
    source = qdq.dequantized(bias)
    qtype = ref.quantized(source) if source is not None else None
    if qtype is not None and qtype.storage_width == 32 and qtype.is_signed:
        scales = ref.channel_scales(source, channels) if _channel_count_fits(qtype, channels) else None
        zero_points = qtype.zero_points if isinstance(qtype, UniformQuantizedPerAxisType) else (qtype.zero_point,)
        expected = [x_type.scale * s for s in ref.channel_scales(weight, channels)]
        if scales is not None and not any(zero_points) and all(map(_same_scale, scales, expected)):
            cast = StorageCastOp(source, TensorType(i32, source.type.get_shape()))
            cast.results[0].name_hint = f"{source.name_hint or 'bias'}_i32"
            new_ops.append(cast)
            return cast.results[0]
    if ref.element(bias) is not None and ref._is_float(ref.element(bias)):
        return bias  # a float bias, quantized by the ref op's definition
    return None


def _channel_count_fits(qtype, channels: int) -> bool:
    return not isinstance(qtype, UniformQuantizedPerAxisType) or len(qtype.scales) == channels


@dataclass(frozen=True)
class _ConvForm:
    """A convolution's attributes, normalized to `aten.convolution`'s."""

    stride: list[int]
    padding: list[int]
    dilation: list[int]
    groups: int
    transposed: bool
    output_padding: list[int]

    def properties(self) -> dict[str, Attribute]:
        props: dict[str, Attribute] = {
            "stride": ref.int_array(self.stride), "padding": ref.int_array(self.padding),
            "dilation": ref.int_array(self.dilation), "groups": IntegerAttr(self.groups, i64),
        }
        if self.transposed:
            props["transposed"] = IntegerAttr.from_bool(True)
            props["output_padding"] = ref.int_array(self.output_padding)
        return props


def _conv_form(op: AtenOp, spatial: int, kernel: Sequence[int]) -> _ConvForm | None:
    name, target = op.op_name, op.target.data
    if name in CONV:
        transposed = False
    elif name in CONV_TRANSPOSE:
        transposed = True
    elif target == "convolution.default":
        transposed = op.arg("transposed")
        if not isinstance(transposed, bool):
            return None
    else:
        return None
    stride = _ints(op.arg("stride"), spatial, 1)
    dilation = _ints(op.arg("dilation"), spatial, 1)
    padding_arg = op.arg("padding")
    if isinstance(padding_arg, str):  # conv2d.padding: "valid" or "same" (stride 1)
        if padding_arg == "valid":
            padding = [0] * spatial
        elif padding_arg == "same" and dilation is not None:
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            if any(t % 2 for t in totals):
                return None  # torch pads such a "same" asymmetrically
            padding = [t // 2 for t in totals]
        else:
            return None
    else:
        padding = _ints(padding_arg, spatial, 0)
    output_padding = _ints(op.arg("output_padding"), spatial, 0) if transposed else [0] * spatial
    groups = op.arg("groups", 1)
    if None in (stride, padding, dilation, output_padding) or not isinstance(groups, int) \
            or isinstance(groups, bool) or groups < 1:
        return None
    return _ConvForm(stride, padding, dilation, groups, transposed, output_padding)


# --------------------------------------------------------------------------
# Patterns.
# --------------------------------------------------------------------------


@dataclass
class FoldCastPairs(RewritePattern):
    """`qcast(dcast(x))`: `x` itself when the types agree, otherwise `ref.requantize`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, QuantizeCastOp)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: QuantizeCastOp, rewriter: PatternRewriter, /):
        source = qdq.dequantized(op.input)
        if source is None:
            return
        if source.type == op.result.type:
            rewriter.replace(op, [], [source])
            count(self.shared.ctx, "casts folded")
            return
        if ref.per_tensor(source) is None or ref.per_tensor(op.result) is None:
            return
        new = self.shared.make(ref.RequantizeOp, [source], op.result.type, {}, op, op.result.name_hint)
        self.shared.apply(rewriter, [_Build([new], op.result, [op], op)])


@dataclass
class SinkDequantize(RewritePattern):
    """A data-movement op of a dequantized value runs on the quantized value; a dequantize
    follows it (and meets the quantize after it, if any, in `FoldCastPairs`)."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and op.op_name in DATA_MOVEMENT

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        name = op.op_name
        if not op.operands or not op.results:
            return
        source = op.arg(0)
        quantized = qdq.per_tensor_dequantized(source)
        if quantized is None or op.operands[0] is not source:
            return
        floating = source.type.element_type
        if any(ref._is_float(ref.element(v)) for v in op.operands[1:]):
            return  # another float tensor takes part: not a pure data movement of this one
        qtype = ref.per_tensor(quantized)
        if name in STORAGE_KERNELS and qtype.storage_dtype_name not in STORAGE_KERNELS[name]:
            return
        result_types = [TensorType(qtype, r.type.get_shape())
                        if isinstance(r.type, TensorType) and r.type.element_type == floating else r.type
                        for r in op.results]
        if all(t is r.type for t, r in zip(result_types, op.results)):
            return
        if name == "max_pool1d":
            new_ops, new_results = _max_pool1d_on_storage(op, quantized, result_types[0])
            if new_ops is None:
                return
        else:
            operands = [quantized, *op.operands[1:]]
            new = AtenOp.create(operands=operands, result_types=result_types,
                                properties=dict(op.properties), attributes=dict(op.attributes))
            new.location = op.location
            for r_new, r_old in zip(new.results, op.results):
                r_new.name_hint = r_old.name_hint
            new_ops, new_results = [new], list(new.results)
        replacements: list[SSAValue] = []
        for old, new_value in zip(op.results, new_results):
            if new_value.type == old.type:
                replacements.append(new_value)
                continue
            dcast = DequantizeCastOp(new_value, old.type)
            dcast.results[0].name_hint = f"{old.name_hint or 'v'}_dq"
            new_ops.append(dcast)
            replacements.append(dcast.results[0])
        rewriter.replace(op, new_ops, replacements)
        count(self.shared.ctx, "dequantize sunk")


def _max_pool1d_on_storage(op: AtenOp, quantized: SSAValue, result_type: TensorType):
    """`max_pool1d` has no integer kernel in torch: on the storage it is `max_pool2d` over a unit
    height, `unsqueeze(-2)` before and `squeeze(-2)` after (the same windows, the same maxima)."""
    kernel = _ints(op.arg("kernel_size"), 1, 1)
    stride = _ints(op.arg("stride"), 1, kernel[0] if kernel else 1)
    padding = _ints(op.arg("padding"), 1, 0)
    dilation = _ints(op.arg("dilation"), 1, 1)
    ceil_mode = op.arg("ceil_mode", False)
    if None in (kernel, stride, padding, dilation) or not isinstance(ceil_mode, bool):
        return None, None
    qtype = ref.per_tensor(quantized)
    in_shape = list(quantized.type.get_shape())
    out_shape = list(result_type.get_shape())
    up = AtenOp("unsqueeze.default", [quantized, -2], None,
                [TensorType(qtype, in_shape[:-1] + [1] + in_shape[-1:])])
    pool = AtenOp("max_pool2d.default", [up.results[0], [1, kernel[0]], [1, stride[0]], [0, padding[0]],
                                         [1, dilation[0]], ceil_mode], None,
                  [TensorType(qtype, out_shape[:-1] + [1] + out_shape[-1:])], _provenance(op))
    down = AtenOp("squeeze.dim", [pool.results[0], -2], None, [result_type])
    hint = op.results[0].name_hint or "max_pool1d"
    for new, suffix in ((up, "_2d"), (pool, "_pool2d"), (down, "")):
        new.location = op.location
        new.results[0].name_hint = hint + suffix
    return [up, pool, down], [down.results[0]]


def _is_linear(op: AtenOp) -> bool:
    return op.op_name in LINEAR and op.target.data == "linear.default"


@dataclass
class ConvOrLinear(RewritePattern):
    """conv / linear (+ add) (+ relu or hardtanh) (+ quantize) → `ref.conv`, `ref.conv_add`, `ref.linear`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and (_is_linear(op) or op.op_name in CONV or op.op_name in CONV_TRANSPOSE
                                           or op.target.data == "convolution.default")

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        is_linear = _is_linear(op)
        if len(op.results) != 1 or not isinstance(op.results[0].type, TensorType):
            return
        x = qdq.per_tensor_dequantized(op.arg("input"))
        weight_value = op.arg("weight")
        if x is None or not isinstance(weight_value, SSAValue):
            return
        kernel = list(weight_value.type.get_shape())
        if is_linear:
            if len(kernel) != 2:
                return
            form, out_channels, axis = None, kernel[0], 0
        else:
            spatial = len(kernel) - 2
            if spatial < 1 or len(x.type.get_shape()) != len(kernel):
                return  # an unbatched input (canonicalize gives it a batch of one)
            form = _conv_form(op, spatial, kernel[2:])
            if form is None:
                return
            axis = 1 if form.transposed else 0
            out_channels = kernel[1] * form.groups if form.transposed else kernel[0]
        weight = qdq.dequantized_param(weight_value, axis)
        if weight is None:
            return
        result = op.results[0]
        tail = qdq.tail(result, allow_add=not is_linear and not form.transposed)


        def candidates() -> Iterator[_Build | None]:
            if tail.quantize is not None:
                yield self._build(op, x, weight, out_channels, form, tail, tail.quantize.result)
            # The fallback, for a backend that refuses the fusion: the same op with a float result.
            yield self._build(op, x, weight, out_channels, form, qdq.Tail(), result)

        self.shared.apply(rewriter, candidates())

    def _build(self, op: AtenOp, x: SSAValue, weight: SSAValue, channels: int, form: _ConvForm | None,
               tail: qdq.Tail, replaces: SSAValue) -> _Build | None:
        new_ops: list[Operation] = []
        bias = _bias_operand(op.arg("bias"), ref.per_tensor(x), weight, channels, new_ops,
                             lambda: self.shared.zero_bias(op, channels))
        if bias is None:
            for new in reversed(new_ops):
                new.drop_all_references()
            return None
        props: dict[str, Attribute] = {} if form is None else form.properties()
        if tail.activation is not None:
            props.update(ref.post_properties(tail.activation.name, tail.activation.args))
        operands = [x, weight, bias]
        if tail.addend is not None:
            cls = ref.ConvAddOp
            operands.append(tail.addend)
        else:
            cls = ref.LinearOp if form is None else ref.ConvOp
        result_type = tail.quantize.result.type if tail.quantize is not None else op.results[0].type
        hint = replaces.name_hint
        new_ops.append(self.shared.make(cls, operands, result_type, props, op, hint))
        erase = ([tail.quantize, *reversed(tail.ops)] if tail.quantize is not None else []) + [op]
        return _Build(new_ops, replaces, erase, tail.quantize or op)


@dataclass
class DynamicLinear(RewritePattern):
    """linear of a run-time-quantized input and a quantized constant weight → `ref.dynamic_linear`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and op.target.data == "linear.default"

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if len(op.results) != 1:
            return
        dcast = qdq.dynamically_dequantized(op.arg("input"))
        weight_value = op.arg("weight")
        if dcast is None or not isinstance(weight_value, SSAValue) or len(weight_value.type.get_shape()) != 2:
            return
        weight = qdq.dequantized_param(weight_value, 0)
        if weight is None:
            return
        channels = weight_value.type.get_shape()[0]
        bias = op.arg("bias")
        if bias is None:
            bias = self.shared.zero_bias(op, channels)
        elif not (isinstance(bias, SSAValue) and ref._is_float(ref.element(bias))):
            return
        result = op.results[0]
        new = self.shared.make(ref.DynamicLinearOp, [dcast.input, dcast.scale, dcast.zero_point, weight, bias],
                               result.type, {}, op, result.name_hint)
        self.shared.apply(rewriter, [_Build([new], result, [op], op)])


@dataclass
class Matmul(RewritePattern):
    """matmul / bmm / mm of two dequantized tensors (+ quantize) → `ref.matmul`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and op.op_name in MATMUL \
            and op.target.data in ("matmul.default", "bmm.default", "mm.default")

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if len(op.operands) != 2 or len(op.results) != 1:
            return
        lhs, rhs = (qdq.per_tensor_dequantized(v) for v in op.operands)
        if lhs is None or rhs is None:
            return
        result = op.results[0]
        quantize = qdq.only_quantize(result)

        def candidates() -> Iterator[_Build]:
            if quantize is not None:
                new = self.shared.make(ref.MatmulOp, [lhs, rhs], quantize.result.type, {}, op,
                                       quantize.result.name_hint)
                yield _Build([new], quantize.result, [quantize, op], quantize)
            if quantize is None or self.shared.backend is not None:
                new = self.shared.make(ref.MatmulOp, [lhs, rhs], result.type, {}, op, result.name_hint)
                yield _Build([new], result, [op], op)

        self.shared.apply(rewriter, candidates())


@dataclass
class AddOrMul(RewritePattern):
    """add / mul of two dequantized tensors (+ relu or hardtanh) + quantize → `ref.add` / `ref.mul`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and (op.target.data in qdq.ADD or op.target.data in _MUL)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if op.target.data in qdq.ADD:
            cls = ref.AddOp
            if not qdq.plain_add(op):
                return
        else:
            cls = ref.MulOp
            if len(op.operands) != 2 or len(op.args.data) != 2 or op.kwargs is not None:
                return
        if len(op.results) != 1 or not qdq.in_place_ok(op):
            return
        lhs, rhs = (qdq.per_tensor_dequantized(v) for v in op.operands)
        if lhs is None or rhs is None:
            return
        tail = qdq.tail(op.results[0])
        if tail.quantize is None:
            return
        props = ref.post_properties(tail.activation.name, tail.activation.args) if tail.activation is not None else {}
        quantized = tail.quantize.result
        new = self.shared.make(cls, [lhs, rhs], quantized.type, props, op, quantized.name_hint)
        self.shared.apply(rewriter, [_Build([new], quantized, [tail.quantize, *reversed(tail.ops), op],
                                            tail.quantize)])


@dataclass
class Cat(RewritePattern):
    """cat of dequantized tensors + quantize → `ref.cat`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and op.target.data in _CAT

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if len(op.results) != 1 or not op.operands:
            return
        tensors = op.arg("tensors")
        dim = op.arg("dim", 0)
        if not isinstance(tensors, list) or not isinstance(dim, int) or isinstance(dim, bool):
            return
        sources = [qdq.per_tensor_dequantized(v) for v in tensors]
        quantize = qdq.only_quantize(op.results[0])
        if quantize is None or any(s is None for s in sources):
            return
        quantized = quantize.result
        new = self.shared.make(ref.CatOp, sources, quantized.type, {"dim": IntegerAttr(dim, i64)}, op,
                               quantized.name_hint)
        self.shared.apply(rewriter, [_Build([new], quantized, [quantize, op], quantize)])


@dataclass
class AvgPool(RewritePattern):
    """avg_pool{1,2,3}d + quantize → `ref.avg_pool`; adaptive_avg_pool + quantize → `ref.adaptive_avg_pool`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and (op.target.data in _AVG_POOLS or op.target.data in _ADAPTIVE_POOLS)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        target = op.target.data
        if len(op.results) != 1 or len(op.operands) != 1:
            return
        x = qdq.per_tensor_dequantized(op.operands[0])
        quantize = qdq.only_quantize(op.results[0])
        if x is None or quantize is None:
            return
        shape = x.type.get_shape()
        if target in _AVG_POOLS:
            props = self._avg_pool_properties(op, _AVG_POOLS[target])
            cls = ref.AvgPoolOp
            spatial = _AVG_POOLS[target]
        else:
            spatial = _ADAPTIVE_POOLS[target]
            size = _ints(op.arg("output_size"), spatial, 1)
            # The mean is the exact sum over each bin divided once: the bins need static sizes.
            if size is None or any(d < 0 for d in shape[-spatial:]):
                return
            props, cls = {"output_size": ref.int_array(size)}, ref.AdaptiveAvgPoolOp
        if props is None or len(shape) not in (spatial + 1, spatial + 2):
            return
        quantized = quantize.result
        new = self.shared.make(cls, [x], quantized.type, props, op, quantized.name_hint)
        self.shared.apply(rewriter, [_Build([new], quantized, [quantize, op], quantize)])

    @staticmethod
    def _avg_pool_properties(op: AtenOp, spatial: int) -> dict[str, Attribute] | None:
        kernel = _ints(op.arg("kernel_size"), spatial, 1)
        if kernel is None:
            return None
        stride_arg = op.arg("stride")
        stride = kernel if stride_arg in (None, []) else _ints(stride_arg, spatial, 1)
        padding = _ints(op.arg("padding"), spatial, 0)
        ceil_mode, include_pad = op.arg("ceil_mode", False), op.arg("count_include_pad", True)
        divisor = op.arg("divisor_override")
        if stride is None or padding is None or not isinstance(ceil_mode, bool) \
                or not isinstance(include_pad, bool) or not (divisor is None or isinstance(divisor, int)):
            return None
        props: dict[str, Attribute] = {
            "kernel_size": ref.int_array(kernel), "stride": ref.int_array(stride),
            "padding": ref.int_array(padding), "ceil_mode": IntegerAttr.from_bool(ceil_mode),
            "count_include_pad": IntegerAttr.from_bool(include_pad),
        }
        if divisor is not None:
            if divisor == 0:
                return None
            props["divisor_override"] = IntegerAttr(divisor, i64)
        return props


@dataclass
class Lookup(RewritePattern):
    """An elementwise unary function between a dequantize and a quantize → `ref.lookup`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and elementwise_unary(op.target.data)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if len(op.operands) != 1 or len(op.results) != 1:
            return
        x = qdq.per_tensor_dequantized(op.operands[0])
        if x is None or op.arg(0) is not op.operands[0] or not qdq.in_place_ok(op):
            return
        if ref.per_tensor(x).storage_width > ref.LOOKUP_MAX_BITS:
            return
        quantize = qdq.only_quantize(op.results[0])
        if quantize is None or quantize.result.type.get_shape() != x.type.get_shape():
            return
        fn_args = _scalar_args(op)
        if fn_args is None:
            return
        props: dict[str, Attribute] = {"fn": StringAttr(_functional(op.target.data))}
        if fn_args:
            props["fn_args"] = ArrayAttr(fn_args)
        quantized = quantize.result
        new = self.shared.make(ref.LookupOp, [x], quantized.type, props, op, quantized.name_hint)
        self.shared.apply(rewriter, [_Build([new], quantized, [quantize, op], quantize)])


def _functional(target: str) -> str:
    """`relu_.default` → `relu.default`: the table is the same, and a backend lists functional ops."""
    name, _, overload = target.rpartition(".")
    if name.endswith("_") and not name.endswith("__"):
        functional = f"{name[:-1]}.{overload}"
        if resolve_overload(functional) is not None:
            return functional
    return target


def _scalar_args(op: AtenOp) -> list[Attribute] | None:
    """`op`'s arguments after the input in schema order (defaults filling gaps), as scalar
    attributes; None when one is not a constant scalar."""
    overload = resolve_overload(op.target.data)
    arguments = overload._schema.arguments
    given: dict[str, Attribute] = {}
    for arg, attr in zip(arguments, op.args.data):
        given[arg.name] = attr
    for key, attr in (op.kwargs.data.items() if op.kwargs is not None else ()):
        given[key] = attr
    names = [a.name for a in arguments]
    last = max((names.index(n) for n in given), default=0)
    values: list[Attribute] = []
    for arg in arguments[1:last + 1]:
        attr = given.get(arg.name)
        if attr is None:
            try:
                attr = to_attr(arg.default_value, [])
            except TypeError:
                return None
        if not isinstance(attr, IntegerAttr | FloatAttr | StringAttr | NoneAttr):
            return None  # an operand (a symbolic value) or a list
        values.append(attr)
    return values


def _weight_only_source(value: Any) -> SSAValue | None:
    """The narrow constant a weight-only weight is read from: a quantized `aten.param` (with its
    parameters) through `quant.dcast`, or a float16 / bfloat16 `aten.param` through a
    `_to_copy` / `to` to float32; None otherwise."""
    from xdsl.dialects.builtin import BFloat16Type, Float16Type, Float32Type

    if not isinstance(value, OpResult) or not isinstance(value.type, TensorType) \
            or not isinstance(value.type.element_type, Float32Type):
        return None
    source = qdq.dequantized(value)
    if source is not None:
        return source if isinstance(source.owner, ParamOp) and has_parameters(ref.quantized(source)) else None
    owner = value.owner
    if isinstance(owner, AtenOp) and owner.target.data in _WIDENING and len(owner.operands) == 1 \
            and owner.arg(0) is owner.operands[0]:
        source = owner.operands[0]
        if isinstance(source.owner, ParamOp) and isinstance(ref.element(source), Float16Type | BFloat16Type) \
                and all(k in ("dtype",) for k in (owner.kwargs.data if owner.kwargs is not None else ())):
            return source
    return None


_WIDENING = {"_to_copy.default", "to.dtype"}
"""Conversions of a float16 weight back to float32 (what `convert` writes for `#obs.cast<f16>`)."""


def _float_activation(value: Any) -> bool:
    """A float tensor that is not a dequantized activation (static or dynamic: those linears are
    `ref.linear` / `ref.dynamic_linear`), the input of a weight-only linear."""
    from xdsl.dialects.builtin import Float32Type

    return (isinstance(value, SSAValue) and isinstance(value.type, TensorType)
            and isinstance(value.type.element_type, Float32Type)
            and not qdq.is_dequantized(value))


_EMBEDDING_BAGS = ("embedding_bag.default", "embedding_bag.padding_idx", "_embedding_bag.default")


@dataclass
class WeightOnly(RewritePattern):
    """A linear of a float input by a dequantized constant weight (`quant.dcast` of a quantized
    parameter, or a float16 parameter widened) → `ref.weight_only_linear`; an embedding in such a
    table → `ref.weight_only_embedding`, its bags → `ref.weight_only_embedding_bag`."""

    shared: _Rewriter

    @staticmethod
    def roots(op: Operation) -> bool:
        return isinstance(op, AtenOp) and op.target.data in ("linear.default", "embedding.default", *_EMBEDDING_BAGS)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        target = op.target.data
        if target in _EMBEDDING_BAGS:
            self._embedding_bag(op, rewriter)
            return
        if len(op.results) != 1:
            return
        if target == "linear.default":
            weight = _weight_only_source(op.arg("weight"))
            x, bias = op.arg("input"), op.arg("bias")
            if weight is None or not _float_activation(x) or not (bias is None or _float_activation(bias)):
                return
            operands = [x, weight] + ([bias] if bias is not None else [])
            cls = ref.WeightOnlyLinearOp
        else:
            weight = _weight_only_source(op.arg("weight"))
            indices = op.arg("indices")
            # padding_idx, scale_grad_by_freq and sparse change gradients only
            if weight is None or not isinstance(indices, SSAValue):
                return
            operands = [weight, indices]
            cls = ref.WeightOnlyEmbeddingOp
        self._replace(op, cls, operands, {}, rewriter)

    def _embedding_bag(self, op: AtenOp, rewriter: PatternRewriter) -> None:
        """`embedding_bag` in a weight-only table, when only its bags are read (not the
        bookkeeping results ATen returns beside them: which bag each index went to, the bags'
        sizes, the rows a maximum came from)."""
        weight = _weight_only_source(op.arg("weight"))
        indices, offsets = op.arg("indices"), op.arg("offsets")
        per_sample_weights = op.arg("per_sample_weights", None)
        mode, include_last_offset = op.arg("mode", 0), op.arg("include_last_offset", False)
        padding_idx = op.arg("padding_idx", None if op.target.data == "embedding_bag.padding_idx" else -1)
        if (weight is None or not isinstance(indices, SSAValue) or not isinstance(offsets, SSAValue)
                or any(r.uses for r in op.results[1:]) or mode not in range(len(ref.EMBEDDING_BAG_MODES))
                or not isinstance(include_last_offset, bool) or not (padding_idx is None or isinstance(padding_idx, int))
                or not (per_sample_weights is None or _float_activation(per_sample_weights))):
            return
        properties: dict[str, Attribute] = {"mode": StringAttr(ref.EMBEDDING_BAG_MODES[mode])}
        if include_last_offset:
            properties["include_last_offset"] = BoolAttr.from_bool(True)
        if padding_idx is not None and padding_idx >= 0:  # `_embedding_bag` says none with -1
            properties["padding_idx"] = IntegerAttr(padding_idx, i64)
        operands = [weight, indices, offsets] + ([per_sample_weights] if per_sample_weights is not None else [])
        self._replace(op, ref.WeightOnlyEmbeddingBagOp, operands, properties, rewriter)

    def _replace(self, op: AtenOp, cls: type[Operation], operands: list[SSAValue], properties: dict[str, Attribute],
                 rewriter: PatternRewriter) -> None:
        result = op.results[0]
        new = self.shared.make(cls, operands, result.type, properties, op, result.name_hint)
        self.shared.apply(rewriter, [_Build([new], result, [op], op)])


@dataclass
class _ByKind(RewritePattern):
    """The patterns, tried in order on each op, but only those that can match its kind: its
    class, and an ATen op's overload (each pattern's `roots`, asked once per kind). A module has
    many ops of few kinds, and most kinds match one pattern or none: each op is offered to those
    rather than to all ten."""

    patterns: Sequence[RewritePattern]
    by_kind: dict[Any, tuple[RewritePattern, ...]] = field(default_factory=dict)

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /):
        kind = (AtenOp, op.target.data) if isinstance(op, AtenOp) else type(op)
        patterns = self.by_kind.get(kind)
        if patterns is None:
            patterns = self.by_kind[kind] = tuple(p for p in self.patterns if p.roots(op))
        for pattern in patterns:
            pattern.match_and_rewrite(op, rewriter)
            if rewriter.has_done_action:
                return


# --------------------------------------------------------------------------
# The pass.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceRewrite(QirPass):
    """Writes quantized patterns as `ref` ops (integer arithmetic, exactly defined).

    See the module docstring for the IR before and after. `backend` names a
    registered backend whose `accepts(op)` decides which ref ops are produced;
    what it refuses stays in the Q/DQ form."""

    name = "reference-rewrite"
    requires = ("quantized",)
    leaves = "reference"

    backend: str = ""

    target: str = ""
    """The CPU the backend's kernels will run on (`qir.target`): the module's recorded one, else
    the host. What its kernels would compute differently there stays in the Q/DQ form."""

    def __post_init__(self) -> None:
        if self.target:
            parse_target(self.target)  # a bad name is a bad option, refused before any pass runs

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        backend = None
        if self.backend:
            from qir.registry import get_backend

            try:
                backend = get_backend(self.backend)
            except KeyError as err:
                raise QirError(str(err.args[0])) from None
        target = pass_target(self.target, op)
        if getattr(getattr(backend, "capabilities", None), "int16_pairs", False):
            record_target(op, target)
        shared = _Rewriter(ctx, backend, target)
        PatternRewriteWalker(
            GreedyRewritePatternApplier([_ByKind([
                FoldCastPairs(shared), SinkDequantize(shared), ConvOrLinear(shared), DynamicLinear(shared), Matmul(shared),
                AddOrMul(shared), Cat(shared), AvgPool(shared), Lookup(shared), WeightOnly(shared),
            ])]),
            walk_reverse=False,
        ).rewrite_module(op)
        PatternRewriteWalker(RemoveDeadOps(ctx, Mutations.of(op)), walk_reverse=True).rewrite_module(op)
