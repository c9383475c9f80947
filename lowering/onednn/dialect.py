"""The `onednn` dialect: torch's oneDNN quantized kernels (`torch.ops.onednn.*`), which take
plain integer tensors, and the ops this backend computes with ATen on integer storage.

Quantized values are their integer storage here, as at the reference stage: a
`tensor<...x!quant.uniform<u8:f32, 0.02:128>>` is a plain uint8 tensor, and its scale and
zero point are arguments of the kernels that read it (read off the types when the program
is emitted). No torch quantized tensor (`quint8`, deprecated in torch 2.13) is ever made.

Weights are prepacked once, when the module is built: `onednn.qconv_prepack` and
`onednn.qlinear_prepack` take the int8 weight (a parameter) and give an opaque oneDNN
tensor, registered on the module. A kernel reads its weight's scales and its conv
geometry from the prepack op that made its packed operand, so the two cannot disagree:

    %pk = onednn.qconv_prepack(%w) {x_scale = 0.02 : f64, x_zero_point = 128 : i64,
            stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>,
            groups = 1 : i64, x_shape = array<i64: 1, 3, 8, 8>} : (tensor<4x3x3x3x!quant.uniform<i8:f32:0, {...}>>) -> !onednn.packed_conv
    %y = onednn.qconv2d_pointwise(%x, %pk, %b) {post = "relu"}
           : (tensor<1x3x8x8x!quant.uniform<u8:f32, 0.02:128>>, !onednn.packed_conv, tensor<4xf32>)
           -> tensor<1x4x8x8x!quant.uniform<u8:f32, 0.01>>

A kernel's result is quantized (its scale and zero point are the result type's, uint8 or
int8) or float32 (the kernel dequantizes its accumulator itself). `post` names the kernel's
fused post op in oneDNN's spelling (`relu`, `hardtanh`, `gelu`, `swish`, ...), `post_args`
its scalars and `algorithm` its variant (`gelu`: `none` or `tanh`); each kernel verifies the
post ops torch 2.13's oneDNN integration actually runs for it. The bias operand is the
`ref` op's own (f32, or i32 in accumulator units); the kernels take it in float, converted
once at emission (see `qir.lowering.onednn.emit`).

The ops for what oneDNN has no kernel for (add, pools, lookups, ...) live in
`qir.lowering.onednn.storage_ops` and belong to this dialect too.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import (
    AnyFloat,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
)
from xdsl.ir import Dialect, OpResult, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.quant import UniformQuantizedPerAxisType
from qir.dialects.ref import element, per_tensor, quantized
from qir.lowering.dynamic_kernels.ops import declare_ops
from qir.lowering.onednn import storage_ops
from qir.lowering.onednn.storage_ops import storage_name

KERNEL_STORAGES = ("u8", "i8")
"""The storage of the quantized results the kernels write (and of linear inputs)."""

CONV_POSTS = {1: ("relu",), 2: ("relu", "hardtanh", "hardswish", "swish"), 3: ()}
"""The unary post ops `qconv{1,2,3}d_pointwise` run (torch 2.13 refuses the others: no gelu
for any conv, nothing at all for conv3d)."""

LINEAR_POSTS = ("relu", "hardtanh", "gelu", "hardswish", "swish", "tanh", "leaky_relu")
"""The unary post ops `qlinear_pointwise` runs (`silu` and `sigmoid` it refuses)."""

POST_ARITY = {"hardtanh": 2, "leaky_relu": 1}
"""Scalars each post op takes (`[min, max]`, `[negative_slope]`); the others take none."""

ALGORITHMS = {"gelu": ("none", "tanh")}


@irdl_attr_definition
class PackedConvType(ParametrizedAttribute, TypeAttribute):
    """A convolution weight reordered by `onednn.qconv_prepack` (an opaque mkldnn tensor)."""

    name = "onednn.packed_conv"


@irdl_attr_definition
class PackedLinearType(ParametrizedAttribute, TypeAttribute):
    """A linear weight reordered (and transposed) by `onednn.qlinear_prepack`."""

    name = "onednn.packed_linear"


def _is_f32(value: SSAValue) -> bool:
    elem = element(value)
    return isinstance(elem, AnyFloat) and elem.bitwidth == 32


def _verify_symmetric_int8_weight(op: KernelOp, weight: SSAValue, rank: tuple[int, ...]) -> None:
    """oneDNN's int8 kernels take signed 8-bit weights with zero points of 0, per tensor or per
    output channel (axis 0)."""
    qtype = quantized(weight)
    if qtype is None or storage_name(weight) != "i8":
        raise VerifyException(f"{op.name}: the weight must be an i8 quantized tensor, got {weight.type}")
    if len(weight.type.get_shape()) not in rank:
        raise VerifyException(f"{op.name}: the weight must have {' or '.join(map(str, rank))} dimensions, "
                              f"got {weight.type}")
    zero_points = qtype.zero_points if isinstance(qtype, UniformQuantizedPerAxisType) else (qtype.zero_point,)
    if any(zero_points):
        raise VerifyException(f"{op.name}: oneDNN takes symmetric weights (zero points 0), got {weight.type}")
    if isinstance(qtype, UniformQuantizedPerAxisType) and qtype.axis != 0:
        raise VerifyException(f"{op.name}: a per-channel weight must be quantized along axis 0, not {qtype.axis}")


def _verify_result(op: KernelOp, value: SSAValue) -> None:
    if per_tensor(value) is not None and storage_name(value) in KERNEL_STORAGES:
        return
    if not _is_f32(value):
        raise VerifyException(f"{op.name}: the result must be a u8 or i8 per-tensor quantized tensor, or f32; "
                              f"got {value.type}")


def _verify_bias(op: KernelOp) -> None:
    type_ = op.bias.type
    if not isinstance(type_, TensorType) or len(type_.get_shape()) != 1 or quantized(op.bias) is not None:
        raise VerifyException(f"{op.name}: the bias must be a 1-D f32 or i32 tensor, got {type_}")


def _verify_post(op: KernelOp, allowed: tuple[str, ...], what: str) -> None:
    post = op.post.data if op.post is not None else None
    args = op.post_args.get_values() if op.post_args is not None else ()
    algorithm = op.algorithm.data if op.algorithm is not None else None
    if post is None:
        if args or algorithm is not None:
            raise VerifyException(f"{op.name}: post_args or algorithm without a post op")
        return
    if post not in allowed:
        runs = ", ".join(allowed) if allowed else "none"
        raise VerifyException(f"{op.name}: {what} has no fused {post!r} post op in oneDNN (post ops: {runs})")
    if len(args) != POST_ARITY.get(post, 0):
        raise VerifyException(f"{op.name}: post op {post!r} takes {POST_ARITY.get(post, 0)} post_args, got {len(args)}")
    if post == "hardtanh" and not args[0] <= args[1]:
        raise VerifyException(f"{op.name}: hardtanh needs post_args = [lo, hi] with lo <= hi")
    if algorithm is not None and algorithm not in ALGORITHMS.get(post, ()):
        raise VerifyException(f"{op.name}: post op {post!r} has no algorithm {algorithm!r}")


def prepack_of(op: KernelOp):
    """The prepack op that made a kernel's packed operand (None when it is not an op's result)."""
    packed = op.packed
    return packed.owner if isinstance(packed, OpResult) else None


def _verify_input_matches_prepack(op: KernelOp) -> None:
    """The kernel reads its input with the parameters its weight was packed for."""
    prepack = prepack_of(op)
    if not isinstance(prepack, QConvPrepackOp):
        return
    qin = per_tensor(op.input)
    if qin is not None and (prepack.x_scale.value.data != qin.scale or prepack.x_zero_point.value.data != qin.zero_point):
        raise VerifyException(f"{op.name}: the weight was packed for input parameters "
                              f"({prepack.x_scale.value.data}, {prepack.x_zero_point.value.data}), "
                              f"the input has ({qin.scale}, {qin.zero_point})")


# --------------------------------------------------------------------------
# Weight packing, done once at emission.
# --------------------------------------------------------------------------


@irdl_op_definition
class QConvPrepackOp(KernelOp):
    """`onednn.qconv_prepack(weight, w_scales, x_scale, x_zp, stride, padding, dilation, groups,
    x_shape)`: an int8 weight in oneDNN's blocked layout for inputs of `x_shape` (absent when a
    dimension is dynamic: oneDNN then picks a layout for any shape). The geometry is the
    kernel's too: the kernel reads it from here."""

    name = "onednn.qconv_prepack"
    weight = operand_def(TensorType)
    output = result_def(PackedConvType)

    x_scale = prop_def(FloatAttr)
    x_zero_point = prop_def(IntegerAttr)
    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    dilation = prop_def(DenseArrayBase)
    groups = prop_def(IntegerAttr)
    x_shape = opt_prop_def(DenseArrayBase)

    @property
    def spatial_rank(self) -> int:
        return len(self.weight.type.get_shape()) - 2

    def verify_(self) -> None:
        _verify_symmetric_int8_weight(self, self.weight, (3, 4, 5))
        spatial = self.spatial_rank
        for key in ("stride", "padding", "dilation"):
            if len(getattr(self, key).get_values()) != spatial:
                raise VerifyException(f"{self.name}: {key} must have {spatial} entries")
        if self.groups.value.data < 1:
            raise VerifyException(f"{self.name}: groups must be positive")
        if self.x_shape is not None and len(self.x_shape.get_values()) != spatial + 2:
            raise VerifyException(f"{self.name}: x_shape must have {spatial + 2} entries")


