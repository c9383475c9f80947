"""set-training: whether the model trains, as the module's run-time mode or as a constant.

`torch.export` bakes the mode of the model it captured into the arguments that
depend on it: dropout's `train`, batch norm's `training`. A program that will
be trained (QAT) must follow `.train()`/`.eval()` instead, and the program
that `convert` produces from it is for inference. With `mode=module`:

    %d = aten.op "dropout.default"(%r, 0.1, true) : ...
    %b = aten.op "batch_norm.default"(%c, %g, %bt, %m, %v, true, 0.1, 1.0e-05, false) : ...
  becomes
    %d = aten.op "dropout.default"(%r, 0.1, #aten.training<module>) : ...
    %b = aten.op "batch_norm.default"(%c, %g, %bt, %m, %v, #aten.training<batch_norm>, 0.1, 1.0e-05, false) : ...

which the emitted module reads from its `switches` (`qir.training`). With
`mode=eval` (or `train`) every such argument, constant or not, becomes
`false` (`true`): `convert` starts with `mode=eval`, after which `canonicalize`
drops the dropouts and `fold-bn` folds the batch norms.

The arguments are the `bool` ones named `train` or `training` in the op's
schema (dropout and its variants, the batch norms, `rrelu_with_noise`), so
every such op torch.export can produce is covered. Counted as `switched`.

`mode=eval` also drops the batch counters a training export carries
(`aten.op "add_.Tensor"(%num_batches_tracked, 1)`: an integer buffer that
nothing else reads, incremented in place), which `nn.BatchNorm` runs only
while training: an inference program writes no state. Counted as
`counters dropped`. (With `mode=module` the counter stays and also counts
batches evaluated; nothing reads it unless the batch norm's momentum is None,
and then the counter has other readers and follows the export.)
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp
from xdsl.ir import Attribute

from xdsl.dialects.builtin import IntegerType, TensorType
from xdsl.rewriter import Rewriter

from qir.dialects.aten import AtenOp, ParamOp, TrainingModeAttr, to_attr
from qir.pass_manager import QirPass, count

MODES = ("module", "eval", "train")
_FLAGS = ("train", "training")
_BATCH_NORMS = {"batch_norm", "native_batch_norm", "_native_batch_norm_legit", "_batch_norm_impl_index"}


@dataclass(frozen=True)
class SetTraining(QirPass):
    """Make the training-mode arguments follow the module's mode, or fix them."""

    name = "set-training"
    requires = ("float", "annotated", "observed")

    mode: str = "module"
    """`module` (decided by `.train()`/`.eval()` when the emitted module runs), `eval` or `train`."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r} (expected one of {', '.join(MODES)})")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for aten in list(op.walk()):
            if not isinstance(aten, AtenOp) or aten.schema is None:
                continue
            if self.mode == "eval" and _is_batch_counter(aten):
                Rewriter.erase_op(aten)
                count(ctx, "counters dropped")
                continue
            self._switch(ctx, aten)

    def _value(self, aten: AtenOp) -> Attribute:
        if self.mode == "module":
            return TrainingModeAttr("batch_norm" if aten.op_name in _BATCH_NORMS else "module")
        return to_attr(self.mode == "train", [])

    def _switch(self, ctx: Context, aten: AtenOp) -> None:
        flags = [(i, a.name) for i, a in enumerate(aten.schema.positional) if a.name in _FLAGS and a.kind == "bool"]
        if not flags:
            return
        value = self._value(aten)
        args = list(aten.args.data)
        kwargs = dict(aten.kwargs.data) if aten.kwargs is not None else {}
        changed = False
        for index, name in flags:
            if index < len(args) and args[index] != value:
                args[index], changed = value, True
            elif name in kwargs and kwargs[name] != value:
                kwargs[name], changed = value, True
        if changed:
            aten.properties["args"] = ArrayAttr(args)
            if aten.kwargs is not None:
                aten.properties["kwargs"] = DictionaryAttr(kwargs)
            count(ctx, "switched")


def _is_batch_counter(op: AtenOp) -> bool:
    """`add_(buffer, 1)` of an integer buffer nothing else reads, its result unused."""
    if op.op_name != "add_" or len(op.operands) != 1 or any(r.uses for r in op.results):
        return False
    buffer = op.operands[0]
    owner = buffer.owner
    return (isinstance(owner, ParamOp) and owner.kind.data == "buffer" and len(list(buffer.uses)) == 1
            and isinstance(buffer.type, TensorType) and isinstance(buffer.type.element_type, IntegerType)
            and op.arg("other") == 1)
