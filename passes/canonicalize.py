"""`canonicalize`: remove what the export left that computes nothing.

A graph from `torch.export` carries ops that are there for Python's sake, not
for the model's arithmetic: eval-mode dropout, `clone`s and `detach`es,
`to(float32)` of a float32 tensor, reshapes to the shape the tensor already
has, `unsqueeze` undone by `squeeze`, ops whose result nobody reads. Every later
stage matches patterns on dataflow (conv → bn → relu, linear → add), so each of
these hides a fusion or costs an observer and a quantize/dequantize pair. Before:

    %w  = aten.param parameter "fc.weight" : tensor<4x4xf32>
    %y  = aten.op "linear.default"(%x, %w, none) : (...) -> tensor<2x4xf32>
    %d  = aten.op "dropout.default"(%y, 0.5, false) : (...) -> tensor<2x4xf32>
    %c  = aten.op "clone.default"(%d) : (...) -> tensor<2x4xf32>
    %v  = aten.op "view.default"(%c, [2, 4]) : (...) -> tensor<2x4xf32>
    %r  = aten.op "relu.default"(%v) : (...) -> tensor<2x4xf32>
    %u  = aten.op "sigmoid.default"(%y) : (...) -> tensor<2x4xf32>
    func.return %r : tensor<2x4xf32>

After:

    %w  = aten.param parameter "fc.weight" : tensor<4x4xf32>
    %y  = aten.op "linear.default"(%x, %w, none) : (...) -> tensor<2x4xf32>
    %r  = aten.op "relu.default"(%y) : (...) -> tensor<2x4xf32>
    func.return %r : tensor<2x4xf32>

Two kinds of removal, counted as `no-op` and `dead-code`, and one normal form:

* **no-op**: an op whose result *is* its operand. Either by definition
  (`detach`, `alias`, eval or p = 0 dropout, `to`/`type_as` to the dtype the
  tensor has, `clone`/`_to_copy`/`lift_fresh_copy` that copy a tensor nobody
  writes to), or because its static result type equals its operand's
  (`view`/`reshape`/`expand`/`flatten`/`squeeze` to the same shape, the
  identity `permute`, `t` of a 1-D tensor), or because it undoes the view
  before it (`squeeze(unsqueeze(x))`, `t(t(x))`, a permutation and its
  inverse); and a `view` of a `view` becomes one `view`.
* **dead-code**: ops that compute their results and nothing else
  (`qir.aliasing.removable`) whose results are all unused, iterated to a fixed point.
* **batched**: a convolution of an unbatched input (`conv2d` of a `C x H x W`
  tensor) becomes `unsqueeze(0)`, the convolution of a batch of one, `squeeze(0)`,
  so that quantizers, `reference-rewrite` and every backend's kernels only ever
  see batched convolutions.

The same computation written twice (`x.relu() + x.relu()`) is `cse`'s, as in MLIR:
pipelines run `canonicalize,cse`.

Numerics never change: no rewrite changes a value, a dtype or which random
numbers are drawn. Ops with effects stay: training-mode dropout and other
random ops, in-place ops, training-mode `batch_norm` (it updates its running
statistics though its schema does not say so), `aten.param_update`, runtime
asserts (`_assert_*`, `sym_constrain_range*`, `_print`). The IR has no strides, so
a copy is only removed where that cannot change the layout a later `view`
sees: `clone` of a possibly non-dense tensor (an `expand`, a `slice`) stays,
and `contiguous` stays unless its operand is already contiguous. A copy
whose source or result is written in place (or by `aten.param_update`) stays
too (`qir.aliasing.Mutations`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, OpResult, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from qir.aliasing import Mutations, alias_source
from qir.dead_code import RemoveDeadOps
from qir.dialects.aten import AtenOp, LayoutAttr, MemoryFormatAttr
from qir.op_families import CONV, CONV_TRANSPOSE
from qir.pass_manager import QirPass, count
from qir.program import STAGES

# --------------------------------------------------------------------------
# Shapes and layouts.
# --------------------------------------------------------------------------


def _static(type_: object) -> bool:
    return isinstance(type_, TensorType) and all(d >= 0 for d in type_.get_shape())


def _rank(type_: object) -> int | None:
    return len(type_.get_shape()) if isinstance(type_, TensorType) else None


_DENSE_VIEWS = {"view", "_unsafe_view", "reshape", "flatten", "squeeze", "unsqueeze", "permute",
                "transpose", "t", "alias", "detach", "to", "type_as", "contiguous", "clone",
                "_to_copy", "expand_as", "view_as", "reshape_as"}
"""Views (and maybe-views) of a dense, non-overlapping tensor that are dense and non-overlapping again."""

_CONTIGUOUS_VIEWS = {"view", "_unsafe_view", "reshape", "flatten", "squeeze", "unsqueeze", "alias",
                     "detach", "to", "type_as"}
"""Views (and maybe-views) of a contiguous tensor that are contiguous again."""


def _dense(value: SSAValue) -> bool:
    """Whether `value` is known to be dense (no gaps, no broadcast), so a preserve-format copy keeps its strides."""
    while (source := alias_source(value)) is not None:
        op = value.owner
        assert isinstance(op, AtenOp)
        if op.op_name not in _DENSE_VIEWS:
            return False  # slice, select, expand, as_strided, diagonal, unfold, ...
        value = source
    # Fresh tensors are dense, but `empty_strided` may not be; inputs are taken as dense.
    return not (isinstance(value.owner, AtenOp) and "strided" in value.owner.op_name)


def _contiguous(value: SSAValue) -> bool:
    """Whether `value` is known to be contiguous: made so by `contiguous`/`clone`, through views that keep it."""
    while True:
        op = value.owner
        if not isinstance(op, AtenOp):
            return False
        if _makes_contiguous(op):
            return True
        source = alias_source(value)
        if source is None or op.op_name not in _CONTIGUOUS_VIEWS:
            return False
        value = source


def _memory_format(op: AtenOp) -> str | None:
    fmt = op.arg("memory_format")
    return fmt.value.data if isinstance(fmt, MemoryFormatAttr) else fmt


def _makes_contiguous(op: AtenOp) -> bool:
    fmt = _memory_format(op)
    return (op.target.data == "contiguous.default" and fmt in (None, "contiguous_format")
            or op.target.data == "clone.default" and fmt == "contiguous_format")


# --------------------------------------------------------------------------
# Patterns.
# --------------------------------------------------------------------------


def _fold(op: Operation, value: SSAValue, rewriter: PatternRewriter, ctx: Context) -> bool:
    """Replace the single result of `op` by `value` (of the very same type) and erase `op`."""
    if len(op.results) != 1 or op.results[0].type != value.type:
        return False
    rewriter.replace(op, [], [value])
    count(ctx, "no-op")
    return True


_ALIAS_IDENTITIES = {"detach.default", "alias.default"}
_DROPOUTS = {"dropout.default", "feature_dropout.default", "alpha_dropout.default",
             "feature_alpha_dropout.default"}
_COPIES = {"clone.default", "_to_copy.default", "lift_fresh_copy.default"}
_CONVERSIONS = {"to.dtype", "to.dtype_layout", "type_as.default"}
_IDENTITY_CANDIDATES = _ALIAS_IDENTITIES | _DROPOUTS | _COPIES | _CONVERSIONS | {"contiguous.default"}


@dataclass
class FoldIdentities(RewritePattern):
    """Ops that return their input by definition: `detach`, `alias`, eval or p = 0 dropout,
    `to`/`type_as` to the tensor's own type, and copies whose copying nobody can observe."""

    ctx: Context
    mutations: Mutations
    keep_detach: bool = False

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        target = op.target.data
        if target not in _IDENTITY_CANDIDATES or not op.operands or len(op.results) != 1:
            return
        source = op.arg(0)
        if not isinstance(source, SSAValue) or source.type != op.results[0].type:
            return
        if target in _ALIAS_IDENTITIES:
            if not (self.keep_detach and target == "detach.default"):
                _fold(op, source, rewriter, self.ctx)
        elif target in _DROPOUTS:
            # torch returns the input itself, drawing no random numbers.
            if op.arg("train") is False or op.arg("p") == 0:
                _fold(op, source, rewriter, self.ctx)
        elif target in _CONVERSIONS:
            if self._plain_conversion(op):
                if op.arg("copy", False) and not self._copy_unobservable(op, source):
                    return
                _fold(op, source, rewriter, self.ctx)
        elif target in _COPIES:
            if self._plain_conversion(op) and self._copy_unobservable(op, source):
                _fold(op, source, rewriter, self.ctx)
        elif target == "contiguous.default":
            if _memory_format(op) in (None, "contiguous_format") and _contiguous(source):
                _fold(op, source, rewriter, self.ctx)

    @staticmethod
    def _plain_conversion(op: AtenOp) -> bool:
        """No argument asks for anything but the dtype the result type already says."""
        layout = op.arg("layout")
        return (
            _memory_format(op) in (None, "preserve_format")
            and op.arg("device") is None
            and op.arg("pin_memory") in (None, False)
            and (layout is None or isinstance(layout, LayoutAttr) and layout.value.data == "strided")
        )

    def _copy_unobservable(self, op: AtenOp, source: SSAValue) -> bool:
        """Whether returning `source` itself instead of a copy is invisible: same strides, no writes."""
        return (_dense(source) and not self.mutations.written(source)
                and not self.mutations.written(op.results[0]))


