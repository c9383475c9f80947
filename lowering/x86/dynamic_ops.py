"""The x86 dialect's ops for dynamic quantization (parameters chosen at run time).

    %s, %z = x86.choose_qparams(%x) {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric}
               : (tensor<16x32x384xf32>) -> (tensor<16x32x1xf32>, tensor<16x32x1xi64>)
    %q = x86.dynamic_quantize(%x, %s, %z) : (tensor<16x32x384xf32>, tensor<16x32x1xf32>,
               tensor<16x32x1xi64>) -> tensor<16x32x384x!quant.any<i8<-127:127>:f32>>
    %y = x86.dynamic_linear(%q, %s, %z, %w, %b) {kernel = "int_mm"} : (...) -> tensor<16x32x1536xf32>

`x86.choose_qparams` and `x86.dynamic_quantize` compute exactly what `quant.choose_qparams` and
`quant.dynamic_qcast` define (`qir.dynamic_runtime`: the same float32 operations, in fewer torch
calls). `x86.dynamic_linear` is `ref.dynamic_linear` on one of x86's int8 kernels (`kernel`):

* `"onednn"`: a uint8 input per tensor, oneDNN's `qlinear_pointwise` with the run-time scale and
  zero point (its `.tensor` overload, the one inductor's dynamic quantization calls);
* `"onednn_shifted"`: an int8 input (per token or per tensor), as uint8 `q + 128` with zero
  point 128 on the same kernel (one scale of 1: the row scales are applied after it, with the
  zero-point correction `z * sum(w)` when the zero points are not known to be 0);
* `"int_mm"`: an int8 input, `torch._int_mm` (int8 x int8 → int32, then the scales): exact only
  with AVX-512 VNNI (without it, it adds pairs of products in int16 and saturates: measured).

All accumulate in int32 exactly where the capability table lets them run (on a target without
VNNI, uint8 x int8 only, with weights whose int16 pairs cannot overflow) and rescale in float32:
their results equal the reference's up to float32 rounding.
"""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr, TensorType, UnitAttr
from xdsl.irdl import irdl_op_definition, operand_def, opt_prop_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.quant import (
    AnyQuantizedType,
    ChooseQParamsOp,
    DynamicQuantizeCastOp,
    QuantizedType,
    is_per_token,
    verify_choose_qparams,
)
from qir.dialects.ref import DynamicLinearOp, verify_dynamic_linear

DYNAMIC_KERNELS = ("onednn", "onednn_shifted", "int_mm")


@irdl_op_definition
class ChooseQParams(KernelOp):
    """`quant.choose_qparams`, computed by `qir.dynamic_runtime` (same attributes and results)."""

    name = "x86.choose_qparams"

    input = operand_def(TensorType)
    scale = result_def(TensorType)
    zero_point = result_def(TensorType)
    quantized_type = prop_def(AnyQuantizedType)
    symmetric = opt_prop_def(UnitAttr)

    per_token = ChooseQParamsOp.per_token
    is_symmetric = ChooseQParamsOp.is_symmetric

    def verify_(self) -> None:
        verify_choose_qparams(self)


@irdl_op_definition
class DynamicQuantize(KernelOp):
    """`quant.dynamic_qcast`, computed by `qir.dynamic_runtime`: the storage as a uint8/int8 tensor."""

    name = "x86.dynamic_quantize"

    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    zero_point = operand_def(TensorType)
    result = result_def(TensorType)

    @property
    def per_token(self) -> bool:
        return is_per_token(self.scale.type)

    @property
    def quantized_type(self) -> QuantizedType | None:
        element = self.result.type.element_type if isinstance(self.result.type, TensorType) else None
        return element if isinstance(element, QuantizedType) else None

    def verify_(self) -> None:
        if self.quantized_type is None:
            raise VerifyException(f"{self.name}: the result must be a tensor of !quant.any, got {self.result.type}")
        DynamicQuantizeCastOp._verify(self, self.input.type, self.result.type)


@irdl_op_definition
class DynamicLinear(KernelOp):
    """`ref.dynamic_linear` on one of x86's int8 kernels (`kernel`, see the module docstring)."""

    name = "x86.dynamic_linear"

    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    zero_point = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)
    kernel = prop_def(StringAttr)

    per_token = DynamicLinearOp.per_token

    def verify_(self) -> None:
        verify_dynamic_linear(self)
        kernel = self.kernel.data
        if kernel not in DYNAMIC_KERNELS:
            raise VerifyException(f"{self.name}: unknown kernel {kernel!r} (kernels: {', '.join(DYNAMIC_KERNELS)})")
        storage = self.input.type.element_type
        if (kernel == "onednn") != (not storage.is_signed):
            raise VerifyException(f"{self.name}: kernel {kernel!r} does not take {storage} inputs "
                                  "(onednn: uint8 per tensor; onednn_shifted, int_mm: int8)")
        if kernel == "onednn" and self.per_token:
            raise VerifyException(f"{self.name}: oneDNN takes one input scale, not one per row")


DYNAMIC_OPS = [ChooseQParams, DynamicQuantize, DynamicLinear]
