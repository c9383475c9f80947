"""The `onednn` dialect's ops for what oneDNN has no quantized kernel for in torch: the float
boundaries, elementwise arithmetic, pools, lookups, matmul, cat.

Each is computed by ATen on the integer storage (`qir.lowering.onednn.storage_kernels`):
float32 arithmetic where the `ref` op's definition rescales (within one quantization step
of it: float32 rounds where the definition's float64 does not), exactly where it only
selects, compares or sums integers (max-pooling, clamps, cat of same-parameter inputs,
lookup tables, the sums of a global pool). Operand and result types are the `ref` op's;
a quantized value is its storage tensor (uint8 / int8), so these ops and the oneDNN
kernels pass activations to each other as they are.

    %y = onednn.add(%a, %b) {post = "relu"} : (tensor<2x8x!quant.uniform<u8:f32, 0.03:120>>,
           tensor<2x8x!quant.uniform<u8:f32, 0.02:130>>) -> tensor<2x8x!quant.uniform<u8:f32, 0.04>>
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    AnyFloat,
    ArrayAttr,
    BoolAttr,
    DenseArrayBase,
    IntegerAttr,
    StringAttr,
    TensorType,
)
from xdsl.ir import SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, opt_prop_def, prop_def, result_def, var_operand_def
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.ref import POST_OPS, element, per_tensor, quantized

STORAGES = ("u8", "i8")
"""The storage these ops compute on (torch's uint8 and int8 tensors)."""


def storage_name(value: SSAValue) -> str | None:
    """`"u8"`, `"i8"`, ... for a quantized value; None otherwise."""
    qtype = quantized(value)
    if qtype is None:
        return None
    return f"{'i' if qtype.is_signed else 'u'}{qtype.storage_width}"


def _activation(op: KernelOp, value: SSAValue, what: str) -> None:
    if per_tensor(value) is None or storage_name(value) not in STORAGES:
        raise VerifyException(f"{op.name}: {what} must be a u8 or i8 per-tensor quantized tensor, got {value.type}")


def _is_f32(value: SSAValue) -> bool:
    elem = element(value)
    return isinstance(elem, AnyFloat) and elem.bitwidth == 32


class _Unary(KernelOp):
    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _activation(self, self.input, "the input")
        _activation(self, self.output, "the result")


class _Binary(KernelOp):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    post = opt_prop_def(StringAttr)
    post_args = opt_prop_def(DenseArrayBase)

    def verify_post(self) -> None:
        post = self.post.data if self.post is not None else None
        args = self.post_args.get_values() if self.post_args is not None else ()
        if post is not None and post not in POST_OPS:
            raise VerifyException(f"{self.name}: unknown post op {post!r} (post ops: {', '.join(POST_OPS)})")
        if (post == "hardtanh") != (len(args) == 2) or (post != "hardtanh" and args):
            raise VerifyException(f"{self.name}: post_args are hardtanh's [lo, hi], and only hardtanh's")

    def verify_(self) -> None:
        _activation(self, self.lhs, "the left operand")
        _activation(self, self.rhs, "the right operand")
        _activation(self, self.output, "the result")
        self.verify_post()


@irdl_op_definition
class QuantizeOp(KernelOp):
    """Float32 to storage: `clamp(round(x * (1 / s)) + z)`, the arithmetic of
    `quantized_decomposed.quantize_per_tensor` (bit-identical), in one pass fewer."""

    name = "onednn.quantize"
    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        if not _is_f32(self.input):
            raise VerifyException(f"{self.name}: quantizes a float32 tensor, got {self.input.type}")
        _activation(self, self.output, "the result")


@irdl_op_definition
class DequantizeOp(KernelOp):
    """Storage to float32: `(q - z) * s`, as `quantized_decomposed.dequantize_per_tensor`
    (bit-identical), and contiguous: oneDNN's convs leave channels-last storage, and the float
    code after them was exported for contiguous tensors (it may `view` them)."""

    name = "onednn.dequantize"
    input = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _activation(self, self.input, "the input")
        if not _is_f32(self.output):
            raise VerifyException(f"{self.name}: dequantizes to float32, got {self.output.type}")


@irdl_op_definition
class RequantizeOp(_Unary):
    """New parameters: `clamp(round((x - zx) * (sx / sy)) + zy)` in float32."""

    name = "onednn.requantize"


@irdl_op_definition
class ClampOp(_Unary):
    """`clamp(x, min, max)` of the storage, the parameters kept: a relu (`min` the zero point) or
    a hardtanh whose bounds are storage values. Exact."""

    name = "onednn.clamp"
    min = prop_def(IntegerAttr)
    max = prop_def(IntegerAttr)

    def verify_(self) -> None:
        super().verify_()
        if self.input.type != self.output.type:
            raise VerifyException(f"{self.name}: a clamp keeps its input's type")
        if self.min.value.data > self.max.value.data:
            raise VerifyException(f"{self.name}: min > max")


@irdl_op_definition
class AddOp(_Binary):
    """`ref.add` in float32: `clamp(post(round(a * ma + b * mb + c)))`, `ma = sa / sy`,
    `mb = sb / sy`, `c = zy - za * ma - zb * mb`, broadcasting."""

    name = "onednn.add"


@irdl_op_definition
class MulOp(_Binary):
    """`ref.mul` in float32: `clamp(post(round((a - za) * (b - zb) * m) + zy))`; the product of
    centered storage values is exact in float32 (below 2^16)."""

    name = "onednn.mul"


@irdl_op_definition
class MatmulOp(KernelOp):
    """`ref.matmul` as a float32 matmul of the centered storage (exact while the sums of
    products stay below 2^24, one rounding per addition past that), rescaled to the result."""

    name = "onednn.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _activation(self, self.lhs, "the left operand")
        _activation(self, self.rhs, "the right operand")
        if not _is_f32(self.output):
            _activation(self, self.output, "the result")


@irdl_op_definition
class CatOp(KernelOp):
    """`ref.cat`: inputs with the result's parameters are concatenated as they are (exact), the
    others requantized first."""

    name = "onednn.cat"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    dim = prop_def(IntegerAttr)

    def verify_(self) -> None:
        if not self.inputs:
            raise VerifyException(f"{self.name}: needs at least one input")
        for value in self.inputs:
            _activation(self, value, "every input")
        _activation(self, self.output, "the result")


@irdl_op_definition
class AvgPoolOp(_Unary):
    """`ref.avg_pool`: the float32 window mean of the centered storage (a sum of integers,
    exact, divided once), rescaled and rounded. `ref.avg_pool`'s attributes and defaults."""

    name = "onednn.avg_pool"
    kernel_size = prop_def(DenseArrayBase)
    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    ceil_mode = opt_prop_def(BoolAttr)
    count_include_pad = opt_prop_def(BoolAttr)
    divisor_override = opt_prop_def(IntegerAttr)


@irdl_op_definition
class AdaptiveAvgPoolOp(_Unary):
    """`ref.adaptive_avg_pool`: a global pool as the exact int32 sum over the pooled dimensions,
    rescaled once; other sizes as torch's float32 adaptive pool of the centered storage."""

    name = "onednn.adaptive_avg_pool"
    output_size = prop_def(DenseArrayBase)


@irdl_op_definition
class MaxPoolOp(_Unary):
    """`aten.max_pool{2,3}d` of quantized storage (exact, the parameters kept), as the maximum of
    the strided slices of the window: torch's uint8 max-pool indexes channels-last inputs with
    the input's own dtype and refuses any with more than 255 elements per channel, and its
    contiguous uint8 kernel is many times slower than this."""

    name = "onednn.max_pool"
    kernel_size = prop_def(DenseArrayBase)
    stride = prop_def(DenseArrayBase)
    padding = prop_def(DenseArrayBase)
    dilation = prop_def(DenseArrayBase)
    ceil_mode = prop_def(BoolAttr)

    def verify_(self) -> None:
        super().verify_()
        if self.input.type.element_type != self.output.type.element_type:
            raise VerifyException(f"{self.name}: a max-pool keeps its input's parameters")
        sizes = {len(getattr(self, k).get_values()) for k in ("kernel_size", "stride", "padding", "dilation")}
        if len(sizes) != 1 or sizes.pop() not in (1, 2, 3):
            raise VerifyException(f"{self.name}: kernel_size, stride, padding and dilation need 1 to 3 equal entries")


@irdl_op_definition
class LookupOp(_Unary):
    """`ref.lookup`: its table (the definition, so exact), indexed by the storage."""

    name = "onednn.lookup"
    fn = prop_def(StringAttr)
    fn_args = opt_prop_def(ArrayAttr)


OPS = [QuantizeOp, DequantizeOp, RequantizeOp, ClampOp, AddOp, MulOp, MatmulOp, CatOp, AvgPoolOp,
       AdaptiveAvgPoolOp, MaxPoolOp, LookupOp]
