"""The x86 dialect's ops for weight-only quantization (float activations, narrow weights).

    %pk = x86.weight_only_pack(%w) : (tensor<4096x4096x!quant.uniform<u4:f32:{0:1, 1:32}, {...}>>)
            -> !x86.packed_weight_only
    %y = x86.weight_only_linear(%x, %pk) : (tensor<1x1x4096xf32>, !x86.packed_weight_only) -> tensor<1x1x4096xf32>

    %pk = x86.linear_prepack_fp16(%w) : (tensor<4096x4096xf16>) -> !x86.packed_linear_fp16
    %y = x86.linear_fp16(%x, %pk) : (tensor<1x1x4096xf32>, !x86.packed_linear_fp16) -> tensor<1x1x4096xf32>

    %t = x86.embedding_pack(%w) : (tensor<32000x2048x!quant.uniform<u8:f32:0, {...}>>) -> !x86.packed_embedding
    %e = x86.embedding_lookup(%t, %ids) : (!x86.packed_embedding, tensor<1x1xi64>) -> tensor<1x1x2048xf32>
    %b = x86.embedding_bag_lookup(%t, %ids, %offsets) {mode = "sum"} : (!x86.packed_embedding, tensor<40xi64>,
           tensor<8xi64>) -> tensor<8x2048xf32>

What each runs, chosen by measuring on this project's CPUs (`bench/weight_only_kernels.py`: 8
chained 2048x2048 linears, one row, 2 threads, AMD EPYC with AVX-512 VNNI and the same in AVX2
mode). `x86.weight_only_linear` runs the kernels inductor generates from the arithmetic
(`qir.lowering.weight_only_kernels`: the integers packed in int32 lanes, the scale factored
out of each row's or group's sum), 3-8x faster than the float32 matmul at one row, where
torch's `aten._weight_int8pack_mm` and `aten._weight_int4pack_mm_for_cpu` are 3-7x slower than
it. `x86.linear_fp16` is fbgemm's `quantized.linear_dynamic_fp16` (float32 activations, the
weight widened exactly, float32 sums): the fastest there is for float16 weights. Both compute
`ref.weight_only_linear` up to the rounding of float32 sums.

`x86.embedding_lookup` gathers the rows first and dequantizes only them, `(float32(q) - zp) * s`,
which is `ref.weight_only_embedding` exactly (4-bit tables keep two values per byte); fbgemm's
`quantized.embedding_byte` / `embedding_4bit` give no speed-up on a lookup of a few rows.
`x86.embedding_bag_lookup` gathers and dequantizes the rows its bags read the same way, then
adds them (ATen's sum over one row per index) or takes their maxima (`scatter_reduce`). Sums
and means of 8-bit tables run on fbgemm's fused rowwise kernel instead
(`x86.embedding_bag_rowwise`: rows read as `q * s + b`, `b = -zp * s`), which dequantizes in
registers. Both compute `ref.weight_only_embedding_bag` up to float32 rounding.
`bench/embedding_bag.py` (three 200000 x 64 tables, 2048 bags of 20, 2 threads, AMD EPYC with
AVX-512 VNNI): a sum, a padded mean and a max in 5.3 ms, against 26.1 ms for the float tables
(ATen's padded and max bags leave its fast kernel).
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import BFloat16Type, BoolAttr, Float16Type, IntegerAttr, StringAttr, TensorType
from xdsl.ir import Operation, ParametrizedAttribute, SSAValue, TypeAttribute
from xdsl.irdl import (
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    prop_def,
    result_def,
)
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.quant import (
    QuantizedType,
    UniformQuantizedPerAxisType,
    UniformQuantizedSubChannelType,
    UniformQuantizedType,
)
from qir.dialects.ref import element


@irdl_attr_definition
class PackedWeightOnlyType(ParametrizedAttribute, TypeAttribute):
    """An integer weight packed for the generated kernels (`weight_only_kernels.PackedWeight`)."""

    name = "x86.packed_weight_only"


@irdl_attr_definition
class PackedLinearFp16Type(ParametrizedAttribute, TypeAttribute):
    """A float16 weight packed by fbgemm (`quantized.linear_prepack_fp16`)."""

    name = "x86.packed_linear_fp16"


@irdl_attr_definition
class PackedEmbeddingRowsType(ParametrizedAttribute, TypeAttribute):
    """An 8-bit table in fbgemm's rowwise layout (`weight_only_kernels.pack_rows_for_fbgemm`)."""

    name = "x86.packed_embedding_rows"