_SAME_SHAPE_VIEWS = {"view.default", "reshape.default", "_unsafe_view.default", "expand.default",
                     "flatten.using_ints", "squeeze.default", "squeeze.dim", "squeeze.dims",
                     "unflatten.int", "expand_as.default", "view_as.default", "reshape_as.default"}
_PERMUTATIONS = {"t.default", "transpose.int", "permute.default"}
"""The targets `_permutation` knows."""


@dataclass
class FoldSameShapeViews(RewritePattern):
    """A view or reshape to the (static) shape its operand already has is its operand;
    so are the identity `permute`, `transpose(x, d, d)` and `t` of a tensor of rank < 2."""

    ctx: Context

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        target = op.target.data
        if target not in _SAME_SHAPE_VIEWS and target not in _PERMUTATIONS \
                or len(op.results) != 1 or not op.operands:
            return
        source = op.arg(0)
        if not isinstance(source, SSAValue):
            return
        if target in _SAME_SHAPE_VIEWS:
            if _static(op.results[0].type):
                _fold(op, source, rewriter, self.ctx)
            return
        rank = _rank(source.type)
        perm = _permutation(op, rank)
        if perm is not None and perm == list(range(len(perm))):
            _fold(op, source, rewriter, self.ctx)


def _permutation(op: Operation, rank: int | None) -> list[int] | None:
    """The permutation of dimensions a `permute`/`transpose`/`t` applies, or None."""
    if not isinstance(op, AtenOp) or rank is None:
        return None
    target = op.target.data
    dims = list(range(rank))
    if target == "t.default":
        return dims[::-1] if rank == 2 else dims
    if target == "transpose.int":
        a, b = op.arg("dim0"), op.arg("dim1")
        if not isinstance(a, int) or not isinstance(b, int) or rank == 0:
            return None
        a, b = a % rank, b % rank
        dims[a], dims[b] = dims[b], dims[a]
        return dims
    if target == "permute.default":
        given = op.arg("dims")
        if not isinstance(given, list) or len(given) != rank or not all(isinstance(d, int) for d in given):
            return None
        return [d % rank for d in given] if rank else []
    return None


