"""What the onednn lowering does with xDSL patterns rather than rules."""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from qir.dialects.aten import AtenOp
from qir.dialects.ref import quantized


class ViewAsReshape(RewritePattern):
    """A `view` of quantized storage becomes a `reshape`: oneDNN's convs leave channels-last
    tensors, which `view` refuses where the exported program's contiguous tensor was fine;
    `reshape` gives the same values, copying only when it must. (One rule per view overload
    would say the same; a pattern edits the op in place and keeps its arguments as they are.)"""

    VIEWS = ("view.default", "_unsafe_view.default")

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter) -> None:
        if op.target.data in self.VIEWS and op.operands and quantized(op.operands[0]) is not None:
            op.properties["target"] = StringAttr("reshape.default")
            rewriter.handle_operation_modification(op)
