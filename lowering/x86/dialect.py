"""The `x86` dialect: torch's quantized CPU kernels (`torch.ops.quantized.*`, fbgemm and
oneDNN under the x86 engine), one op per kernel.

Values of a quantized type are torch quantized tensors (`quint8`) here, not their
integer storage: every kernel takes and returns them, so consecutive kernels pass
activations along without a dequantize/quantize round trip. `x86.quantize` and
`x86.dequantize` are the ways in and out for activations, `x86.from_storage` for quantized
weights and constants (the parameter store keeps their integer storage). Weights are prepacked once, when
the program is emitted (`x86.conv_prepack`, `x86.linear_prepack` take the int8
weight and its bias, and give `!x86.packed_conv` / `!x86.packed_linear`).

    %q = x86.quantize(%x) : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8x!quant.uniform<u8:f32, 0.02:128>>
    %p = x86.conv_prepack(%w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>,
           dilation = array<i64: 1, 1>, groups = 1 : i64, engine = "x86"} : (...) -> !x86.packed_conv
    %y = x86.conv2d_relu(%q, %p) : (tensor<...x!quant.uniform<u8:f32, 0.02:128>>, !x86.packed_conv)
           -> tensor<1x4x8x8x!quant.uniform<u8:f32, 0.01>>

A requantizing kernel's output scale and zero point are those of its result type.
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
)
from xdsl.ir import Dialect, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import (
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    var_operand_def,
)
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.ref import per_tensor, quantized

ENGINES = ("x86", "fbgemm", "onednn")


@irdl_attr_definition
class PackedConvType(ParametrizedAttribute, TypeAttribute):
    """Prepacked convolution weights (`Conv{1,2,3}dPackedParamsBase`)."""

    name = "x86.packed_conv"


@irdl_attr_definition
class PackedLinearType(ParametrizedAttribute, TypeAttribute):
    """Prepacked linear weights (`LinearPackedParamsBase`)."""

    name = "x86.packed_linear"


# --------------------------------------------------------------------------
# Into and out of quantized tensors.
# --------------------------------------------------------------------------


@irdl_op_definition
class QuantizeOp(KernelOp):
    """`torch.quantize_per_tensor` to the result type's parameters."""

    name = "x86.quantize"
    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        if per_tensor(self.output) is None or quantized(self.input) is not None:
            raise VerifyException(f"{self.name}: quantizes a float tensor to a per-tensor quantized one")


@irdl_op_definition
class DequantizeOp(KernelOp):
    """`Tensor.dequantize()` of a quantized tensor."""

    name = "x86.dequantize"
    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        if quantized(self.input) is None or quantized(self.output) is not None:
            raise VerifyException(f"{self.name}: dequantizes a quantized tensor to a float one")


@irdl_op_definition
class FromStorageOp(KernelOp):
    """A quantized weight or constant as a quantized tensor: the parameter store holds integer
    storage, the x86 kernels take quantized tensors. Built once, when the module is built."""

    name = "x86.from_storage"
    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        if quantized(self.input) is None or self.input.type != self.output.type:
            raise VerifyException(f"{self.name}: result and operand have the same quantized type")


@irdl_op_definition
class RequantizeOp(KernelOp):
    """New parameters for a quantized tensor (dequantize, then quantize)."""

    name = "x86.requantize"
    input = operand_def(TensorType)
    output = result_def(TensorType)


# --------------------------------------------------------------------------
# Weight packing, done once at emission.
# --------------------------------------------------------------------------


@irdl_op_definition
class ConvPrepackOp(KernelOp):
    """`quantized.conv{1,2,3}d_prepack` / `conv_transpose{1,2,3}d_prepack` of an int8 weight and a
    bias. An i32 bias is turned back into float with `input_scale` times the weight scales."""

    name = "x86.conv_prepack"
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(PackedConvType)

    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    dilation = prop_def(DenseArrayBase)
    groups = prop_def(IntegerAttr)
    transposed = opt_prop_def(BoolAttr)
    output_padding = opt_prop_def(DenseArrayBase)
    engine = prop_def(StringAttr)
    input_scale = opt_prop_def(FloatAttr)

    def verify_(self) -> None:
        if self.engine.data not in ENGINES:
            raise VerifyException(f"{self.name}: unknown engine {self.engine.data!r} (engines: {', '.join(ENGINES)})")


