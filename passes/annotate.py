"""annotate: run a Quantizer over the program.

Before, ops carry no quantization attributes; after, the ops the quantizer
chose carry `qin`/`qout` lists of specs (see the `obs` dialect):

    %r = aten.op "relu.default"(%c) {qout = [#obs.spec<u8[0:255], affine, histogram>]} : ...

From `qir-opt` the quantizer is named (`annotate{quantizer=x86}`); from Python
a Quantizer instance may be given directly (`Annotate(quantizer=my_quantizer)`).
The number of units annotated per pattern is reported, and a quantizer that
annotates nothing says so instead of leaving a silently float model.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp

from qir.pass_manager import QirPass, count
from qir.program import Program


@dataclass(frozen=True)
class Annotate(QirPass):
    name = "annotate"
    requires = ("float",)
    leaves = "annotated"

    quantizer: str = "x86"
    """A name from `qir.quantizer.QUANTIZERS`, or (from Python) a Quantizer instance."""

    def __post_init__(self) -> None:
        """An unknown quantizer name is a bad option, refused before any pass runs."""
        from qir.quantizer import QUANTIZERS, Quantizer

        if not isinstance(self.quantizer, Quantizer) and self.quantizer not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {self.quantizer!r} (available: {', '.join(QUANTIZERS)})")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from qir.quantizer import Quantizer, quantizer_by_name

        quantizer = self.quantizer if isinstance(self.quantizer, Quantizer) else quantizer_by_name(self.quantizer)
        for pattern, n in sorted(quantizer.annotate_module(op).items()):
            count(ctx, pattern, n)
        quantizer.validate(Program(op))
