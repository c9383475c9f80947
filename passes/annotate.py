"""annotate: run a Quantizer over the program.

Before, ops carry no quantization attributes; after, the ops the quantizer
chose carry `qin`/`qout` lists of specs (see the `obs` dialect):

    %r = aten.op "relu.default"(%c) {qout = [#obs.spec<u8[0:255], affine, histogram>]} : ...

From `qir-opt` the quantizer is named (`annotate{quantizer=x86}`, or a backend's
own: `annotate{quantizer=onednn}`); from Python a Quantizer instance may be given
directly (`Annotate(quantizer=my_quantizer)`).

Recipes that mix quantizers are pipelines of annotate passes, as `ComposableQuantizer` is a
list: each annotates what the ones before left alone, and `modules` restricts a named
quantizer to the modules whose path matches a regular expression (what
`set_module_name_regex` does in Python; the pipeline syntax has no backslash escapes, so a
literal dot is `[.]`). MiniLM's mixed recipe as text:

    annotate{quantizer=dynamic modules=".*[.]intermediate[.]dense"},annotate{quantizer=x86},...

`smoothing` asks a named quantizer for SmoothQuant on its linears' inputs (`QuantizationConfig.
smoothing`; `smooth-quant` applies it after calibration):

    annotate{quantizer=x86 smoothing=0.5 modules=".*[.]intermediate[.]dense"},annotate{quantizer=x86}

The number of units annotated per pattern is reported, and a quantizer that
annotates nothing says so instead of leaving a silently float model. Custom modules
with a quantized replacement (`custom.call custom`) get their boundary annotated with
the activation specs the quantizer configures for them (`Quantizer.custom_module_config`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp

from qir.pass_manager import QirPass, count
from qir.program import Program


@dataclass(frozen=True)
class Annotate(QirPass):
    name = "annotate"
    requires = ("float", "annotated")
    leaves = "annotated"

    quantizer: str = "x86"
    """A quantizer's name, qir's own (`qir.quantizer.QUANTIZERS`) or one a backend names
    (`qir.registry.available_quantizers()` lists them), or (from Python) a Quantizer instance."""

    target: str = ""
    """The CPU the program is quantized for (`qir.target`; the host when empty), for a named
    quantizer whose specs depend on it. Recorded on the module as `qir.target`."""

    modules: str = ""
    """A regular expression: the named quantizer annotates only the ops under a module whose
    whole path matches it (`set_module_name_regex`); everything when empty."""

    smoothing: float | None = None
    """SmoothQuant's migration strength alpha in [0, 1] for the inputs of the named quantizer's
    linears (its global config's `smoothing`); none when unset."""

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
        if self.smoothing is not None and (isinstance(self.quantizer, Quantizer) or not 0.0 <= self.smoothing <= 1.0):
            raise ValueError("smoothing= is a migration strength in [0, 1] for a named quantizer (configure a "
                             "Quantizer instance's QuantizationConfig.smoothing instead)")
        if self.modules:
            if isinstance(self.quantizer, Quantizer):
                raise ValueError("modules= restricts a named quantizer; configure a Quantizer instance with "
                                 "set_module_name_regex instead")
            import re

            try:
                re.compile(self.modules)
            except re.error as err:
                raise ValueError(f"modules={self.modules!r} is not a regular expression: {err}") from None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        from qir.quantizer import ConfigurableQuantizer, Quantizer, quantizer_by_name
        from qir.quantizer.base import annotate_custom_modules, is_annotated, validate_owned
        from qir.errors import QirError
        from qir.target import parse_target, record_target

        if isinstance(self.quantizer, Quantizer):
            quantizer = self.quantizer
        else:
            quantizer = quantizer_by_name(self.quantizer, self.target or None)
            if self.smoothing is not None:
                config = getattr(quantizer, "global_config", None)
                try:
                    if config is None:
                        raise ValueError("it has no global config")
                    quantizer.set_global(replace(config, smoothing=self.smoothing))
                except ValueError as err:
                    raise QirError(f"annotate: quantizer {self.quantizer!r} cannot smooth: {err}") from None
            if self.modules:
                if not isinstance(quantizer, ConfigurableQuantizer):
                    raise QirError(f"annotate: modules= needs a quantizer configurable per module, and "
                                   f"{self.quantizer!r} is not")
                quantizer.set_module_name_regex(self.modules, quantizer.global_config).set_global(None)
        before = {o for o in op.walk() if is_annotated(o)}  # what an annotate pass before this one wrote
        for pattern, n in sorted(quantizer.annotate_module(op).items()):
            count(ctx, pattern, n)
        custom = annotate_custom_modules(quantizer, op)  # the boundaries of custom modules
        if custom:
            count(ctx, "custom modules", custom)
        # with nothing annotated before, every annotation is this quantizer's own: none to hide
        owned = {o for o in op.walk() if is_annotated(o)} - before if before else None
        validate_owned(quantizer, Program(op), owned)
        if self.target or getattr(quantizer, "int16_pairs", False):  # the specs depend on the target
            record_target(op, getattr(quantizer, "target", None) or parse_target(self.target))
