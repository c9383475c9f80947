"""annotate: run a Quantizer over the program.

Before, ops carry no quantization attributes; after, the ops the quantizer
chose carry `qin`/`qout` lists of specs (see the `obs` dialect):

    %r = aten.op "relu.default"(%c) {qout = [#obs.spec<u8[0:255], affine, histogram>]} : ...

From `qir-opt` the quantizer is named (`annotate{quantizer=x86}`, or a backend's
own: `annotate{quantizer=onednn}`); from Python a Quantizer instance may be given
directly (`Annotate(quantizer=my_quantizer)`).
The number of units annotated per pattern is reported, and a quantizer that
annotates nothing says so instead of leaving a silently float model. Custom modules
with a quantized replacement (`custom.call custom`) get their boundary annotated with
the activation specs the quantizer configures for them (`Quantizer.custom_module_config`).
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
    """A quantizer's name, qir's own (`qir.quantizer.QUANTIZERS`) or one a backend names
    (`qir.registry.available_quantizers()` lists them), or (from Python) a Quantizer instance."""

    target: str = ""
    """The CPU the program is quantized for (`qir.target`; the host when empty), for a named
    quantizer whose specs depend on it. Recorded on the module as `qir.target`."""

    def __post_init__(self) -> None:
        """An unknown quantizer or target name is a bad option, refused before any pass runs."""
        from qir.quantizer import QUANTIZERS, Quantizer
        from qir.registry import available_quantizers
        from qir.target import parse_target

        if (not isinstance(self.quantizer, Quantizer) and self.quantizer not in QUANTIZERS
                and self.quantizer not in available_quantizers()):
            raise ValueError(f"unknown quantizer {self.quantizer!r} (available: {', '.join(available_quantizers())})")
        if self.target:
            parse_target(self.target)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from qir.quantizer import Quantizer, quantizer_by_name
        from qir.quantizer.base import annotate_custom_modules
        from qir.target import parse_target, record_target

        if isinstance(self.quantizer, Quantizer):
            quantizer = self.quantizer
        else:
            quantizer = quantizer_by_name(self.quantizer, self.target or None)
        for pattern, n in sorted(quantizer.annotate_module(op).items()):
            count(ctx, pattern, n)
        custom = annotate_custom_modules(quantizer, op)  # the boundaries of custom modules
        if custom:
            count(ctx, "custom modules", custom)
        quantizer.validate(Program(op))
        if self.target or getattr(quantizer, "int16_pairs", False):  # the specs depend on the target
            record_target(op, getattr(quantizer, "target", None) or parse_target(self.target))
