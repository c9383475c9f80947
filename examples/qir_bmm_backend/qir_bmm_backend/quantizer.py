"""The backend's quantizer: its own config and its own annotation patterns.

None of qir's built-in patterns fits these kernels: qir's `matmul` pattern quantizes a matmul
only when its operands arrive quantized, and a softmax is a unit of its own there. As torch.ao's
custom-backend RFC asks (a bmm that quantizes its inputs and output, and `bmm + softmax` as one
unit), this backend brings two patterns, tried in this order:

* `bmm_softmax`: `softmax(bmm(a, b))`: both operands quantized, nothing inside the unit (the
  logits stay float, inside the fused kernel), the softmax's output quantized with the
  parameters its range [0, 1) fixes;
* `bmm`: any other bmm: both operands and the output quantized. It is not optional: when
  nothing reads its output quantized it still runs on int8 operands, to a float result.

Activations are int8, affine, observed with a histogram (the kernels multiply int8 by int8).
"""

from __future__ import annotations

import torch

from qir.quantizer import (
    AnnotationPattern,
    FixedQParamsQuantizationSpec,
    QuantizationConfig,
    QuantizationSpec,
    fixed_qparams,
)

ACTIVATION = QuantizationSpec(torch.int8, -128, 127, torch.per_tensor_affine, observer="histogram")
CONFIG = QuantizationConfig(input_activation=ACTIVATION, output_activation=ACTIVATION, weight=None)
"""int8 affine activations; no weights (a bmm multiplies two activations)."""


def _probabilities(spec: QuantizationSpec) -> FixedQParamsQuantizationSpec:
    """The spec of a softmax's output: [0, 1) spread over the storage range (int8: 1/256, -128)."""
    lo, hi = spec.quant_min, spec.quant_max
    scale, zero_point = fixed_qparams(0.0, 1.0, lo, hi)
    return FixedQParamsQuantizationSpec(spec.dtype, scale, zero_point, lo, hi)


def _bmm(op) -> bool:
    return op.op_name == "bmm" and len(op.operands) == 2 and len(op.results) == 1


class BmmSoftmax(AnnotationPattern):
    """`softmax(bmm(a, b), dim)` as one unit."""

    name = "bmm_softmax"
    ops = frozenset({"bmm", "softmax"})

    def annotate(self, quantizer, op, config) -> bool:
        if not _bmm(op) or config.input_activation is None or config.output_activation is None:
            return False
        softmax = quantizer.fusable(op.results[0], {"softmax"})
        if softmax is None or softmax.arg("dtype") is not None:
            return False
        quantizer.set_specs(op, inputs={0: config.input_activation, 1: config.input_activation}, outputs={0: None})
        quantizer.set_specs(softmax, outputs={0: _probabilities(config.output_activation)})
        return True


class Bmm(AnnotationPattern):
    """A bmm on its own."""

    name = "bmm"
    ops = frozenset({"bmm"})
    optional = False

    def annotate(self, quantizer, op, config) -> bool:
        if not _bmm(op) or config.input_activation is None:
            return False
        quantizer.set_specs(op, inputs={0: config.input_activation, 1: config.input_activation},
                            outputs={0: config.output_activation})
        return True


BMM_SOFTMAX = BmmSoftmax()
BMM = Bmm()
