"""The kernels of dynamic quantization (parameters chosen at run time) on oneDNN, as ops of the
dialect of each backend that runs them (`x86`, `onednn`): described once here, declared per
dialect by `declare_ops`, emitted by `emit.py`, lowered by `dynamic.rules`.

    %s, %z = x86.choose_qparams(%x) {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric}
               : (tensor<16x32x384xf32>) -> (tensor<16x32x1xf32>, tensor<16x32x1xi64>)
    %q = x86.dynamic_quantize(%x, %s, %z) : (tensor<16x32x384xf32>, tensor<16x32x1xf32>,
               tensor<16x32x1xi64>) -> tensor<16x32x384x!quant.any<i8<-127:127>:f32>>
    %y = x86.dynamic_linear(%q, %s, %z, %w, %b) : (...) -> tensor<16x32x1536xf32>

`choose_qparams` and `dynamic_quantize` compute exactly what `quant.choose_qparams` and
`quant.dynamic_qcast` define (`qir.dynamic_runtime`: the same float32 operations, in fewer torch
calls). `dynamic_linear` is `ref.dynamic_linear` on oneDNN's int8 linear
(`onednn.qlinear_pointwise`, the kernel inductor's dynamic quantization calls): a uint8 input per
tensor with its run-time scale and zero point given to the kernel (its `.tensor` overload); an
int8 input (per token) with a scale of 1, the row scales applied to the float result after it
(`y * s + b`, one `addcmul`), less `z * sum(w)` when the zero points may be nonzero. The int8
input is handed to oneDNN as uint8 `q + 128` with zero point 128 (its int8-source matmul gives
the same sums but is its reference implementation, thousands of times slower), which is how
`qir.accumulation.may_saturate` models it.

Its int32 accumulation is exact where the capability table lets it run (on a target without
VNNI, only weights whose int16 pairs cannot overflow); the rescale is float32, so results equal
the reference's up to float32 rounding. Measured and left out (torch 2.13, AMD EPYC with AVX-512
VNNI and in AVX2 mode): fbgemm's `quantized.linear_dynamic` chooses its own parameters (the
nudged zero point of `torch._choose_qparams_per_tensor`, its scale computed in float64: another
scale than PT2E's in 99.7% of random tensors) and rounds ties its own way, so it cannot compute
what the program says; `torch._int_mm` (int8 x int8) is no faster than oneDNN here and adds
pairs of products in int16 with saturation without VNNI, whatever the weights.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import TensorType, UnitAttr
from xdsl.irdl import irdl_op_definition, operand_def, opt_prop_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.quant import (
    AnyQuantizedType,
    ChooseQParamsOp,
    DynamicQuantizeCastOp,
    QuantizedType,
    verify_choose_qparams,
)
from qir.dialects.ref import DynamicLinearOp, verify_dynamic_linear


class ChooseQParams(KernelOp):
    """`quant.choose_qparams`, computed by `qir.dynamic_runtime` (same attributes and results)."""

    input = operand_def(TensorType)
    scale = result_def(TensorType)
    zero_point = result_def(TensorType)
    quantized_type = prop_def(AnyQuantizedType)
    symmetric = opt_prop_def(UnitAttr)

    per_token = ChooseQParamsOp.per_token
    is_symmetric = ChooseQParamsOp.is_symmetric

    def verify_(self) -> None:
        verify_choose_qparams(self)


class DynamicQuantize(KernelOp):
    """`quant.dynamic_qcast`, computed by `qir.dynamic_runtime`: the storage as a uint8/int8 tensor."""

    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    zero_point = operand_def(TensorType)
    result = result_def(TensorType)

    per_token = DynamicQuantizeCastOp.per_token

    @property
    def quantized_type(self) -> QuantizedType | None:
        element = self.result.type.element_type if isinstance(self.result.type, TensorType) else None
        return element if isinstance(element, QuantizedType) else None

    def verify_(self) -> None:
        if self.quantized_type is None:
            raise VerifyException(f"{self.name}: the result must be a tensor of !quant.any, got {self.result.type}")
        DynamicQuantizeCastOp._verify(self, self.input.type, self.result.type)


class DynamicLinear(KernelOp):
    """`ref.dynamic_linear` on oneDNN's int8 linear (see the module docstring)."""

    READS_STORAGE: ClassVar[bool] = True
    """It packs its weight from the parameter's storage (no `from_storage` in between)."""

    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    zero_point = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)

    per_token = DynamicLinearOp.per_token

    def verify_(self) -> None:
        verify_dynamic_linear(self)
        if self.per_token and not self.input.type.element_type.is_signed:
            raise VerifyException(f"{self.name}: per-token inputs are int8")


def declare_ops(prefix: str) -> list[type[KernelOp]]:
    """The ops `prefix.choose_qparams`, `prefix.dynamic_quantize`, `prefix.dynamic_linear`, for the
    dialect of a backend that runs them (instances of the kinds above, as emission tells them)."""
    return [irdl_op_definition(type(f"{prefix.title()}{kind.__name__}", (kind,), {
        "name": f"{prefix}.{suffix}", "__doc__": kind.__doc__, "__module__": __name__}))
        for kind, suffix in ((ChooseQParams, "choose_qparams"), (DynamicQuantize, "dynamic_quantize"),
                             (DynamicLinear, "dynamic_linear"))]
