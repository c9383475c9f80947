"""Dead-code removal shared by the passes that leave unused ops behind.

`canonicalize` removes what an export computes for nobody; `reference-rewrite` removes the float
ops and casts its rewrites leave unread. Both ask the same question, which `qir.aliasing` answers
(`removable`: the op computes its results and nothing else), so the rule lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.ir import Operation
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

from qir.aliasing import Mutations, removable
from qir.dialects.aten import ParamOp
from qir.pass_manager import count


@dataclass
class RemoveDeadOps(RewritePattern):
    """A pure op none of whose results is used goes (like xDSL's `RemoveUnusedOperations`), counted
    as `dead-code`. Run it walking in reverse, so a chain of dead ops goes in one walk."""

    ctx: Context
    mutations: Mutations

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /):
        if op.parent is None or any(r.uses for r in op.results) or not removable(op):
            return
        if isinstance(op, ParamOp) and op.param_name in self.mutations.updated_params:
            return  # the emitter writes `aten.param_update` into the buffer its `aten.param` names
        rewriter.erase(op)
        count(self.ctx, "dead-code")
