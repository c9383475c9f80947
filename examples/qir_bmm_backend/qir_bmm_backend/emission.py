"""How `qbmm` ops become calls of the kernels: the emission table the backend hands over.

A quantized value is its int8 storage here, as at qir's reference stage, so the Q/DQ casts
around the kernels keep qir's own emission (`quantized_decomposed` quantize/dequantize).
Each kernel gets its operands with their scales and zero points, read off their types, and the
parameters of its result."""

from __future__ import annotations

import torch

from qir.dialects.ref import per_tensor
from qir.lowering import Emission, Emitter, torch_dtype
from qir_bmm_backend import kernels  # noqa: F401  (defines torch.ops.qbmm)

EMISSION = Emission()


def _operands(em: Emitter, op) -> list:
    args = []
    for value in (op.lhs, op.rhs):
        qtype = per_tensor(value)
        args += [em.node(value), qtype.scale, qtype.zero_point]
    return args


def _result(op) -> list:
    """The result's scale, zero point, storage range and dtype (a float result: only its dtype)."""
    qtype = per_tensor(op.output)
    dtype = torch_dtype(op.output.type.element_type)
    if qtype is None:
        return [1.0, 0, 0, 0, dtype]
    return [qtype.scale, qtype.zero_point, qtype.storage_min, qtype.storage_max, dtype]


@EMISSION.rule("qbmm.bmm")
def _bmm(em: Emitter, op) -> None:
    node = em.call(torch.ops.qbmm.bmm.default, (*_operands(em, op), *_result(op)), name=op.output.name_hint)
    em.bind(op, node)


@EMISSION.rule("qbmm.bmm_softmax")
def _bmm_softmax(em: Emitter, op) -> None:
    args = (*_operands(em, op), op.dim.value.data, *_result(op))
    em.bind(op, em.call(torch.ops.qbmm.bmm_softmax.default, args, name=op.output.name_hint))