@irdl_op_definition
class LinearPrepackOp(KernelOp):
    """`quantized.linear_prepack` of an int8 weight and a bias (see `x86.conv_prepack`)."""

    name = "x86.linear_prepack"
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(PackedLinearType)

    engine = prop_def(StringAttr)
    input_scale = opt_prop_def(FloatAttr)

    def verify_(self) -> None:
        if self.engine.data not in ENGINES:
            raise VerifyException(f"{self.name}: unknown engine {self.engine.data!r} (engines: {', '.join(ENGINES)})")


# --------------------------------------------------------------------------
# Kernels. A requantizing kernel's output scale and zero point are its result type's; which
# torch operator each op calls is the emission's business (`qir.lowering.x86.emit`).
# --------------------------------------------------------------------------


class _Kernel(KernelOp):
    output = result_def(TensorType)

    def verify_(self) -> None:
        if per_tensor(self.output) is None:
            raise VerifyException(f"{self.name}: the result must be a per-tensor quantized tensor")


class _ConvKernel(_Kernel):
    input = operand_def(TensorType)
    packed = operand_def(PackedConvType)


class _ConvAddKernel(_Kernel):
    input = operand_def(TensorType)
    addend = operand_def(TensorType)
    packed = operand_def(PackedConvType)


class _LinearKernel(_Kernel):
    input = operand_def(TensorType)
    packed = operand_def(PackedLinearType)


class _BinaryKernel(_Kernel):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)


class _UnaryKernel(_Kernel):
    input = operand_def(TensorType)


@irdl_op_definition
class Conv1dOp(_ConvKernel):
    """`quantized.conv1d(qx, packed, scale, zero_point)`."""

    name = "x86.conv1d"


@irdl_op_definition
class Conv1dReluOp(_ConvKernel):
    """`quantized.conv1d_relu(qx, packed, scale, zero_point)`."""

    name = "x86.conv1d_relu"


@irdl_op_definition
class Conv2dOp(_ConvKernel):
    """`quantized.conv2d(qx, packed, scale, zero_point)`."""

    name = "x86.conv2d"


@irdl_op_definition
class Conv2dReluOp(_ConvKernel):
    """`quantized.conv2d_relu(qx, packed, scale, zero_point)`."""

    name = "x86.conv2d_relu"


@irdl_op_definition
class Conv3dOp(_ConvKernel):
    """`quantized.conv3d(qx, packed, scale, zero_point)`."""

    name = "x86.conv3d"


@irdl_op_definition
class Conv3dReluOp(_ConvKernel):
    """`quantized.conv3d_relu(qx, packed, scale, zero_point)`."""

    name = "x86.conv3d_relu"


@irdl_op_definition
class ConvTranspose1dOp(_ConvKernel):
    """`quantized.conv_transpose1d(qx, packed, scale, zero_point)`."""

    name = "x86.conv_transpose1d"


@irdl_op_definition
class ConvTranspose2dOp(_ConvKernel):
    """`quantized.conv_transpose2d(qx, packed, scale, zero_point)`."""

    name = "x86.conv_transpose2d"


@irdl_op_definition
class ConvTranspose3dOp(_ConvKernel):
    """`quantized.conv_transpose3d(qx, packed, scale, zero_point)`."""

    name = "x86.conv_transpose3d"


@irdl_op_definition
class Conv2dAddOp(_ConvAddKernel):
    """`quantized.conv2d_add(qx, qaccum, packed, scale, zero_point)`: a conv plus a residual
    (oneDNN-packed weights only)."""

    name = "x86.conv2d_add"


@irdl_op_definition
class Conv2dAddReluOp(_ConvAddKernel):
    """`quantized.conv2d_add_relu(qx, qaccum, packed, scale, zero_point)`: a conv plus a residual
    (oneDNN-packed weights only)."""

    name = "x86.conv2d_add_relu"


@irdl_op_definition
class LinearOp(_LinearKernel):
    """`quantized.linear(qx, packed, scale, zero_point)`, inputs of any rank."""

    name = "x86.linear"


@irdl_op_definition
class LinearReluOp(_LinearKernel):
    """`quantized.linear_relu(qx, packed, scale, zero_point)`, inputs of any rank."""

    name = "x86.linear_relu"


@irdl_op_definition
class AddOp(_BinaryKernel):
    """`quantized.add(qa, qb, scale, zero_point)`, broadcasting."""

    name = "x86.add"


@irdl_op_definition
class AddReluOp(_BinaryKernel):
    """`quantized.add_relu(qa, qb, scale, zero_point)`, broadcasting."""

    name = "x86.add_relu"


