"""Float attention as one `qir::attention` call, for the native backends.

The X86 recipe leaves a transformer's attention in float (its matmuls read float Q, K and V
from float-output linears), and eager attention is six ops with two copies
(`matmul(q, k.transpose(-2, -1))`, a scale, a mask add, a softmax, a matmul with v, and the
contiguous copies `matmul` makes of its transposed operands): on all-MiniLM-L6-v2 at 16 x 32
tokens, 0.9-1.1 ms of a layer's 4-5 ms once its linears are int8. torch's fused CPU kernel
computes the same thing in one pass, and is the faster at one thread and on long sequences;
on short ones with two threads or more the eager chain is (`qir.torch_ops`; `bench/attention.py`
measures both). The chain becomes one call of qir's operator, which runs whichever of the two is the
faster for the call's size and thread count:

    %kt = aten.op "transpose.int"(%k, 2, 3)
    %s  = aten.op "matmul.default"(%q, %kt)
    %m  = aten.op "mul.Tensor"(%s, 0.17677669)       (or div.Tensor by sqrt(d); optional)
    %a  = aten.op "add.Tensor"(%m, %mask)             (optional)
    %p  = aten.op "softmax.int"(%a, -1)
    %o  = aten.op "matmul.default"(%p, %v)
  ->
    %o  = aten.op "qir::attention.default"(%q, %k, %v, %mask, 0.17677669)

Float arithmetic only: the result differs from the unfused chain by float rounding (the
softmax is computed online), never by a quantization step. Only the exact chain is taken:
float32 4-D operands with the same batch and head dimensions, a softmax over the last dimension
without a dtype change, and intermediates nobody else reads (attention probabilities that a
model returns keep the eager chain).
"""

from __future__ import annotations

from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from qir.dialects.aten import AtenOp
from qir.dialects.ref import quantized

_SOFTMAX = ("softmax.int", "_softmax.default")


def _only_use(value: SSAValue, targets: tuple[str, ...]) -> AtenOp | None:
    """The aten op of one of `targets` producing `value`, if `value` has no other reader."""
    owner = value.owner
    if isinstance(owner, AtenOp) and owner.target.data in targets and value.has_one_use():
        return owner
    return None


def _shape(value: SSAValue) -> tuple[int, ...] | None:
    shape = getattr(value.type, "get_shape", None)
    if shape is None or quantized(value) is not None or str(value.type.element_type) != "f32":
        return None
    return tuple(shape())


def _last_dim(dim, rank: int) -> bool:
    return isinstance(dim, int) and dim % rank == rank - 1


def _transposed_key(value: SSAValue) -> SSAValue | None:
    """`k` when `value` is `k.transpose(-2, -1)` of a 4-D `k`."""
    owner = value.owner
    if not isinstance(owner, AtenOp) or owner.target.data != "transpose.int":
        return None
    dims = {owner.arg(1), owner.arg(2)}
    if not all(isinstance(d, int) for d in dims) or {d % 4 for d in dims} != {2, 3}:
        return None
    return owner.operands[0]


def _scale(op: Operation | None) -> tuple[SSAValue, float] | None:
    """(scores, factor) for a `mul`/`div` of the scores by a Python number."""
    if op is None or len(op.operands) != 1:
        return None
    factor = op.arg(1)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or factor == 0:
        return None
    return op.operands[0], float(factor) if op.target.data == "mul.Tensor" else 1.0 / float(factor)


class FuseAttention(RewritePattern):
    """`softmax(q @ k^T * scale + mask) @ v` -> `qir::attention` (module docstring)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter) -> None:
        if op.target.data != "matmul.default" or len(op.operands) != 2:
            return
        probs, v = op.operands
        softmax = _only_use(probs, _SOFTMAX)
        if softmax is None or len(softmax.operands) != 1 or not self._plain_softmax(softmax):
            return
        scores, mask = softmax.operands[0], None
        add = _only_use(scores, ("add.Tensor",))
        if add is not None and len(add.operands) == 2 and add.arg("alpha", 1) == 1:
            scores, mask = add.operands
            if not isinstance(scores.owner, AtenOp) or scores.owner.target.data not in (
                    "mul.Tensor", "div.Tensor", "matmul.default"):
                scores, mask = mask, scores
        scale, scale_op = 1.0, _only_use(scores, ("mul.Tensor", "div.Tensor"))
        scaled = _scale(scale_op)
        if scaled is not None:
            scores, scale = scaled
        else:
            scale_op = None
        product = _only_use(scores, ("matmul.default",))
        if product is None or len(product.operands) != 2:
            return
        q, k = product.operands[0], _transposed_key(product.operands[1])
        if k is None or not self._shapes_fit(q, k, v, mask):
            return
        fused = AtenOp("qir::attention.default", [q, k, v, mask, scale], None,
                       [op.results[0].type], {n: op.attributes[n] for n in AtenOp.PROVENANCE if n in op.attributes})
        fused.results[0].name_hint = op.results[0].name_hint
        rewriter.replace_matched_op(fused)
        for dead in (softmax, add if mask is not None else None, scale_op, product, product.operands[1].owner):
            if isinstance(dead, Operation) and not any(r.uses for r in dead.results):
                rewriter.erase_op(dead)

    @staticmethod
    def _plain_softmax(softmax: AtenOp) -> bool:
        rank = len(_shape(softmax.operands[0]) or ())
        if rank != 4 or not _last_dim(softmax.arg(1), rank):
            return False
        if softmax.target.data == "_softmax.default":
            return softmax.arg(2) is False
        return softmax.arg(2) is None

    @staticmethod
    def _shapes_fit(q: SSAValue, k: SSAValue, v: SSAValue, mask: SSAValue | None) -> bool:
        qs, ks, vs = _shape(q), _shape(k), _shape(v)
        if qs is None or ks is None or vs is None or not len(qs) == len(ks) == len(vs) == 4:
            return False
        if qs[:2] != ks[:2] or ks[:3] != vs[:3] or qs[3] != ks[3] or min(qs + ks + vs) < 0:
            return False
        if mask is None:
            return True
        ms = _shape(mask)
        target = (qs[0], qs[1], qs[2], ks[2])
        return ms is not None and len(ms) <= 4 and all(m in (1, t) for m, t in zip(ms[::-1], target[::-1]))
