"""`mybackend`, built through qir's public interface only (torch.ao custom-backend RFC, use case 3).

Its kernels are `torch.library` ops on plain int8/uint8 tensors (`emit.py`): a quantized value
is its integer storage, as at the reference stage, so Q/DQ casts keep their generic emission.
Importing this registers it in this process; a package shipped on its own names `BACKEND` in a
`qir.backends` entry point instead, so that `qir-opt` (another process) finds it too
(`examples/qir_bmm_backend`).
"""

from pathlib import Path

from xdsl.dialects.builtin import IntegerAttr, TensorType
from xdsl.ir import Dialect
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def

import qir
from qir.dialects.kernel import KernelOp
from qir.dialects.quant import UniformQuantizedType
from qir.lowering import Backend, OpCapability, table

CAPABILITIES = table(
    OpCapability("ref.linear", weight_schemes=("per_tensor",), float_output=True),
    OpCapability("ref.matmul"),
    # softmax has no ref op: its Q/DQ form, with the fixed range, is what the fusion rule eats.
    patterns=("fixed_qparams",),
)


@irdl_op_definition
class QLinearOp(KernelOp):
    """`mybackend::qlinear`: per-tensor weight, float bias; a float result leaves the integers."""

    name = "mybackend.qlinear"
    input, weight, bias = operand_def(TensorType), operand_def(TensorType), operand_def(TensorType)
    output = result_def(TensorType)


@irdl_op_definition
class QBmmOp(KernelOp):
    """`mybackend::qbmm`: a batched matmul of two quantized tensors, requantized."""

    name = "mybackend.qbmm"
    lhs, rhs = operand_def(TensorType), operand_def(TensorType)
    output = result_def(TensorType)


@irdl_op_definition
class QBmmSoftmaxOp(KernelOp):
    """`mybackend::qbmm_softmax`: qbmm to the logits' type `mid` (no value carries it any more),
    then softmax along `dim` and quantization to the result type, in one kernel."""

    name = "mybackend.qbmm_softmax"
    lhs, rhs = operand_def(TensorType), operand_def(TensorType)
    output = result_def(TensorType)
    dim, mid = prop_def(IntegerAttr), prop_def(UniformQuantizedType)


MYBACKEND = Dialect("mybackend", [QLinearOp, QBmmOp, QBmmSoftmaxOp], [])

from .emit import EMISSION  # noqa: E402

BACKEND = qir.register_backend(Backend(
    name="mybackend", description="torch.library kernels on integer storage (mybackend::*)",
    capabilities=CAPABILITIES, dialects=(MYBACKEND,),
    rules=(Path(__file__).with_name("mybackend.rules"),), emission=EMISSION,
))
