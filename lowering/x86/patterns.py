"""What the x86 lowering does in Python rather than in rules."""

from __future__ import annotations

from xdsl.rewriter import InsertPoint
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from qir.dialects.aten import ParamOp
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
        rewriter.insert_op(wrapped, InsertPoint.after(op))
        rewriter.replace_uses_with_if(op.result, wrapped.results[0], lambda use: use.operation is not wrapped
                                      and not isinstance(use.operation, StorageCastOp))
