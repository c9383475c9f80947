"""What lowering to the quantized kernels does in Python rather than in rules."""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Dialect
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint

from qir.dialects import ref
from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.quant import StorageCastOp, UniformQuantizedSubChannelType
from qir.lowering.quantized_kernels import ops as k

# Ops that read a quantized weight as it is stored: nothing to wrap for them.
_STORAGE_READERS = (StorageCastOp, k.FromStorage, k.ConvPrepack, k.LinearPrepack)


class WrapQuantizedParams(RewritePattern):
    """Every quantized parameter read as a value becomes a quantized tensor (`from_storage`), so
    that in a quantized-kernel dialect every quantized value is one. Parameters read only as
    their storage (prepacked weights, `quant.scast` of an i32 bias, the weight operand of a
    `ref` conv or linear about to be prepacked) stay as they are. A rule cannot say this: it
    matches ops by their operands, not by all the uses of a value. A kernel op that packs a weight
    from its storage says so with a class constant `READS_STORAGE: ClassVar[bool] = True`.
    A sub-channel (group-wise) parameter stays too: torch has no quantized tensor with a table
    per block, no kernel of these dialects takes one, and its `quant.dcast` (a weight-only
    weight the backend leaves in the Q/DQ form) dequantizes it exactly as it is."""

    def __init__(self, dialect: Dialect):
        self.from_storage = next(op for op in dialect.operations if issubclass(op, k.FromStorage))

    @staticmethod
    def _reads_storage(use) -> bool:
        op = use.operation
        weight = getattr(op, "weight", None)
        return isinstance(op, _STORAGE_READERS) or getattr(op, "READS_STORAGE", False) or (
            isinstance(op, ref.ConvOp | ref.ConvAddOp | ref.LinearOp) and use.index == 1 and weight is not None) or (
            isinstance(op, ref.WeightOnlyLinearOp | ref.WeightOnlyEmbeddingOp) and use.operation.weight is use.value)

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ParamOp, rewriter: PatternRewriter) -> None:
        qtype = ref.quantized(op.result)
        if qtype is None or isinstance(qtype, UniformQuantizedSubChannelType) \
                or all(self._reads_storage(u) for u in op.result.uses):
            return
        wrapped = self.from_storage.create(operands=[op.result], result_types=[op.result.type])
        wrapped.results[0].name_hint = f"{op.result.name_hint or 'p'}_qt"
        rewriter.insert(wrapped, InsertPoint.after(op))
        rewriter.replace_uses_with_if(op.result, wrapped.results[0],
                                      lambda use: use.operation is not wrapped and not self._reads_storage(use))


class ViewAsReshape(RewritePattern):
    """A `view` of a quantized tensor becomes a `reshape`: quantized convs leave channels-last
    tensors, which `view` refuses where the exported program's contiguous tensor was fine;
    `reshape` gives the same values, copying only when it must."""

    VIEWS = ("view.default", "_unsafe_view.default")

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter) -> None:
        if op.target.data in self.VIEWS and op.operands and ref.quantized(op.operands[0]) is not None:
            op.properties["target"] = StringAttr("reshape.default")
            rewriter.handle_operation_modification(op)


def lowering_patterns(dialect: Dialect) -> list[RewritePattern]:
    """The Python patterns every quantized-kernel backend runs beside its rules (and the float
    attention fusion every native backend runs, `qir.lowering.attention`)."""
    from qir.lowering.attention import FuseAttention

    return [WrapQuantizedParams(dialect), ViewAsReshape(), FuseAttention()]