@irdl_op_definition
class QLinearPrepackOp(KernelOp):
    """`onednn.qlinear_prepack(weight, x_shape)`: an int8 `[out, in]` weight in oneDNN's layout."""

    name = "onednn.qlinear_prepack"
    weight = operand_def(TensorType)
    output = result_def(PackedLinearType)

    x_shape = opt_prop_def(DenseArrayBase)

    def verify_(self) -> None:
        _verify_symmetric_int8_weight(self, self.weight, (2,))


# --------------------------------------------------------------------------
# Kernels. Which torch operator each calls, with which arguments, is the emission's business
# (`qir.lowering.onednn.emit`).
# --------------------------------------------------------------------------


class _PostOps(KernelOp):
    post = opt_prop_def(StringAttr)
    post_args = opt_prop_def(DenseArrayBase)
    algorithm = opt_prop_def(StringAttr)


class _QConv(_PostOps):
    input = operand_def(TensorType)
    packed = operand_def(PackedConvType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)

    SPATIAL: ClassVar[int] = 2

    def verify_(self) -> None:
        if per_tensor(self.input) is None or storage_name(self.input) != "u8":
            raise VerifyException(f"{self.name}: oneDNN's quantized conv takes u8 per-tensor inputs, "
                                  f"got {self.input.type}")
        if len(self.input.type.get_shape()) != self.SPATIAL + 2:
            raise VerifyException(f"{self.name}: the input must have {self.SPATIAL + 2} dimensions")
        _verify_result(self, self.output)
        _verify_bias(self)
        _verify_post(self, CONV_POSTS[self.SPATIAL], f"conv{self.SPATIAL}d")
        _verify_input_matches_prepack(self)


