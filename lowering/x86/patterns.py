"""What the x86 lowering does in Python rather than in rules."""

from __future__ import annotations

from xdsl.rewriter import InsertPoint
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from xdsl.dialects.builtin import StringAttr

from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.quant import StorageCastOp
from qir.dialects.ref import quantized
from qir.lowering.x86.dialect import FromStorageOp


class WrapQuantizedParams(RewritePattern):
    """Every quantized parameter read by an x86 op becomes a quantized tensor (`x86.from_storage`),
    so that in x86 IR every quantized value is one. Parameters only read as their storage
    (`quant.scast`, an i32 bias) stay as they are. A rule cannot say this: it matches ops by
    their operands, not by all the uses of a value."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ParamOp, rewriter: PatternRewriter) -> None:
        if quantized(op.result) is None or all(isinstance(u.operation, StorageCastOp | FromStorageOp)
                                               for u in op.result.uses):
            return
        wrapped = FromStorageOp.create(operands=[op.result], result_types=[op.result.type])
        wrapped.results[0].name_hint = f"{op.result.name_hint or 'p'}_qt"
        rewriter.insert(wrapped, InsertPoint.after(op))
        rewriter.replace_uses_with_if(op.result, wrapped.results[0], lambda use: use.operation is not wrapped
                                      and not isinstance(use.operation, StorageCastOp))


class ViewAsReshape(RewritePattern):
    """A `view` of a quantized tensor becomes a `reshape`: quantized convs leave channels-last
    tensors, which `view` refuses where the exported program's contiguous tensor was fine;
    `reshape` gives the same values, copying only when it must."""

    VIEWS = ("view.default", "_unsafe_view.default")

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter) -> None:
        if op.target.data in self.VIEWS and op.operands and quantized(op.operands[0]) is not None:
            op.properties["target"] = StringAttr("reshape.default")
            rewriter.handle_operation_modification(op)
