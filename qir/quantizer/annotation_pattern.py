"""Annotation patterns a backend brings: fusion units the built-in quantizers do not know.

The built-in patterns (`PatternQuantizer.PATTERNS`: conv, linear+relu, add, ...) are what
torch's native kernels fuse. A backend with a kernel of its own (a bmm fused with the softmax
after it, as in torch.ao's custom-backend RFC) says which ops form one unit and how each edge
of it is quantized, with an `AnnotationPattern`, and lists it in its capability table
(`qir.lowering.table(..., patterns=[...])` or `OpCapability(..., patterns=[...])`); the
quantizer the table derives tries it before the built-in ones:

    class BmmSoftmax(AnnotationPattern):
        name = "bmm_softmax"
        ops = frozenset({"bmm", "softmax"})

        def annotate(self, quantizer, op, config):
            softmax = quantizer.fusable(op.results[0], {"softmax"}) if op.op_name == "bmm" else None
            if softmax is None:
                return False
            quantizer.set_specs(op, inputs={0: config.input_activation, 1: config.input_activation},
                                outputs={0: None})              # no quantize inside the unit
            quantizer.set_specs(softmax, outputs={0: FixedQParamsQuantizationSpec(...)})
            return True

A pattern matches op identity and dataflow only, as the built-in ones do (`op.op_name` is the
ATen operator without its overload: `"bmm"`, `"softmax"`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from qir.dialects.aten import AtenOp
    from qir.quantizer.patterns import PatternQuantizer
    from qir.quantizer.spec import QuantizationConfig


class AnnotationPattern(ABC):
    """One unit of ops a backend's kernel runs, and the specs of its edges."""

    name: ClassVar[str]
    """Its name in the counts `annotate` reports and in `get_supported_operators()`; it may not
    be a built-in pattern's."""

    ops: ClassVar[frozenset[str]]
    """The ATen operators (without overload) it may annotate: `validate` refuses annotations on
    any other op."""

    optional: ClassVar[bool] = True
    """Whether the unit is dropped when nothing reads its output quantized (an int8 input
    quantized only to give a float result adds error for nothing, the rule the built-in
    patterns follow for everything but conv and linear). A unit whose kernel pays for itself
    with a float result (a bmm on int8 operands) says False."""

    @abstractmethod
    def annotate(self, quantizer: PatternQuantizer, op: AtenOp, config: QuantizationConfig) -> bool:
        """Annotate the unit that starts at `op` if it matches, and say whether it did.

        `op` is not annotated yet and `config` is the configuration that applies to it (never
        None); ops are visited in program order, so `op` is the first op of any unit it heads.
        Use `quantizer.set_specs` to annotate and `quantizer.fusable` / `quantizer.quantized` to
        look at the ops around it."""

    def __repr__(self) -> str:
        return f"<annotation pattern {self.name}>"