@irdl_op_definition
class QConv1dOp(_QConv):
    """`onednn.qconv1d_pointwise`: a 1-D convolution (relu its only post op)."""

    name = "onednn.qconv1d_pointwise"
    SPATIAL: ClassVar[int] = 1


@irdl_op_definition
class QConv2dOp(_QConv):
    """`onednn.qconv2d_pointwise`: a 2-D convolution with relu, hardtanh, hardswish or swish fused."""

    name = "onednn.qconv2d_pointwise"
    SPATIAL: ClassVar[int] = 2


@irdl_op_definition
class QConv3dOp(_QConv):
    """`onednn.qconv3d_pointwise`: a 3-D convolution (no post ops)."""

    name = "onednn.qconv3d_pointwise"
    SPATIAL: ClassVar[int] = 3


@irdl_op_definition
class QConv2dSumOp(_PostOps):
    """`onednn.qconv2d_pointwise.binary` with the `sum` post op: a 2-D convolution added to
    `accum` (requantized from its own parameters), then relu if `post` says so:
    `y = clamp(round(acc * sx * sw / sy + (a - za) * sa / sy) + zy)`.

    oneDNN writes the sum into the accumulator's buffer (which must be channels-last), so
    the result has the accumulator's storage; the emission copies an accumulator that is
    read again or may alias another value."""

    name = "onednn.qconv2d_pointwise_sum"
    input = operand_def(TensorType)
    packed = operand_def(PackedConvType)
    bias = operand_def(TensorType)
    accum = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        if per_tensor(self.input) is None or storage_name(self.input) != "u8":
            raise VerifyException(f"{self.name}: oneDNN's quantized conv takes u8 per-tensor inputs")
        if len(self.input.type.get_shape()) != 4:
            raise VerifyException(f"{self.name}: the input must have 4 dimensions")
        if per_tensor(self.output) is None or storage_name(self.output) not in KERNEL_STORAGES:
            raise VerifyException(f"{self.name}: the result must be u8 or i8 per-tensor quantized")
        if per_tensor(self.accum) is None or storage_name(self.accum) != storage_name(self.output) \
                or self.accum.type.get_shape() != self.output.type.get_shape():
            raise VerifyException(f"{self.name}: the accumulator {self.accum.type} must have the result's "
                                  f"shape and storage ({self.output.type}): oneDNN sums into its buffer")
        _verify_bias(self)
        _verify_post(self, ("relu",), "conv2d + sum")
        _verify_input_matches_prepack(self)


