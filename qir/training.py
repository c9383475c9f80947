"""What a module emitted for training (QAT) reads at run time, and the switches a user flips.

An export bakes the training mode into constants (`dropout(x, 0.1, True)`,
`batch_norm(..., training=True, ...)`), so PT2E's prepared modules ignore
`.train()`/`.eval()`. In qir those arguments are `#aten.training<module>` and
`#aten.training<batch_norm>` (`set-training{mode=module}`), and the emitter
reads each from a `TrainingSwitch` submodule (`switches.module`,
`switches.batch_norm`): `.train()`/`.eval()` flip it as they flip any
submodule, `freeze_bn_stats` holds batch norm in its inference behaviour while
the rest trains, as torch.ao's QAT modules do.
"""

from __future__ import annotations

import torch
from torch import nn


class TrainingSwitch(nn.Module):
    """Returns whether the module trains: its `training` flag, unless frozen."""

    def __init__(self, frozen: bool = False) -> None:
        super().__init__()
        self.frozen = frozen

    def forward(self) -> bool:
        return self.training and not self.frozen

    def extra_repr(self) -> str:
        return "frozen" if self.frozen else ""


def _unwrapped(module: nn.Module) -> nn.Module:
    """The module a `DistributedDataParallel` (or any wrapper with `.module`) holds."""
    inner = getattr(module, "module", None)
    return inner if isinstance(inner, nn.Module) and not hasattr(module, "qir_program") else module


def freeze_bn_stats(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Batch norms of a module from `qir.prepare_qat` use and keep their running statistics
    from now on, also in training mode (the usual last epochs of QAT: the weights then train
    against the statistics the converted model folds in). `frozen=False` undoes it."""
    switch = getattr(getattr(_unwrapped(module), "switches", None), "batch_norm", None)
    if isinstance(switch, TrainingSwitch):
        switch.frozen = frozen
    return module


def freeze_observers(module: nn.Module, frozen: bool = True) -> nn.Module:
    """Fake quantization keeps the activation ranges it has learned: its statistics stop moving
    (weights keep following their values, as `convert` quantizes the final ones).
    `frozen=False` lets them learn again."""
    from qir.fake_quant import FakeQuantize

    for sub in _unwrapped(module).modules():
        if isinstance(sub, FakeQuantize):
            sub.observing = not frozen
    return module


def enable_fake_quant(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Whether the forward quantizes (`False`: the float model, observers still learning their
    ranges; torch.ao's `disable_fake_quant`)."""
    from qir.fake_quant import FakeQuantize

    for sub in _unwrapped(module).modules():
        if isinstance(sub, FakeQuantize):
            sub.quantizing = enabled
    return module
