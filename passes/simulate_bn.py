"""simulate-bn: train a convolution (or linear) and its batch norm as their folded, quantized form.

QAT's counterpart of `fold-bn`. A batch norm that trains cannot be folded, but
the converted model will fold it: the weights that training fake-quantizes
must be the folded ones. Before (after `insert-observers{fake-quant=true}`):

    %wq = obs.fake_quant %w {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>}
    %c  = aten.op "conv2d.default"(%xq, %wq, %b) : ...
    %bn = aten.op "batch_norm.default"(%c, %g, %beta, %m, %v, #aten.training<batch_norm>, 0.1, 1.0e-05, false) : ...

After (the form `qir.batch_norm` describes, torchao's `_fuse_conv_bn_qat`):

    %v_eps = aten.op "add.Tensor"(%v, 1.0e-05) : ...
    %std   = aten.op "sqrt.default"(%v_eps) : ...
    %f     = aten.op "div.Tensor"(%g, %std) : ...
    %f_w   = aten.op "reshape.default"(%f, [-1, 1, 1, 1]) : ...
    %ws    = aten.op "mul.Tensor"(%w, %f_w) : ...
    %wq    = obs.fake_quant %ws {...}
    %c     = aten.op "conv2d.default"(%xq, %wq, none) : ...
    %f_o   = aten.op "reshape.default"(%f, [1, -1, 1, 1]) : ...
    %y     = aten.op "div.Tensor"(%c, %f_o) : ...
    %b_o   = aten.op "reshape.default"(%b, [1, -1, 1, 1]) : ...
    %y_b   = aten.op "add.Tensor"(%y, %b_o) : ...
    %bn    = aten.op "batch_norm.default"(%y_b, %g, %beta, %m, %v, #aten.training<batch_norm>, ...) : ...

Training: the batch norm normalises with the batch's statistics and updates
its running ones; the weight is scaled with the running variance before fake
quantization. Eval: the whole is the folded conv with a fake-quantized folded
weight, what `convert` produces (`fold-bn` folds this form). Which pairs
qualify is `qir.batch_norm.qat_batch_norm`; a batch norm without a
fake-quantized producer stays a float batch norm. Counted as `simulated`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.rewriter import InsertPoint, Rewriter

from qir.batch_norm import qat_batch_norm, simulate
from qir.dialects.aten import AtenOp
from qir.dialects.obs import FakeQuantOp
from qir.pass_manager import QirPass, count


@dataclass(frozen=True)
class SimulateBatchNorm(QirPass):
    """Scale fake-quantized weights by their batch norm's factor while training (QAT)."""

    name = "simulate-bn"
    requires = ("observed",)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for producer in [o for o in op.walk() if isinstance(o, AtenOp)]:
            if len(producer.operands) < 2:
                continue
            fake_quant = producer.operands[1].owner
            if not isinstance(fake_quant, FakeQuantOp) or not fake_quant.output.has_one_use():
                continue
            bn = qat_batch_norm(producer)
            if bn is None:
                continue
            before, unbiased, after = simulate(producer, bn, fake_quant)
            fake_quant.properties.pop("stats", None)  # of the unscaled weight; taken anew each forward
            Rewriter.insert_op(before, InsertPoint.before(fake_quant))
            Rewriter.insert_op([unbiased, *after], InsertPoint.before(producer))
            producer.results[0].replace_all_uses_with(after[-1].results[0])  # the batch norm reads it alone
            Rewriter.erase_op(producer)
            count(ctx, "simulated")