@irdl_attr_definition
class PackedEmbeddingType(ParametrizedAttribute, TypeAttribute):
    """A table of rows for `embedding_lookup` (`weight_only_kernels.PackedTable`)."""

    name = "x86.packed_embedding"


def _float_tensor(op: Operation, value, what: str) -> None:
    from xdsl.dialects.builtin import Float32Type

    if not isinstance(element(value), Float32Type):
        raise VerifyException(f"{op.name}: the {what} must be float32, got {value.type}")


def packable(weight) -> bool:
    """Whether the generated kernels take this weight: a 2-d integer weight of at most 8 bits
    with one scale per tensor, per row (axis 0), or per group of a row (`{0:1, 1:g}`)."""
    qtype = element(weight)
    shape = weight.type.get_shape() if isinstance(weight.type, TensorType) else ()
    if not isinstance(qtype, QuantizedType) or len(shape) != 2 or any(d < 0 for d in shape) \
            or qtype.storage_width > 8:
        return False
    if isinstance(qtype, UniformQuantizedPerAxisType):
        return qtype.axis == 0
    if isinstance(qtype, UniformQuantizedSubChannelType):
        rows, group = qtype.block_shape(tuple(shape))
        return rows == 1 and group > 1 and shape[1] % group == 0
    return isinstance(qtype, UniformQuantizedType)


def kernel_takes(op) -> bool:
    """The capability check of `ref.weight_only_linear` / `ref.weight_only_embedding[_bag]` on x86:
    a linear's weight packable (see `packable`) or float16 (fbgemm has no bfloat16 kernel); a
    table per tensor or per row, of at most 8 bits, or float16 / bfloat16."""
    weight = op.weight
    if isinstance(element(weight), Float16Type):
        return True
    if op.name in ("ref.weight_only_embedding", "ref.weight_only_embedding_bag"):
        qtype = element(weight)
        return isinstance(qtype, BFloat16Type) or (packable(weight) and not isinstance(qtype, UniformQuantizedSubChannelType))
    return packable(weight)


@irdl_op_definition
class WeightOnlyPack(KernelOp):
    """A quantized weight packed once, when the module is built, for `weight_only_linear`."""

    READS_STORAGE: ClassVar[bool] = True
    name = "x86.weight_only_pack"

    weight = operand_def(TensorType)
    output = result_def(PackedWeightOnlyType)

    def verify_(self) -> None:
        if not packable(self.weight):
            raise VerifyException(f"{self.name}: the generated kernels take 2-d weights of at most 8 bits per tensor, "
                                  f"per row or per group of a row, not {self.weight.type}")


