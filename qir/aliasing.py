"""Which tensors share memory, which ones some op writes in place, which ops only compute.

A pass that removes, merges, reorders or folds ops must know whether the value it
touches can change under it. `torch.export` graphs are mostly functional, but not
always: a model exported in training mode writes its buffers back
(`aten.param_update`), an in-place op (`add_`, `relu_`) writes its first argument and
every view of it, and a training-mode `batch_norm` updates its running statistics
although its schema does not say so. This module answers, from each operator's own
torch schema (its alias annotations: `Tensor(a)` returns share `a`'s memory,
`Tensor(a!)` arguments are written):

* `alias_source(v)` / `storage_root(v)`: the tensor a view `v` may share memory with,
  and the fresh tensor at the end of that chain;
* `written_values(op)`: the operands `op` may write in place (all of them when torch
  does not know the op, none for `aten.param`);
* `Mutations.of(module)`: every storage root some op writes, so `written(v)` says
  whether `v`'s memory may change while the program runs;
* `removable(op)`: whether `op` computes its results and nothing else, so an unused
  one may go and two identical ones may be one.

`canonicalize` (dead code, copies nobody can observe), `cse` (duplicates),
`normalize-linear`, `fold-constants` and `fold-bn` (what is a constant) and
`reference-rewrite` (dead casts, through `qir.dead_code`) ask it; one analysis, so
that they agree on what is safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, OpResult, SSAValue
from xdsl.irdl import IRDLOperation
from xdsl.traits import (IsTerminator, MemoryEffect, MemoryEffectKind, NoMemoryEffect, SymbolOpInterface,
                         get_effects)
from xdsl.transforms.dead_code_elimination import would_be_trivially_dead

from qir.dialects.aten import AtenOp, ParamOp, ParamUpdateOp, is_pure, resolve_overload

_RUNTIME_CHECKS = ("_assert_", "_functional_assert_", "sym_constrain_range",
                   "_functional_sym_constrain_range", "_print")
"""Ops that exist for their check or output: `is_pure` calls them pure, they stay."""


_HIDDEN_WRITES = {"batch_norm": "training", "native_batch_norm": "training",
                  "_batch_norm_impl_index": "training", "cudnn_batch_norm": "training",
                  "miopen_batch_norm": "training", "instance_norm": "use_input_stats"}
"""Ops that update `running_mean`/`running_var` in place when the flag is set, though their
schemas do not mark them written (`Tensor? running_mean`, not `Tensor(a!)`): the
training-mode BatchNorm of a `torch.export` graph is `batch_norm.default(..., True, ...)`."""


def _is_check(op: AtenOp) -> bool:
    return op.op_name.startswith(_RUNTIME_CHECKS)


def _hidden_writes(op: AtenOp) -> list[SSAValue]:
    flag = _HIDDEN_WRITES.get(op.op_name)
    if flag is None or op.arg(flag) is False:
        return []
    return [v for name in ("running_mean", "running_var") if isinstance(v := op.arg(name), SSAValue)]


def removable(op: Operation) -> bool:
    """Whether `op` computes its results and nothing else (so an unused or duplicate one may go)."""
    if isinstance(op, ParamOp):
        return True
    if isinstance(op, AtenOp):
        return bool(op.results) and is_pure(op) and not _is_check(op) and not _hidden_writes(op)
    if isinstance(op, ParamUpdateOp) or op.regions:
        return False
    if _dead_when_unused(type(op)):
        return bool(op.results)
    return bool(op.results) and would_be_trivially_dead(op)


@dataclass(frozen=True)
class _Aliasing:
    """Per overload, from its torch schema: which results alias which argument, which arguments it writes."""

    result_sources: tuple[str | None, ...]
    written: tuple[str, ...] | None
    """Names of the arguments written to; None when the schema is unknown."""


@cache
def _aliasing(target: str) -> _Aliasing:
    if target.startswith("py::"):
        return _Aliasing((), ())
    overload = resolve_overload(target)
    if overload is None:
        return _Aliasing((), None)
    schema = overload._schema
    sources: list[str | None] = []
    for r in schema.returns:
        info = r.alias_info
        source = None
        if info is not None:
            source = next((a.name for a in schema.arguments
                           if a.alias_info is not None and a.alias_info.before_set & info.before_set), None)
        sources.append(source)
    written = tuple(a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write)
    return _Aliasing(tuple(sources), written)


def _writes_nothing(op: AtenOp) -> bool:
    """Whether `op` writes no operand, by its schema, without looking at its arguments."""
    return _aliasing(op.target.data).written == () and op.op_name not in _HIDDEN_WRITES


@cache
def _declared_effect_free(cls: type[Operation]) -> bool:
    """Whether every op of class `cls` writes nothing by its definition: it has no regions, and
    its memory-effect traits all declare none (`NoMemoryEffect`, `Pure`). xDSL's traits belong to
    the class, so `get_effects` gives each such op the empty set."""
    if not issubclass(cls, IRDLOperation):
        return False
    op_def = cls.get_irdl_definition()
    effects = [trait for trait in op_def.traits if isinstance(trait, MemoryEffect)]
    declares_none = NoMemoryEffect.get_effects.__func__
    return not op_def.regions and bool(effects) and all(
        isinstance(trait, NoMemoryEffect) and type(trait).get_effects.__func__ is declares_none for trait in effects)


@cache
def _dead_when_unused(cls: type[Operation]) -> bool:
    """`would_be_trivially_dead` for every op of class `cls`, from its definition alone: it
    declares no memory effects and is neither a terminator nor a symbol."""
    return _declared_effect_free(cls) and not any(
        isinstance(trait, IsTerminator | SymbolOpInterface) for trait in cls.get_irdl_definition().traits)


def _values(arg: object) -> Iterator[SSAValue]:
    if isinstance(arg, SSAValue):
        yield arg
    elif isinstance(arg, list):
        for item in arg:
            yield from _values(item)


def alias_source(value: SSAValue) -> SSAValue | None:
    """The operand `value` may be a view of (per the op's schema), or None for a fresh tensor."""
    op = value.owner
    if not isinstance(op, AtenOp) or not isinstance(value, OpResult):
        return None
    sources = _aliasing(op.target.data).result_sources
    index = min(value.index, len(sources) - 1) if sources else None  # `Tensor(a)[]` returns
    name = sources[index] if index is not None else None
    source = op.arg(name) if name is not None else None
    return source if isinstance(source, SSAValue) else None


def storage_root(value: SSAValue) -> SSAValue:
    """The fresh tensor whose memory `value` may share (itself when it is fresh)."""
    while (source := alias_source(value)) is not None:
        value = source
    return value


def written_values(op: Operation) -> Iterator[SSAValue]:
    """The operands `op` may write to in place."""
    if isinstance(op, AtenOp):
        written = _aliasing(op.target.data).written
        if written is None:
            yield from op.operands
        for name in written or ():
            yield from _values(op.arg(name))
        yield from _hidden_writes(op)
    elif isinstance(op, ParamOp | ParamUpdateOp) or op.has_trait(IsTerminator):
        return
    else:
        effects = get_effects(op)
        if effects is None or any(e.kind == MemoryEffectKind.WRITE for e in effects):
            yield from op.operands


@dataclass
class Mutations:
    """The tensors some op writes to in place: those may not be merged, nor lose a copy, nor be
    taken for constants.

    Tracked by storage root (the fresh tensor a view shares memory with). A
    functional graph from `torch.export` usually has none; training-mode
    buffers written back by `aten.param_update` are the common case. Computed
    once per pass: ops a pass adds later are taken to write nothing."""

    roots: set[SSAValue] = field(default_factory=set[SSAValue])
    updated_params: set[str] = field(default_factory=set[str])
    """The names of the parameters some `aten.param_update` writes."""

    @classmethod
    def of(cls, module: ModuleOp) -> Mutations:
        found = cls()
        params: list[ParamOp] = []
        for op in module.walk():
            if isinstance(op, AtenOp) and _writes_nothing(op):
                continue  # nearly every op: a pass runs this on every op of the program
            if isinstance(op, ParamOp):
                params.append(op)
                continue
            if isinstance(op, ParamUpdateOp):
                found.updated_params.add(op.sym.data)
            elif _declared_effect_free(type(op)):
                continue  # the Q/DQ casts and ref/kernel ops: a class lookup, not a trait query per op
            for value in written_values(op):
                found.roots.add(storage_root(value))
        for op in params:
            if op.param_name in found.updated_params:
                found.roots.add(op.result)
        return found

    def written(self, value: SSAValue) -> bool:
        """Whether the memory of `value` (or of the tensor it is a view of) may be written."""
        return bool(self.roots) and storage_root(value) in self.roots