_ORDER_VIEWS = {"view.default", "_unsafe_view.default", "squeeze.default", "squeeze.dim",
                "squeeze.dims", "unsqueeze.default"}
"""True views (never copies) that keep the elements in row-major order: chains of them compose."""


@dataclass
class FoldViewChains(RewritePattern):
    """Views that undo views: `squeeze(unsqueeze(x))` and `view(view(x))` back to `x`'s shape are `x`;
    a permutation followed by its inverse is `x`; `view(view(x, s1), s2)` is `view(x, s2)`."""

    ctx: Context

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        target = op.target.data
        if target not in _ORDER_VIEWS and target not in _PERMUTATIONS or len(op.results) != 1 or not op.operands:
            return
        result = op.results[0]
        if target in _ORDER_VIEWS and _static(result.type):
            # The farthest value up the chain of order-keeping views with this very type.
            found, value = None, op.arg(0)
            while isinstance(value, OpResult) and isinstance(value.owner, AtenOp) \
                    and value.owner.target.data in _ORDER_VIEWS:
                value = value.owner.arg(0)
                if isinstance(value, SSAValue) and value.type == result.type:
                    found = value
            if found is not None:
                _fold(op, found, rewriter, self.ctx)
                return
        if target == "view.default":
            inner = op.arg(0)
            if isinstance(inner, OpResult) and isinstance(inner.owner, AtenOp) \
                    and inner.owner.target.data == "view.default":
                operands = list(op.operands)
                operands[0] = inner.owner.operands[0]  # `self` is operand 0 in both
                new = AtenOp.create(operands=operands, result_types=[result.type],
                                    properties=dict(op.properties), attributes=dict(op.attributes))
                new.location = op.location
                rewriter.replace(op, new)
                count(self.ctx, "no-op")
            return
        source = op.arg(0)
        if not isinstance(source, OpResult) or not isinstance(source.owner, AtenOp):
            return
        outer = _permutation(op, _rank(result.type))
        inner_op = source.owner
        original = inner_op.arg(0)
        if outer is None or not isinstance(original, SSAValue):
            return
        inner = _permutation(inner_op, _rank(original.type))
        if inner is not None and len(inner) == len(outer) and all(inner[outer[i]] == i for i in range(len(outer))):
            _fold(op, original, rewriter, self.ctx)


