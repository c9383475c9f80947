"""The backend contract: what a lowering target hands qir, as one value.

A backend is a `Backend`, found by name through the `qir.backends` entry points
(`[project.entry-points."qir.backends"] NAME = "package:BACKEND"` in its own
package) or `qir.register_backend` in-process. Every part is given one way, as a
value; the backend itself is imported only when first used. It brings:

* `capabilities`: its capability table (`qir.lowering.table`), from which
  `reference-rewrite{backend=NAME}` learns what to produce and `quantizer()` what
  to annotate (its quantization config and annotation patterns included);
* `dialects`: its own small dialects of kernel ops (`Dialect` values, named as
  the author likes: a backend's name and its dialects' are not tied);
* `rules`: rule files of the declarative rule language (`qir.lowering.rules`),
  with the named Python `functions` they call, and `patterns`, xDSL rewrite
  patterns for what rules cannot say;
* `emission`: an `Emission` table, op name → how the op becomes torch calls, for
  the ops of its dialects;
* `quantizers`: the quantizers it names for `annotate{quantizer=...}` (factories
  of a `qir.Target`); by default one, named like the backend, its `quantizer()`;
* `finalize`: an optional last step on the emitted `fx.GraphModule`;
* `requires`: the stages its lowering takes; `leftovers`: which non-backend ops
  may remain after it.

Its lowering pass, `lower-NAME`, is made here, once per backend: it takes a
program at the `reference` stage (the output of `reference-rewrite{backend=NAME}`),
applies the patterns and then the rules to a fixed point, and checks that no op is
left which the backend cannot emit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Dialect, Operation
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriteWalker, RewritePattern

from qir.accumulation import may_saturate, qdq_may_saturate
from qir.context import params_of
from qir.dialects import ref
from qir.dialects.aten import AtenOp
from qir.emitter import Emission
from qir.errors import OpError
from qir.lowering.capabilities import Capabilities
from qir.pass_manager import QirPass, count
from qir.target import parse_target, pass_target, record_target

BACKEND_ATTR = "qir.backend"
"""The module attribute naming the backend a lowered program is for."""

REQUIRES_ATTR = "qir.requires"
"""The module attribute listing the CPU features a lowered program needs to compute what its
reference says (`avx512_vnni`); the emitter refuses to build it on a CPU without them."""

QuantizerFactory = Callable[[Any], Any]
"""`factory(target) -> Quantizer`: a new quantizer for a `qir.Target`."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True, eq=False)
class Backend:
    """A lowering target. Everything but `name`, `description` and `capabilities` is optional."""

    name: str
    """`lower-NAME`, `reference-rewrite{backend=NAME}`, `qir.lower(..., backend=NAME)`."""
    description: str
    capabilities: Capabilities
    dialects: Sequence[Dialect] = ()
    rules: Sequence[Path] = ()
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    """Python functions its rules call by name (beside `qir.lowering.rules.BUILTINS`)."""
    patterns: Sequence[RewritePattern] = ()
    """xDSL patterns run with its rules, for what rules cannot say."""
    emission: Emission = field(default_factory=Emission)
    quantizers: Mapping[str, QuantizerFactory] | None = None
    """Quantizers by the names `annotate{quantizer=NAME}` takes; None: `{name: self.quantizer}`."""
    finalize: Callable[[Any], Any] | None = None
    requires: tuple[str, ...] = ("reference",)
    """The stages its lowering takes (the inductor backend takes the Q/DQ form itself)."""
    leftovers: Callable[[Operation], bool] | None = None
    """Which ops may remain after lowering besides the backend's own (default: every op that is
    not a `ref` op: Q/DQ casts, float ATen, parameters)."""

    def __post_init__(self) -> None:
        """Everything is checked here, where the backend is built: a mistake is reported at its
        import, naming the backend, not at some later use."""
        def fail(message: str):
            raise TypeError(f"backend {self.name!r}: {message}")

        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"backend name {self.name!r}: letters, digits, '_' and '-' (it is part of a pass name)")
        if not isinstance(self.capabilities, Capabilities):
            fail("capabilities must be a capability table (qir.lowering.table(...))")
        dialects = tuple(self.dialects)
        for dialect in dialects:
            if not isinstance(dialect, Dialect):
                fail(f"dialects takes xDSL Dialect values, not {dialect!r}")
        if len({d.name for d in dialects}) < len(dialects):
            fail(f"two dialects named alike: {[d.name for d in dialects]}")
        patterns = tuple(self.patterns)
        for pattern in patterns:
            if not isinstance(pattern, RewritePattern):
                fail(f"patterns takes xDSL RewritePattern instances, not {pattern!r}")
        if not isinstance(self.emission, Emission):
            fail("emission must be a qir.lowering.Emission (Emission({op_name: rule}) for a plain mapping)")
        ops = {op.name for dialect in dialects for op in dialect.operations}
        foreign = sorted((set(self.emission) | set(self.emission.folds)) - ops)
        if foreign:
            fail(f"its emission names ops that none of its dialects defines: {foreign}")
        if self.quantizers is not None:
            for quantizer, factory in self.quantizers.items():
                if not isinstance(quantizer, str) or not _NAME.fullmatch(quantizer) or not callable(factory):
                    fail(f"quantizers maps names to factories (target -> Quantizer), not {quantizer!r}: {factory!r}")
        for name, value in (("dialects", dialects), ("rules", tuple(Path(r) for r in self.rules)),
                            ("patterns", patterns), ("requires", tuple(self.requires)),
                            ("functions", dict(self.functions))):
            object.__setattr__(self, name, value)

    # -- what the core asks of a backend ---------------------------------

    @cached_property
    def dialect_names(self) -> frozenset[str]:
        return frozenset(dialect.name for dialect in self.dialects)

    def accepts(self, op: Operation, target=None, params=None) -> bool:
        """Whether `reference-rewrite{backend=NAME}` may produce `op` (a `ref` op) for `target`
        (a `qir.target.Target`), its constants in the parameter store `params`."""
        return self.capabilities.accepts(op, target, params)

    def quantizer(self, target=None):
        """The quantizer matching this backend's kernels on `target` (the host by default): the
        one its capability table derives."""
        return self.capabilities.quantizer(target)

    def named_quantizers(self) -> dict[str, QuantizerFactory]:
        """The quantizers it names for `annotate{quantizer=NAME}`."""
        return dict(self.quantizers) if self.quantizers is not None else {self.name: self.quantizer}

    @cached_property
    def ruleset(self):
        """The backend's rule files, parsed and compiled once."""
        from qir.lowering.rules import RuleSet

        return RuleSet.combine(RuleSet.from_file(path, functions=dict(self.functions), dialects=list(self.dialects))
                               for path in self.rules)

    def lower_pass(self) -> type[QirPass]:
        """The `lower-NAME` pass class (one per backend)."""
        return self._lower_pass

    @cached_property
    def _lower_pass(self) -> type[QirPass]:
        words = re.split(r"[-_]", self.name)
        return dataclass(frozen=True)(type(f"Lower{''.join(w[:1].upper() + w[1:] for w in words)}", (LowerPass,), {
            "name": f"lower-{self.name}", "backend": self, "requires": self.requires,
            "__doc__": f"Lower to {self.description}.", "__module__": __name__,
        }))