@irdl_op_definition
class MulOp(_BinaryKernel):
    """`quantized.mul(qa, qb, scale, zero_point)`, broadcasting."""

    name = "x86.mul"


@irdl_op_definition
class MulReluOp(_BinaryKernel):
    """`quantized.mul_relu(qa, qb, scale, zero_point)`, broadcasting."""

    name = "x86.mul_relu"


@irdl_op_definition
class MatmulOp(_BinaryKernel):
    """`quantized.matmul(qa, qb, scale, zero_point)`, broadcasting."""

    name = "x86.matmul"


@irdl_op_definition
class HardswishOp(_UnaryKernel):
    """`quantized.hardswish(qx, scale, zero_point)`."""

    name = "x86.hardswish"


@irdl_op_definition
class SigmoidOp(_UnaryKernel):
    """`quantized.sigmoid(qx, scale, zero_point)`."""

    name = "x86.sigmoid"


class _LinearFloatKernel(KernelOp):
    input = operand_def(TensorType)
    packed = operand_def(PackedLinearType)
    output = result_def(TensorType)
    input_scale = prop_def(FloatAttr)
    input_zero_point = prop_def(IntegerAttr)

    def verify_(self) -> None:
        if quantized(self.input) is not None or quantized(self.output) is not None:
            raise VerifyException(f"{self.name}: takes and gives float tensors (it quantizes its input itself)")


@irdl_op_definition
class LinearFp32Op(_LinearFloatKernel):
    """`quantized.linear_with_input_q_dq_qweight_dq_output_fp32(x, input_scale, input_zero_point,
    packed)`: int8 linear whose output stays in float (it quantizes its float input itself)."""

    name = "x86.linear_fp32"


@irdl_op_definition
class LinearReluFp32Op(_LinearFloatKernel):
    """The same with a fused relu."""

    name = "x86.linear_relu_fp32"


@irdl_op_definition
class CatOp(_Kernel):
    """`quantized.cat(qxs, dim, scale, zero_point)`."""

    name = "x86.cat"
    inputs = var_operand_def(TensorType)
    dim = prop_def(IntegerAttr)


@irdl_op_definition
class ReluOp(KernelOp):
    """`aten.relu` of a quantized tensor: clamps at its zero point, keeps its parameters."""

    name = "x86.relu"
    input = operand_def(TensorType)
    output = result_def(TensorType)


@irdl_op_definition
class ClampOp(KernelOp):
    """`aten.clamp(qx, min, max)` (a hardtanh) of a quantized tensor, keeping its parameters."""

    name = "x86.clamp"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    min = prop_def(FloatAttr)
    max = prop_def(FloatAttr)


@irdl_op_definition
class LookupOp(KernelOp):
    """Any elementwise function, as `ref.lookup` defines it: a table indexed by the storage."""

    name = "x86.lookup"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    fn = prop_def(StringAttr)
    fn_args = opt_prop_def(ArrayAttr)


@irdl_op_definition
class AvgPoolOp(KernelOp):
    """`aten.avg_pool{1,2,3}d` of a quantized tensor (requantized if the result's parameters differ)."""

    name = "x86.avg_pool"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    kernel_size = prop_def(DenseArrayBase)
    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    ceil_mode = opt_prop_def(BoolAttr)
    count_include_pad = opt_prop_def(BoolAttr)
    divisor_override = opt_prop_def(IntegerAttr)


@irdl_op_definition
class AdaptiveAvgPoolOp(KernelOp):
    """`aten.adaptive_avg_pool{1,2}d` of a quantized tensor (requantized if the parameters differ)."""

    name = "x86.adaptive_avg_pool"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    output_size = prop_def(DenseArrayBase)


X86 = Dialect(
    "x86",
    [QuantizeOp, DequantizeOp, FromStorageOp, RequantizeOp, ConvPrepackOp, LinearPrepackOp, CatOp, ReluOp, ClampOp,
     LookupOp, AvgPoolOp, AdaptiveAvgPoolOp,
     Conv1dOp, Conv1dReluOp, Conv2dOp, Conv2dReluOp, Conv3dOp, Conv3dReluOp, ConvTranspose1dOp,
     ConvTranspose2dOp, ConvTranspose3dOp, Conv2dAddOp, Conv2dAddReluOp, LinearOp, LinearReluOp, AddOp,
     AddReluOp, MulOp, MulReluOp, MatmulOp, HardswishOp, SigmoidOp, LinearFp32Op, LinearReluFp32Op],
    [PackedConvType, PackedLinearType],
)
