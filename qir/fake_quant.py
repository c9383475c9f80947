"""Fake quantization: what an `obs.fake_quant` op runs in a module being trained (QAT).

The forward quantizes and dequantizes in float with the parameters the
statistics give (`qir.observers.qparams`, the ones `convert` will compute), so
the loss sees the rounding and clamping the quantized model will do; the
backward passes the gradient straight through inside the range and stops it
outside (torch's `fake_quantize_per_*_affine`).

* An activation learns its range while the module trains and observes
  (`qir.freeze_observers` stops it); in `.eval()` it keeps what it learned, so
  a batch evaluated gives what the converted model gives.
* A weight (a value computed from parameters alone) takes its range anew at
  every forward: it changes at every optimizer step, and `convert` quantizes
  its final value with the range of that value.
  A weight fitted to a CPU whose kernels add pairs of products in int16 (`int16_pairs`) gets
  the fitted scales `convert` will give it.
* A fixed-range output (sigmoid, softmax) uses its fixed parameters.
* An activation whose spec's observer is `learned` (LSQ) trains its scale and zero point with
  the model, started from the example inputs' range; frozen, they stop learning.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qir.accumulation import Reduction, fit_weight
from qir.observers import ObserverSpec, make_observer, qparams


class FakeQuantize(nn.Module):
    """Quantize-dequantize in float with a straight-through gradient; observes as it goes."""

    def __init__(self, spec: ObserverSpec | None = None, *, fixed: tuple[float, int, int, int] | None = None,
                 weight: bool = False, observing: bool = True, quantizing: bool = True,
                 int16_pairs: tuple[Reduction, int] | None = None) -> None:
        super().__init__()
        if (spec is None) == (fixed is None):
            raise ValueError("a fake quantization has an observer spec or fixed parameters, not both")
        self.spec = spec
        self.observer = make_observer(spec) if spec is not None and not weight else None
        self.fixed = fixed
        """(scale, zero point, qmin, qmax) of a fixed-range output."""
        self.weight = weight
        self.observing = observing
        """Whether the activation statistics still learn (while the module trains)."""
        self.quantizing = quantizing
        """Whether the forward quantizes at all (off: the float model, observers still learning)."""
        self.int16_pairs = int16_pairs
        """For a weight whose spec has `int16_pairs`: its kernel's reduction and the activations'
        bound, to fit its scales each step as `convert` fits the final ones (`qir.accumulation`)."""
        self._weight_stats: dict = {}
        self.learned = spec is not None and spec.observer == "learned" and not weight
        if self.learned:  # LSQ: the scale and zero point train with the model
            self.scale = nn.Parameter(torch.ones(1))
            self.zero_point = nn.Parameter(torch.zeros(1), requires_grad=not spec.symmetric)
            self.started = False
            """Whether the learned parameters hold a range yet (the first batch's, or loaded)."""
            self.starting = False
            """Start from the next input even in eval mode (`prepare_qat`, on the example inputs)."""

    def forward(self, x):
        if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() > 0):
            return x
        if self.learned:
            return self._learned(x)
        if self.fixed is not None:
            scale, zero_point, qmin, qmax = self.fixed
            return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax) if self.quantizing else x
        if self.weight:
            observer = make_observer(self.spec)
            observer(x.detach())
            self._weight_stats = stats = observer.stats()
        else:
            if self.training and self.observing:
                self.observer(x)
            stats = self.observer.stats()
        if not self.quantizing or not stats:  # nothing observed yet: nothing to quantize with
            return x
        return self._fake_quantize(x, stats)

    def stats(self) -> dict:
        """The statistics the forward quantizes with: learned (activations; LSQ: the range the
        trained scale and zero point stand for), or of the weight the last forward saw."""
        if self.learned:
            if not self.started:
                return {}
            scale = max(float(self.scale), self.spec.eps)
            zero_point = min(max(round(float(self.zero_point)), self.spec.qmin), self.spec.qmax)
            return {"min": (self.spec.qmin - zero_point) * scale, "max": (self.spec.qmax - zero_point) * scale}
        if self.observer is not None:
            return self.observer.stats()
        return dict(self._weight_stats)

    def load_stats(self, stats: dict) -> None:
        if self.observer is not None:
            self.observer.load_stats(stats)
        if self.learned and stats:
            self._start(stats)

    def start(self, x: torch.Tensor) -> None:
        """Give learned parameters the range of `x` (`prepare_qat` does, on the example inputs,
        so every process of a distributed run starts from the same)."""
        if self.learned and not self.started:
            self.observer(x)
            self._start(self.observer.stats())

    def _start(self, stats: dict) -> None:
        scale, zero_point = qparams(self.spec, stats)
        with torch.no_grad():
            self.scale.fill_(float(scale))
            self.zero_point.fill_(float(zero_point))
        self.started = True

    def _learned(self, x: torch.Tensor) -> torch.Tensor:
        """LSQ (Esser et al.): torch's learnable fake quantization, the gradient of the scale
        scaled by 1 / sqrt(numel * qmax) as the paper does."""
        if not self.started:
            if not (self.training or self.starting):
                return x
            self.start(x.detach())
        if not self.quantizing:
            return x
        learning = self.training and self.observing
        scale, zero_point = (self.scale, self.zero_point) if learning else (self.scale.detach(), self.zero_point.detach())
        # Kept valid out of place: a module shared by two values runs twice in one graph.
        scale, zero_point = scale.clamp(min=self.spec.eps), zero_point.clamp(self.spec.qmin, self.spec.qmax)
        factor = 1.0 / math.sqrt(x.numel() * self.spec.qmax)
        return torch._fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, self.spec.qmin,
                                                                 self.spec.qmax, factor)

    def _fake_quantize(self, x: torch.Tensor, stats: dict) -> torch.Tensor:
        spec = self.spec
        scale, zero_point = qparams(spec, stats)
        if self.int16_pairs is not None:
            per_channel = spec.axis is not None
            scales, zeros = (scale, zero_point) if per_channel else ([scale], [zero_point])
            storage = torch.int8 if spec.signed else torch.uint8
            fitted = fit_weight(x, list(scales), list(zeros), spec.axis, spec.qmin, spec.qmax, storage,
                                *self.int16_pairs)
            if fitted is not None:
                scale = fitted.float().tolist() if per_channel else float(fitted.float()[0])
        if spec.axis is None:
            return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), spec.qmin, spec.qmax)
        scales = torch.tensor(scale, dtype=torch.float32)
        zero_points = torch.tensor(zero_point, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(x, scales, zero_points, spec.axis, spec.qmin, spec.qmax)

    def extra_repr(self) -> str:
        kind = "fixed" if self.fixed is not None else "weight" if self.weight else self.spec.observer
        state = [] if self.observing else ["observers frozen"]
        state += [] if self.quantizing else ["quantization off"]
        return ", ".join([kind, *state])