@dataclass(frozen=True)
class LowerPass(QirPass):
    """Lowers `ref` ops (and what else its rules match) to one backend's kernels.

    Before: `ref.*` ops on quantized values, Q/DQ casts at the float boundaries.
    After: the backend's kernel ops; the module records `qir.backend = NAME`
    so the emitter and later tools know what the program runs on."""

    backend: ClassVar[Backend]
    leaves = "lowered"

    target: str = ""
    """The CPU to lower for (`qir.target`): the one the module records, else the host."""

    def __post_init__(self) -> None:
        if self.target:
            parse_target(self.target)  # a bad name is a bad option, refused before any pass runs

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        backend = self.backend
        target = pass_target(self.target, op)
        params = params_of(ctx)
        self._check_accepted(op, target, params)
        if "quantized" in backend.requires and target.pairs_saturate:
            self._run_saturating_in_float(op, params)
        needs = self._features_needed(op, target, params)
        patterns = list(backend.patterns)
        if backend.rules:
            for rule, n in sorted(backend.ruleset.apply(op, patterns, target=target).items()):
                count(ctx, rule, n)
        elif patterns:
            PatternRewriteWalker(GreedyRewritePatternApplier(patterns)).rewrite_module(op)
        self._check(op)
        op.attributes[BACKEND_ATTR] = StringAttr(backend.name)
        if backend.capabilities.int16_pairs:  # what its kernels compute depends on the target
            record_target(op, target)
        if needs:
            op.attributes[REQUIRES_ATTR] = StringAttr(",".join(sorted(needs)))
        else:
            op.attributes.pop(REQUIRES_ATTR, None)

    def _features_needed(self, module: ModuleOp, target, params) -> set[str]:
        """The target features without which this program would compute something else: AVX-512
        VNNI when a conv or linear it lowers has weights whose int16 pairs could saturate without
        it (on a target that lacks it, none is left: the table refused them)."""
        if not self.backend.capabilities.int16_pairs:
            return set()
        for op in module.walk():
            if ((isinstance(op, ref.ConvOp | ref.ConvAddOp | ref.LinearOp | ref.DynamicLinearOp)
                 and self.backend.accepts(op, target, params)
                 and may_saturate(op, params)) or (isinstance(op, AtenOp) and "quantized" in self.backend.requires
                                                   and qdq_may_saturate(op, params))):
                return {"avx512_vnni"}
        return set()

    def _run_saturating_in_float(self, module: ModuleOp, params) -> None:
        """A backend that takes the Q/DQ form as it is (inductor) cannot refuse an op: on a target
        whose int16 pairs saturate, a conv or linear whose weights could overflow gets them as
        the float constants they stand for, so it runs in float (`_run_in_float`)."""
        if not self.backend.capabilities.int16_pairs:
            return
        for op in list(module.walk()):
            if isinstance(op, AtenOp) and qdq_may_saturate(op, params):
                _run_in_float(op, params)

    def _check_accepted(self, module: ModuleOp, target, params) -> None:
        """Every `ref` op is one the capability table accepts (or one the backend may leave as it
        is): rules may count on what the table promises (`reference-rewrite{backend=NAME}` builds
        nothing else, but IR text can say anything)."""
        leftovers = self.backend.leftovers
        for op in module.walk():
            if (op.name.startswith("ref.") and not self.backend.accepts(op, target, params)
                    and not (leftovers is not None and leftovers(op))):
                where = f" on {target}" if self.backend.capabilities.int16_pairs and target.pairs_saturate else ""
                raise OpError(op, f"{self.backend.name!r} cannot run this op{where}: its capability table "
                                  f"refuses it (reference-rewrite{{backend={self.backend.name}}} leaves such ops in "
                                  "Q/DQ form)")

    def _check(self, module: ModuleOp) -> None:
        """Every `ref` op was lowered (the capability table promised it would be)."""
        allowed = self.backend.leftovers
        for op in module.walk():
            left = allowed(op) if allowed is not None else not op.name.startswith("ref.")
            if not left and op.name.split(".", 1)[0] not in self.backend.dialect_names:
                raise OpError(op, f"no rule of {self.backend.name!r} lowers this op, though its capability "
                                  "table accepts it")