@irdl_op_definition
class WeightOnlyLinear(KernelOp):
    """`ref.weight_only_linear` on the generated kernels (`qir.lowering.weight_only_kernels.linear`)."""

    name = "x86.weight_only_linear"

    input = operand_def(TensorType)
    packed = operand_def(PackedWeightOnlyType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _float_tensor(self, self.input, "input")
        _float_tensor(self, self.output, "result")


@irdl_op_definition
class LinearPrepackFp16(KernelOp):
    """`quantized.linear_prepack_fp16` of a float16 weight (and the bias), once."""

    READS_STORAGE: ClassVar[bool] = True
    name = "x86.linear_prepack_fp16"

    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(PackedLinearFp16Type)

    def verify_(self) -> None:
        if not isinstance(element(self.weight), Float16Type) or len(self.weight.type.get_shape()) != 2:
            raise VerifyException(f"{self.name}: packs a 2-d float16 weight, not {self.weight.type}")


@irdl_op_definition
class LinearFp16(KernelOp):
    """`quantized.linear_dynamic_fp16(x, packed)`: float32 activations by a float16 weight."""

    name = "x86.linear_fp16"

    input = operand_def(TensorType)
    packed = operand_def(PackedLinearFp16Type)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _float_tensor(self, self.input, "input")
        _float_tensor(self, self.output, "result")


@irdl_op_definition
class EmbeddingPack(KernelOp):
    """A table packed once for `embedding_lookup` (4-bit rows two values per byte)."""

    READS_STORAGE: ClassVar[bool] = True
    name = "x86.embedding_pack"

    weight = operand_def(TensorType)
    output = result_def(PackedEmbeddingType)


@irdl_op_definition
class EmbeddingLookup(KernelOp):
    """`ref.weight_only_embedding`: the rows of `indices` gathered, then dequantized."""

    name = "x86.embedding_lookup"

    table = operand_def(PackedEmbeddingType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _float_tensor(self, self.output, "result")


class _EmbeddingBag(KernelOp):
    """What x86's embedding-bag kernels take besides their packed table: the operands and
    properties of `ref.weight_only_embedding_bag` (`ref.embedding_bag_args` reads them)."""

    indices = operand_def(TensorType)
    offsets = operand_def(TensorType)
    per_sample_weights = opt_operand_def(TensorType)
    output = result_def(TensorType)

    mode = prop_def(StringAttr)
    include_last_offset = opt_prop_def(BoolAttr)
    padding_idx = opt_prop_def(IntegerAttr)

    def verify_(self) -> None:
        _float_tensor(self, self.output, "result")


@irdl_op_definition
class EmbeddingBagLookup(_EmbeddingBag):
    """`ref.weight_only_embedding_bag`: the rows of `indices` gathered and dequantized, then bagged."""

    name = "x86.embedding_bag_lookup"

    table = operand_def(PackedEmbeddingType)


def rowwise_bags(value: SSAValue) -> bool:
    """Whether fbgemm's rowwise kernel computes the `ref.weight_only_embedding_bag` defining
    `value`: sums or means (it has no maximum) of an 8-bit table per row or per tensor."""
    op = value.owner
    qtype = element(op.weight)
    return (op.mode.data in ("sum", "mean")
            and isinstance(qtype, UniformQuantizedPerAxisType | UniformQuantizedType) and packable(op.weight)
            and qtype.storage_width == 8)


@irdl_op_definition
class EmbeddingRowsPack(KernelOp):
    """An 8-bit table packed once in fbgemm's rowwise layout, for `embedding_bag_rowwise`."""

    READS_STORAGE: ClassVar[bool] = True
    name = "x86.embedding_rows_pack"

    weight = operand_def(TensorType)
    output = result_def(PackedEmbeddingRowsType)


@irdl_op_definition
class EmbeddingBagRowwise(_EmbeddingBag):
    """`ref.weight_only_embedding_bag`'s sums and means on fbgemm's rowwise kernel
    (`quantized.embedding_bag_byte_rowwise_offsets`): each row read as `q * s + (-zp * s)`, the
    reference's rows up to float32 rounding."""

    name = "x86.embedding_bag_rowwise"

    table = operand_def(PackedEmbeddingRowsType)

    def verify_(self) -> None:
        super().verify_()
        if self.mode.data not in ("sum", "mean"):
            raise VerifyException(f"{self.name}: fbgemm's rowwise bags are sums or means, not {self.mode.data!r}")


FUNCTIONS = {"rowwise_bags": rowwise_bags}
"""The rule functions of x86's weight-only rules."""

WEIGHT_ONLY_OPS = [WeightOnlyPack, WeightOnlyLinear, LinearPrepackFp16, LinearFp16, EmbeddingPack, EmbeddingLookup,
                   EmbeddingBagLookup, EmbeddingRowsPack, EmbeddingBagRowwise]
WEIGHT_ONLY_TYPES = [PackedWeightOnlyType, PackedLinearFp16Type, PackedEmbeddingType, PackedEmbeddingRowsType]