class _QLinear(_PostOps):
    def _verify_linear(self) -> None:
        if per_tensor(self.input) is None or storage_name(self.input) not in KERNEL_STORAGES:
            raise VerifyException(f"{self.name}: the input must be a u8 or i8 per-tensor quantized tensor, "
                                  f"got {self.input.type}")
        _verify_result(self, self.output)
        _verify_bias(self)


@irdl_op_definition
class QLinearOp(_QLinear):
    """`onednn.qlinear_pointwise`: a linear of an input of any rank, with a unary post op."""

    name = "onednn.qlinear_pointwise"
    input = operand_def(TensorType)
    packed = operand_def(PackedLinearType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        self._verify_linear()
        _verify_post(self, LINEAR_POSTS, "linear")


BINARY_OPS = ("sum", "add")


@irdl_op_definition
class QLinearBinaryOp(_QLinear):
    """`onednn.qlinear_pointwise.binary`: a linear plus `other`, then relu if `post` says so.

    `binary = "sum"`: `other` is quantized with the result's storage and the sum is written
    into its buffer (`y = clamp(round(acc * sx * sw / sy + (o - zo) * so / sy) + zy)`);
    `binary = "add"`: `other` is a float32 tensor added to the real-valued linear before the
    result is (re)quantized or returned in float."""

    name = "onednn.qlinear_pointwise_binary"
    input = operand_def(TensorType)
    packed = operand_def(PackedLinearType)
    bias = operand_def(TensorType)
    other = operand_def(TensorType)
    output = result_def(TensorType)

    binary = prop_def(StringAttr)

    def verify_(self) -> None:
        self._verify_linear()
        _verify_post(self, ("relu",), "linear + binary")
        kind = self.binary.data
        if kind not in BINARY_OPS:
            raise VerifyException(f"{self.name}: binary must be one of {', '.join(BINARY_OPS)}, got {kind!r}")
        if self.other.type.get_shape() != self.output.type.get_shape():
            raise VerifyException(f"{self.name}: other {self.other.type} and the result {self.output.type} differ in shape")
        if kind == "sum" and (per_tensor(self.other) is None or per_tensor(self.output) is None
                              or storage_name(self.other) != storage_name(self.output)):
            raise VerifyException(f"{self.name}: `sum` writes into a quantized `other` of the result's storage")
        if kind == "add" and not _is_f32(self.other):
            raise VerifyException(f"{self.name}: `add` takes a float32 `other`, got {self.other.type}")


DYNAMIC_OPS = declare_ops("onednn")
"""`onednn.choose_qparams`, `onednn.dynamic_quantize`, `onednn.dynamic_linear`: dynamic
quantization's kernels (`qir.lowering.dynamic_kernels`, shared with x86)."""

ONEDNN = Dialect(
    "onednn",
    [QConvPrepackOp, QLinearPrepackOp, QConv1dOp, QConv2dOp, QConv3dOp, QConv2dSumOp, QLinearOp, QLinearBinaryOp,
     *storage_ops.OPS, *DYNAMIC_OPS],
    [PackedConvType, PackedLinearType],
)