def _run_in_float(op: Operation, params) -> None:
    """Give `op` its weight (operand 1, a dequantized integer constant) as the float constant it
    stands for, computed as the Q/DQ form dequantizes it: no int8 kernel can then be fused in."""
    import torch
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)
    from xdsl.rewriter import InsertPoint, Rewriter

    from qir.dialects.quant import UniformQuantizedPerAxisType
    from qir.params import new_param, param_tensor

    cast = op.operands[1].owner
    param = cast.input.owner
    qtype = ref.quantized(cast.input)
    storage = param_tensor(param, params)
    decomposed = torch.ops.quantized_decomposed
    if isinstance(qtype, UniformQuantizedPerAxisType):
        weight = decomposed.dequantize_per_channel.default(
            storage, torch.tensor(qtype.scales, dtype=torch.float32), torch.tensor(qtype.zero_points), qtype.axis,
            qtype.storage_min, qtype.storage_max, storage.dtype)
    else:
        weight = decomposed.dequantize_per_tensor.default(storage, qtype.scale, qtype.zero_point, qtype.storage_min,
                                                          qtype.storage_max, storage.dtype)
    constant = new_param(params, param.param_name.removesuffix("_q") + "_float", weight, param.kind.data)
    Rewriter.insert_op(constant, InsertPoint.before(op))
    op.operands[1] = constant.result
    if not cast.results[0].uses:
        Rewriter.erase_op(cast)
        if not param.result.uses:
            Rewriter.erase_op(param)
