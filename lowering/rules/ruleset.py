"""`RuleSet`: the rules of one file, compiled once, indexed by root op.

A backend loads its rule file when its lowering pass first runs
(`RuleSet.from_file`, cached by path and modification time, so a pass run on
every model of a zoo parses its rules once) and applies it to a module
(`apply`), or hands its `patterns()` to an xDSL walker together with Python
patterns of its own, for what the rule language cannot say.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Dialect, Operation
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriteWalker,
    RewritePattern,
)

from qir.errors import OpError, QirError
from qir.gc_pause import paused_gc
from qir.lowering.rules.compiler import compile_source
from qir.lowering.rules.functions import function_table
from qir.lowering.rules.matcher import Rule, RuleGroup, RulePattern

_CACHE_SIZE = 64
_cache: OrderedDict[tuple, tuple[RuleSet, tuple, tuple]] = OrderedDict()
_cache_lock = threading.Lock()


def rules_context(ctx: Context | None = None, dialects: Iterable[Dialect] = (),
                  ops: Iterable[type[Operation]] = ()) -> Context:
    """The context rules are compiled in: qir's dialects (or a copy of `ctx`), plus a
    backend's own dialects and ops. The caller's context is never changed."""
    if ctx is None:
        from qir.context import QirContext, register_dialects

        ctx = QirContext()  # no parameter store: rules never read weights, and torch stays unloaded
        register_dialects(ctx)
    else:
        ctx = ctx.clone()
    for dialect in dialects:
        if dialect.name not in ctx.registered_dialect_names:
            ctx.register_dialect(dialect.name, lambda dialect=dialect: dialect)
    for op in ops:
        if ctx.get_optional_op(op.name) is None:
            ctx.load_op(op)
    return ctx


class RuleSet:
    """Compiled rules, indexed by root op name (an `aten.op` by its overload too).

    For one root, rules are tried by decreasing benefit, then in file order; the
    first that matches is applied."""

    def __init__(self, rules: Sequence[Rule], filename: str = "<rules>", dependencies: Sequence[Path] = ()):
        self.filename = filename
        self.dependencies: tuple[Path, ...] = tuple(dependencies)
        """The files the rules were read from besides `filename` (its includes)."""
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.uses_target = any(rule.uses_target for rule in self.rules)
        index: dict[str | tuple[str, str], list[Rule]] = {}
        for rule in self.rules:
            index.setdefault(rule.key, []).append(rule)
        self._index = {key: RuleGroup.of(sorted(group, key=lambda r: -r.benefit)) for key, group in index.items()}
        self._by_name = {rule.name: rule for rule in self.rules}

    # -- loading --

    @classmethod
    def from_text(cls, text: str, filename: str = "<rules>",
                  functions: Mapping[str, Callable[..., Any]] | None = None,
                  ctx: Context | None = None, *, dialects: Iterable[Dialect] = (),
                  ops: Iterable[type[Operation]] = (), verify: bool = False) -> "RuleSet":
        """Compile rule text; a `ParseFailure` (`filename:line:col: error: ...`) at the first error.

        `functions` adds (or overrides) functions by name; `dialects` and `ops` add a
        backend's own vocabulary to qir's (or to `ctx`'s). `verify` checks every op a
        rule builds as it is built, so that the error names the rule: worth it while
        writing rules, otherwise off, as in MLIR's pattern driver (the pass manager
        verifies the module after the pass, and checking every op twice costs a third
        of the lowering time)."""
        context = rules_context(ctx, dialects, ops)
        rules, dependencies = compile_source(text, filename, context, function_table(functions), verify)
        return cls(rules, filename, dependencies)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str],
                  functions: Mapping[str, Callable[..., Any]] | None = None,
                  ctx: Context | None = None, *, dialects: Iterable[Dialect] = (),
                  ops: Iterable[type[Operation]] = (), verify: bool = False) -> "RuleSet":
        """`from_text` of a file, compiled once per path, modification time, size and
        arguments, and those of the files it includes (the cache holds the last 64)."""
        path = Path(path).resolve()
        try:
            stat = path.stat()
        except OSError as err:
            raise QirError(f"cannot read rule file {path}: {err.strerror}") from None
        dialects, ops = tuple(dialects), tuple(ops)
        functions = dict(functions or {})
        key = (str(path), stat.st_mtime_ns, stat.st_size, id(ctx), tuple(map(id, dialects)),
               tuple(map(id, ops)), tuple(sorted((n, id(f)) for n, f in functions.items())), verify)
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None and _unchanged(hit[2]):
                _cache.move_to_end(key)
                return hit[0]
        text = path.read_text()
        ruleset = cls.from_text(text, str(path), functions, ctx, dialects=dialects, ops=ops, verify=verify)
        with _cache_lock:
            # The entry keeps what its key names by id alive, so that no id is reused meanwhile.
            _cache[key] = (ruleset, (ctx, dialects, ops, functions), _stamps(ruleset.dependencies))
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return ruleset

    @classmethod
    def combine(cls, rulesets: Iterable["RuleSet"]) -> "RuleSet":
        """One rule set of several (a backend's rules split over files); names must be unique."""
        rulesets = list(rulesets)
        rules: list[Rule] = []
        seen: dict[str, Rule] = {}
        for ruleset in rulesets:
            for rule in ruleset.rules:
                if rule.name in seen:
                    other = seen[rule.name]
                    raise QirError(f"{rule.filename}:{rule.line}:{rule.column}: error: rule {rule.name!r} "
                                   f"is already defined at {other.filename}:{other.line}:{other.column}")
                seen[rule.name] = rule
                rules.append(rule)
        combined = cls(rules, ", ".join(dict.fromkeys(r.filename for r in rules)))
        combined.dependencies = tuple(dict.fromkeys(d for ruleset in rulesets for d in ruleset.dependencies))
        return combined

    # -- looking at it --

    @property
    def names(self) -> list[str]:
        """The rule names, in file order."""
        return [rule.name for rule in self.rules]

    def __getitem__(self, name: str) -> Rule:
        return self._by_name[name]

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def rules_for(self, op_name: str, target: str | None = None) -> tuple[Rule, ...]:
        """The rules rooted at `op_name` (for `aten.op`, at overload `target`), in trial order.

        `rules_for('aten.op "gelu.default"')` names the overload as `Rule.root` prints it;
        `rules_for("aten.op")` gives every rule rooted at an ATen op."""
        if op_name.startswith('aten.op "') and op_name.endswith('"') and target is None:
            op_name, target = "aten.op", op_name[len('aten.op "'):-1]
        if op_name == "aten.op":
            if target is None:
                return tuple(r for key, group in self._index.items() if isinstance(key, tuple)
                             for r in group.rules)
            group = self._index.get((op_name, target))
        else:
            group = self._index.get(op_name)
        return group.rules if group is not None else ()

    @property
    def roots(self) -> list[str]:
        """Every root the rules match, as `describe_op` names ops."""
        return sorted({rule.root for rule in self.rules})

    def __repr__(self) -> str:
        return f"<RuleSet {self.filename}: {len(self.rules)} rules>"

    # -- applying it --

    def patterns(self, target=None) -> list[RewritePattern]:
        """xDSL patterns applying these rules (one pattern dispatching by root op), for `target`
        (a `qir.target.Target` or its name; None: the host) where a rule asks `target has F`.

        Walk them consumers first (`PatternRewriteWalker(..., walk_reverse=True)`, as
        `apply` does): a rule rooted at the end of a chain (`ref.linear` → ... →
        `quant.qcast`) must see the chain before a rule rooted inside it rewrites it.
        The returned pattern counts its rewrites in `patterns()[0].counts`."""
        return [RulePattern(self._index, target=_target(target))]

    def apply(self, module: ModuleOp | Operation, extra_patterns: Sequence[RewritePattern] = (),
              *, max_rewrites: int | None = None, target=None) -> Counter[str]:
        """Apply the rules to a fixed point; how often each rule applied.

        For each op the rules are tried first, then `extra_patterns` (Python patterns for
        what rules cannot say). `max_rewrites` (default: ten per op, at least 10000)
        stops rules that rewrite each other forever, with an `OpError` naming the
        busiest rule. `target` (a `qir.target.Target` or its name) is what `target has F`
        asks about; by default the target the module records, else the host."""
        if target is None and self.uses_target and isinstance(module, ModuleOp):
            from qir.target import recorded_target

            target = recorded_target(module)
        pattern = RulePattern(self._index, target=_target(target))
        if max_rewrites is None:
            max_rewrites = max(10_000, 10 * sum(1 for _ in module.walk()))
        applier = GreedyRewritePatternApplier([_Budget(pattern, max_rewrites), *extra_patterns], dce_enabled=False)
        walker = PatternRewriteWalker(applier, walk_reverse=True)
        try:
            with paused_gc():  # rewriting allocates far faster than it frees (see qir.gc_pause)
                if isinstance(module, ModuleOp):
                    walker.rewrite_module(module)
                else:
                    for region in module.regions:
                        walker.rewrite_region(region)
        except QirError as err:
            # xDSL's walker notes the whole module on the error; the error names the op already.
            if hasattr(err, "__notes__"):
                del err.__notes__
            raise
        return Counter(pattern.counts)


def _target(target):
    """A `Target` from a target or its name (None stays None: the host, asked for when needed)."""
    if target is None or not isinstance(target, str):
        return target
    from qir.target import parse_target

    return parse_target(target)


def _stamps(paths: Iterable[Path]) -> tuple[tuple[Path, int, int] | tuple[Path, None, None], ...]:
    """Modification time and size of each file (None if it is gone)."""
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append((path, stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((path, None, None))
    return tuple(stamps)


def _unchanged(stamps) -> bool:
    """Whether the files a cached rule set includes are as they were when it was compiled."""
    return _stamps(path for path, _, _ in stamps) == stamps


class _Budget(RewritePattern):
    """`RulePattern` with a limit on the number of rewrites (see `RuleSet.apply`)."""

    def __init__(self, pattern: RulePattern, limit: int):
        self.pattern = pattern
        self.limit = limit
        self.rewrites = 0

    def match_and_rewrite(self, op, rewriter, /) -> None:
        self.pattern.match_and_rewrite(op, rewriter)
        if rewriter.has_done_action:
            self.rewrites += 1
            if self.rewrites > self.limit:
                busiest, times = self.pattern.counts.most_common(1)[0]
                raise OpError(op, f"the rules do not terminate: {self.rewrites} rewrites, "
                                  f"rule {busiest} applied {times} times")
