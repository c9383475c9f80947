"""The `qbmm` dialect: one op per kernel of this backend.

Its name is not the backend's (`bmm-int8`): qir finds a backend's dialects through the
backend, not through their names. Both ops take two per-tensor quantized int8 operands;
`KernelOp` gives them qir's kernel-op syntax, the one rules match and `qir-opt` prints:

    %y = qbmm.bmm(%a, %b) : (tensor<2x6x8x!qa>, tensor<2x8x6x!qb>) -> tensor<2x6x6xf32>
    %p = qbmm.bmm_softmax(%a, %b) {dim = -1 : i64} : (...) -> tensor<2x6x6x!quant.uniform<i8:f32, 0.00390625:-128>>
"""

from __future__ import annotations

from xdsl.dialects.builtin import AnyFloat, IntegerAttr, TensorType
from xdsl.ir import Dialect
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from qir.dialects.kernel import KernelOp
from qir.dialects.ref import element, per_tensor


def _int8_operands(op: KernelOp) -> None:
    for name in ("lhs", "rhs"):
        value = getattr(op, name)
        qtype = per_tensor(value)
        if qtype is None or qtype.storage_dtype_name != "int8":
            raise VerifyException(f"{op.name}: the {name} must be per-tensor quantized int8, not {value.type}")
        if len(value.type.get_shape()) != 3:
            raise VerifyException(f"{op.name}: the {name} must be of rank 3 (a batch of matrices)")


@irdl_op_definition
class BmmOp(KernelOp):
    """`qbmm::bmm`: `(a - za) @ (b - zb)` accumulated exactly in int32, then requantized
    (`round(acc * sa * sb / sy) + zy`, half to even) or scaled to a float result."""

    name = "qbmm.bmm"

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    def verify_(self) -> None:
        _int8_operands(self)
        if per_tensor(self.output) is None and not isinstance(element(self.output), AnyFloat):
            raise VerifyException(f"{self.name}: the result must be per-tensor quantized or float")


@irdl_op_definition
class BmmSoftmaxOp(KernelOp):
    """`qbmm::bmm_softmax`: the float logits of `qbmm.bmm`, their softmax along `dim`, quantized
    to the result type, in one kernel: the logits never leave it (torch.ao's custom-backend
    RFC's `quantized_bmm_softmax`)."""

    name = "qbmm.bmm_softmax"

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)
    dim = prop_def(IntegerAttr)

    def verify_(self) -> None:
        _int8_operands(self)
        if per_tensor(self.output) is None:
            raise VerifyException(f"{self.name}: the result must be per-tensor quantized")


QBMM = Dialect("qbmm", [BmmOp, BmmSoftmaxOp], [])