@dataclass
class BatchUnbatchedConvs(RewritePattern):
    """A convolution of an unbatched input (`conv2d` of a `C x H x W` tensor, which torch
    accepts) is the convolution of a batch of one: `unsqueeze(0)` before, `squeeze(0)` after.
    Every later stage, and every backend's kernels, then see convolutions of batched inputs."""

    ctx: Context

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if op.op_name not in CONV | CONV_TRANSPOSE or len(op.results) != 1 or len(op.operands) < 2:
            return
        x, w, result = op.operands[0], op.operands[1], op.results[0]
        if op.arg(0) is not x or op.arg(1) is not w:
            return
        x_rank, w_rank = _rank(x.type), _rank(w.type)
        if x_rank is None or w_rank is None or x_rank != w_rank - 1 or _rank(result.type) != x_rank:
            return
        provenance = {k: v for k, v in op.attributes.items() if k in AtenOp.PROVENANCE}
        hint = result.name_hint or "conv"
        up = AtenOp("unsqueeze.default", [x, 0], None,
                    [TensorType(x.type.element_type, [1, *x.type.get_shape()])], provenance)
        conv = AtenOp.create(operands=[up.results[0], *op.operands[1:]],
                             result_types=[TensorType(result.type.element_type, [1, *result.type.get_shape()])],
                             properties=dict(op.properties), attributes=dict(op.attributes))
        down = AtenOp("squeeze.dim", [conv.results[0], 0], None, [result.type], provenance)
        for new, name in ((up, f"{hint}_batched"), (conv, f"{hint}_1"), (down, hint)):
            new.location = op.location
            new.results[0].name_hint = name
        rewriter.replace(op, [up, conv, down], [down.results[0]])
        count(self.ctx, "batched")


# --------------------------------------------------------------------------
# The pass.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Canonicalize(QirPass):
    """Removes no-op views and copies, eval dropout and dead pure ops; batches the
    convolutions of unbatched inputs.

    See the module docstring for the IR before and after. `keep-detach` keeps
    `detach` ops: they are identities in value, but stop gradients in a model
    that will be trained (QAT).
    """

    name = "canonicalize"

    requires: ClassVar[tuple[str, ...]] = STAGES
    leaves: ClassVar[str | None] = None

    keep_detach: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        mutations = Mutations.of(op)
        walker = PatternRewriteWalker(
            GreedyRewritePatternApplier(
                [
                    RemoveDeadOps(ctx, mutations),
                    FoldIdentities(ctx, mutations, self.keep_detach),
                    FoldSameShapeViews(ctx),
                    FoldViewChains(ctx),
                    BatchUnbatchedConvs(ctx),
                ]
            ),
            walk_reverse=True,
        )
        walker.rewrite_module(op)

