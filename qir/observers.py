"""Calibration observers: statistics in, quantization parameters out.

An observer is a small `nn.Module` of the calibration `fx.GraphModule`: it
returns its input unchanged and records statistics of the floating-point
tensors it sees. The statistics are plain Python data, so they can be written
into IR attributes and read back by `convert`, perhaps in another process:

    minmax, moving_minmax   {"min": float, "max": float}   (and learned: see `_OBSERVERS`)
    per_channel_minmax      {"min": [float, ...], "max": [float, ...]}   (one entry per channel)
    per_group_minmax        {"min": [float, ...], "max": [float, ...]}   (channels x groups, row-major)
    histogram               {"min": float, "max": float, "bins": [float, ...]}   (`spec.bins` counts)
    (no data seen)          {}

`qparams(spec, stats)` turns statistics into `(scale, zero_point)` — a float
and an int, or lists of them per channel — and depends on nothing else. From
a range it computes torch.ao's `_calculate_qparams`, with the same float32
operations, so the min/max observers give bit-identical parameters to
torch.ao's on the same data; the histogram's range comes from torch.ao's
L2-minimising search, reimplemented: the same decisions on the same histogram.

Degenerate calibration: empty tensors and integer or bool tensors are not
observed; NaN and ±inf values are ignored (one warning per observer); an
observer that saw no finite value has no statistics, and `qparams` of `{}`
raises `ValueError`.

`merge_stats(spec, [stats, ...])` merges the statistics of observers of one
spec that saw different data (calibration split over processes): min/max
exactly as one observer on all the data, histograms by rebinning onto the
union range and adding.

Where qir departs from torch.ao, on purpose:

* The histogram keeps float64 counts and, when the range grows, moves the old
  counts into the new bins in proportion to their overlap (torch.ao spreads
  each old bin over 16 sub-bins and moves each whole); counts can be
  fractional. With one tensor, or a range that never grows, the histogram and
  the parameters are torch.ao's.
* Symmetric unsigned storage takes the zero point `(qmin + qmax + 1) // 2`:
  128 on [0, 255] as torch.ao's default, where torch.ao with an explicit
  `quant_min`/`quant_max` rounds the midpoint down (127).
* NaN and ±inf values are ignored by every observer (torch.ao's min/max
  observers let them into the range; its histogram drops only ±inf), and an
  observer without data is an error, not scale 1 and zero point 0.
"""

from __future__ import annotations

import math
import struct
import warnings
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "HistogramObserver",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "Observer",
    "ObserverSpec",
    "PerChannelMinMaxObserver",
    "PerGroupMinMaxObserver",
    "make_observer",
    "merge_stats",
    "observe_each",
    "qparams",
    "qparams_many",
]


@dataclass(frozen=True, kw_only=True)
class ObserverSpec:
    """How values are observed and quantized: the observer kind and the integer range.

    `signed` is the storage (int8 vs uint8): it decides the zero point of
    symmetric quantization. `axis` is the channel axis of `per_channel_minmax` and
    `per_group_minmax` (and only of them); `group_size` the size of the groups of
    `per_group_minmax` (and only of it), along the last dimension of a 2-d tensor whose
    channels are its rows; `averaging_constant` is used by `moving_minmax`, `bins`
    by `histogram`; `eps` is the smallest scale."""

    observer: str
    qmin: int
    qmax: int
    symmetric: bool
    axis: int | None = None
    averaging_constant: float = 0.01
    bins: int = 2048
    eps: float = torch.finfo(torch.float32).eps
    signed: bool
    group_size: int | None = None

    def __post_init__(self) -> None:
        if self.observer not in _OBSERVERS:
            raise ValueError(f"unknown observer {self.observer!r} (expected one of {', '.join(_OBSERVERS)})")
        if not self.qmin <= 0 <= self.qmax or self.qmin == self.qmax:
            raise ValueError(f"the range [{self.qmin}, {self.qmax}] must contain 0 and more than one value")
        if not self.signed and self.qmin < 0:
            raise ValueError(f"unsigned storage cannot hold qmin = {self.qmin}")
        _storage_levels(self)  # the range fits 32-bit storage
        if (self.observer in _PER_CHANNEL) != (self.axis is not None):
            raise ValueError("per_channel_minmax and per_group_minmax observers, and only they, take an axis")
        if (self.observer == "per_group_minmax") != (self.group_size is not None):
            raise ValueError("per_group_minmax observers, and only they, take a group size")
        if self.group_size is not None and (self.group_size < 1 or self.axis != 0):
            raise ValueError(f"groups of {self.group_size} along the rows of channels of axis 0 "
                             f"(got axis {self.axis}): a group size must be positive")
        if not 0.0 < self.averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant must be in (0, 1], not {self.averaging_constant}")
        if self.bins < 1:
            raise ValueError(f"bins must be positive, not {self.bins}")
        if not self.eps > 0.0:
            raise ValueError(f"eps must be positive, not {self.eps}")


class Observer(nn.Module):
    """Records statistics of the floating-point tensors passing through; returns them unchanged.

    Set `name` to have warnings name the observer."""

    def __init__(self, spec: ObserverSpec) -> None:
        super().__init__()
        self.spec = spec
        self.name: str | None = None
        self._warned = False

    def forward(self, x):
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() > 0:
            self._observe(x.detach())
        return x

    def stats(self, *, tensors: bool = False) -> dict:
        """The statistics so far, as plain Python data; `{}` before any data. With `tensors`,
        lists come as 1-d float64 tensors of their own (what `load_stats` and
        `qir.observation.stats_to_attr` also take: a histogram's thousands of bins need not
        become Python floats on their way into the IR)."""
        raise NotImplementedError

    def load_stats(self, stats: dict) -> None:
        """Replace the statistics by `stats` (as returned by `stats()`); observing continues from them."""
        raise NotImplementedError

    def _observe(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def _label(self) -> str:
        return f"observer {self.name!r}" if self.name else f"a {self.spec.observer} observer"

    def _warn_non_finite(self) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"{self._label()} ignored NaN or infinite values in its input "
                          "(warned once per observer)", RuntimeWarning)

    def _finite_range(self, x: torch.Tensor) -> tuple[torch.Tensor, float, float] | None:
        """`x` without its non-finite values, with its min and max; None when nothing finite is left."""
        lo, hi = torch.aminmax(x)
        lo, hi = lo.item(), hi.item()
        if math.isfinite(lo) and math.isfinite(hi):
            return x, lo, hi
        self._warn_non_finite()
        x = x[torch.isfinite(x)]
        if x.numel() == 0:
            return None
        lo, hi = torch.aminmax(x)
        return x, lo.item(), hi.item()

    def extra_repr(self) -> str:
        s = self.spec
        scheme = "symmetric" if s.symmetric else "affine"
        axis = "" if s.axis is None else f", axis={s.axis}"
        name = "" if self.name is None else f"name={self.name!r}, "
        return f"{name}[{s.qmin}, {s.qmax}], {scheme}{axis}"


class MinMaxObserver(Observer):
    """The running minimum and maximum (torch.ao's MinMaxObserver)."""

    def __init__(self, spec: ObserverSpec) -> None:
        super().__init__(spec)
        self._min: float | None = None
        self._max: float | None = None

    def _observe(self, x: torch.Tensor) -> None:
        seen = self._finite_range(x)
        if seen is None:
            return
        _, lo, hi = seen
        if self._min is None:
            self._min, self._max = lo, hi
        else:
            self._min, self._max = min(self._min, lo), max(self._max, hi)

    def stats(self, *, tensors: bool = False) -> dict:
        return {} if self._min is None else {"min": self._min, "max": self._max}

    def load_stats(self, stats: dict) -> None:
        self._min, self._max = _scalar_range(stats) if stats else (None, None)


class MovingAverageMinMaxObserver(MinMaxObserver):
    """The moving averages of the minimum and maximum of each tensor
    (torch.ao's MovingAverageMinMaxObserver): `m += c * (m_tensor - m)`,
    rounded to float32 after each operation as torch.ao computes it."""

    def _observe(self, x: torch.Tensor) -> None:
        seen = self._finite_range(x)
        if seen is None:
            return
        lo, hi = _f32(seen[1]), _f32(seen[2])
        if self._min is None:
            self._min, self._max = lo, hi
        else:
            c = _f32(self.spec.averaging_constant)
            self._min = _f32(self._min + _f32(c * _f32(lo - self._min)))
            self._max = _f32(self._max + _f32(c * _f32(hi - self._max)))

    def load_stats(self, stats: dict) -> None:
        self._min, self._max = (_f32(v) for v in _scalar_range(stats)) if stats else (None, None)


class HistogramObserver(Observer):
    """A histogram of `spec.bins` bins over the range seen so far (torch.ao's HistogramObserver).

    When a tensor widens the range, the old counts are moved into the new bins
    in proportion to their overlap (counts are uniform within a bin); the new
    tensor is then counted with `torch.histc`. A zero-width range keeps its
    count in bin 0."""

    histogram: torch.Tensor

    def __init__(self, spec: ObserverSpec) -> None:
        super().__init__(spec)
        self.register_buffer("histogram", torch.zeros(spec.bins, dtype=torch.float64), persistent=False)
        self._min: float | None = None
        self._max: float | None = None

    def _observe(self, x: torch.Tensor) -> None:
        seen = self._finite_range(x)
        if seen is None:
            return
        x, lo, hi = seen
        if self._min is None:
            self._min, self._max = lo, hi
        elif lo < self._min or hi > self._max:
            lo, hi = min(lo, self._min), max(hi, self._max)
            self.histogram.copy_(_rebin(self.histogram, self._min, self._max, lo, hi))
            self._min, self._max = lo, hi
        else:
            lo, hi = self._min, self._max
        if lo == hi:
            self.histogram[0] += x.numel()
            return
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()  # histc counts in the input's dtype: float16 counts are exact only up to 2048
        self.histogram.add_(torch.histc(x, self.spec.bins, min=lo, max=hi))

    def stats(self, *, tensors: bool = False) -> dict:
        if self._min is None:
            return {}
        return {"min": self._min, "max": self._max,
                "bins": self.histogram.clone() if tensors else self.histogram.tolist()}

    def load_stats(self, stats: dict) -> None:
        if not stats:
            self._min = self._max = None
            self.histogram.zero_()
            return
        self._min, self._max, counts = _histogram_stats(self.spec, stats)
        self.histogram.copy_(counts)


class PerChannelMinMaxObserver(Observer):
    """The running minimum and maximum of each channel along `spec.axis`
    (torch.ao's PerChannelMinMaxObserver). The other dimensions may change from
    one tensor to the next; the number of channels may not."""

    min_val: torch.Tensor
    max_val: torch.Tensor

    def __init__(self, spec: ObserverSpec) -> None:
        super().__init__(spec)
        self.register_buffer("min_val", torch.empty(0, dtype=torch.float64), persistent=False)
        self.register_buffer("max_val", torch.empty(0, dtype=torch.float64), persistent=False)

    def _observe(self, x: torch.Tensor) -> None:
        axis = self.spec.axis
        if not -x.dim() <= axis < x.dim():
            raise ValueError(f"{self._label()}: channel axis {axis} is out of range for a "
                             f"{x.dim()}-d tensor of shape {tuple(x.shape)}")
        axis %= x.dim()
        channels = x.shape[axis]
        if self.min_val.numel() not in (0, channels):
            raise ValueError(f"{self._label()}: saw {self.min_val.numel()} channels along axis {axis}, "
                             f"now a tensor of shape {tuple(x.shape)}")
        dims = tuple(d for d in range(x.dim()) if d != axis)
        lo, hi = _channel_range(x, dims)
        # NaN or ±inf anywhere makes the sum non-finite (float32 extremes cannot overflow it in float64)
        if not math.isfinite(lo.sum(dtype=torch.float64).item() + hi.sum(dtype=torch.float64).item()):
            finite = torch.isfinite(x)
            if not bool(finite.all()):
                self._warn_non_finite()
                lo = _channel_range(torch.where(finite, x, math.inf), dims)[0]
                hi = _channel_range(torch.where(finite, x, -math.inf), dims)[1]
        if self.min_val.numel() == 0:
            self.min_val.resize_(channels).fill_(math.inf)
            self.max_val.resize_(channels).fill_(-math.inf)
        torch.minimum(self.min_val, lo, out=self.min_val)
        torch.maximum(self.max_val, hi, out=self.max_val)

    def stats(self, *, tensors: bool = False) -> dict:
        seen = self.min_val <= self.max_val  # a channel without a finite value reports [0, 0]
        if not bool(seen.any()):
            return {}
        lo, hi = torch.where(seen, self.min_val, 0.0), torch.where(seen, self.max_val, 0.0)
        return {"min": lo, "max": hi} if tensors else {"min": lo.tolist(), "max": hi.tolist()}

    def load_stats(self, stats: dict) -> None:
        lo, hi = _channel_stats(stats) if stats else (torch.empty(0, dtype=torch.float64),) * 2
        self.min_val.resize_(lo.numel()).copy_(lo)
        self.max_val.resize_(hi.numel()).copy_(hi)


class PerGroupMinMaxObserver(Observer):
    """The minimum and maximum of each group of `spec.group_size` consecutive elements of each
    row of a 2-d tensor (a weight `[out, in]`: groups of inputs of each output channel), for
    group-wise (sub-channel) quantization. Statistics are row-major `[rows, groups]`."""

    min_val: torch.Tensor
    max_val: torch.Tensor

    def __init__(self, spec: ObserverSpec) -> None:
        super().__init__(spec)
        self.register_buffer("min_val", torch.empty(0, dtype=torch.float64), persistent=False)
        self.register_buffer("max_val", torch.empty(0, dtype=torch.float64), persistent=False)

    def _observe(self, x: torch.Tensor) -> None:
        size = self.spec.group_size
        if x.dim() != 2 or x.shape[1] % size:
            raise ValueError(f"{self._label()}: groups of {size} need a 2-d tensor whose rows they divide, "
                             f"got shape {tuple(x.shape)}")
        groups = x.reshape(x.shape[0], -1, size)
        finite = torch.isfinite(groups)
        if not bool(finite.all()):
            self._warn_non_finite()
            lo = torch.where(finite, groups, math.inf).amin(-1)
            hi = torch.where(finite, groups, -math.inf).amax(-1)
        else:
            lo, hi = groups.amin(-1), groups.amax(-1)
        lo, hi = lo.reshape(-1).double(), hi.reshape(-1).double()
        if self.min_val.numel() not in (0, lo.numel()):
            raise ValueError(f"{self._label()}: saw {self.min_val.numel()} groups, now a tensor of shape "
                             f"{tuple(x.shape)}")
        if self.min_val.numel() == 0:
            self.min_val.resize_(lo.numel()).fill_(math.inf)
            self.max_val.resize_(lo.numel()).fill_(-math.inf)
        torch.minimum(self.min_val, lo, out=self.min_val)
        torch.maximum(self.max_val, hi, out=self.max_val)

    stats = PerChannelMinMaxObserver.stats
    load_stats = PerChannelMinMaxObserver.load_stats


_PER_CHANNEL = ("per_channel_minmax", "per_group_minmax")
"""Observers whose statistics (and parameters) are lists, one entry per channel or group."""

_OBSERVERS: dict[str, type[Observer]] = {
    "minmax": MinMaxObserver,
    "moving_minmax": MovingAverageMinMaxObserver,
    "histogram": HistogramObserver,
    "per_channel_minmax": PerChannelMinMaxObserver,
    "per_group_minmax": PerGroupMinMaxObserver,
    "learned": MinMaxObserver,
}
"""`learned` is a min/max observer when calibrating; in quantization-aware training its scale and
zero point are parameters trained with the model (LSQ, `qir.fake_quant`), started from the range
this observer gives, and its statistics are the range they stand for."""


def make_observer(spec: ObserverSpec) -> Observer:
    """A fresh observer of the kind `spec.observer`."""
    return _OBSERVERS[spec.observer](spec)


def observe_each(spec: ObserverSpec, tensors: list[torch.Tensor]) -> list[dict | ValueError]:
    """The statistics a fresh observer of `spec` records from each of `tensors` alone
    (`stats(tensors=True)`), or the ValueError it raises: how weights are observed at compile
    time. A fresh observer per weight is a module, a forward and a few small reductions, about
    100 us; here the tensors of one shape and dtype are stacked and reduced together, by the
    observer's own reductions along the same dimensions (a finite, nonzero minimum or maximum
    is the same value whatever order a reduction takes), so 800 weights take a few tensor
    operations. A histogram, and a tensor the batch cannot stand for (a non-finite value: the
    observer warns; a zero extreme: see `_exact`; a spec that does not fit: it raises; nothing
    to observe), go through an observer of their own."""
    results: list[dict | ValueError | None] = [None] * len(tensors)
    reduce = _STACKED_REDUCTIONS.get(spec.observer)
    if reduce is not None:
        batches: dict[tuple, list[int]] = {}
        for index, x in enumerate(tensors):
            if _stackable(spec, x):
                batches.setdefault((x.shape, x.dtype, x.device), []).append(index)
        for rows in batches.values():
            for chunk in _chunks(rows, tensors[rows[0]]):
                with torch.no_grad():
                    stacked = torch.stack([tensors[i] for i in chunk]) if len(chunk) > 1 else \
                        tensors[chunk[0]].detach().unsqueeze(0)
                for index, stats in zip(chunk, reduce(spec, stacked)):
                    results[index] = stats
    return [_observe_alone(spec, x) if stats is None else stats for x, stats in zip(tensors, results)]


_STACKED_BYTES = 1 << 24
"""The most bytes of tensors `observe_each` stacks at once: a stack is a copy, and a model's
same-shaped weights can be gigabytes (a lone weight is reduced where it is, not copied)."""


def _chunks(rows: list[int], like: torch.Tensor) -> list[list[int]]:
    """`rows`, tensors shaped as `like`, in runs of at most `_STACKED_BYTES`."""
    size = max(1, _STACKED_BYTES // max(1, like.numel() * like.element_size()))
    return [rows[start:start + size] for start in range(0, len(rows), size)]


def _observe_alone(spec: ObserverSpec, x: torch.Tensor) -> dict | ValueError:
    observer = make_observer(spec)
    try:
        observer(x)
    except ValueError as err:
        return err
    return observer.stats(tensors=True)


def _stackable(spec: ObserverSpec, x: torch.Tensor) -> bool:
    """Whether an observer would reduce `x` without a check failing (what the batch skips)."""
    if not x.is_floating_point() or x.numel() == 0:
        return False
    if spec.observer == "per_channel_minmax":
        return -x.dim() <= spec.axis < x.dim()
    if spec.observer == "per_group_minmax":
        return x.dim() == 2 and x.shape[1] % spec.group_size == 0
    return True


def _stacked_ranges(spec: ObserverSpec, stacked: torch.Tensor) -> list[dict | None]:
    """`MinMaxObserver`'s statistics of each tensor of `stacked` (None: see `_exact`)."""
    lo, hi = torch.aminmax(stacked.reshape(len(stacked), -1), dim=1)
    rounded = _f32 if spec.observer == "moving_minmax" else float
    return [{"min": rounded(low), "max": rounded(high)} if ok else None
            for low, high, ok in zip(lo.tolist(), hi.tolist(), _exact(lo[:, None], hi[:, None]))]


def _stacked_channel_ranges(spec: ObserverSpec, stacked: torch.Tensor) -> list[dict | None]:
    """`PerChannelMinMaxObserver`'s statistics of each tensor of `stacked` (None: see `_exact`)."""
    axis = spec.axis % (stacked.dim() - 1) + 1
    lo, hi = _channel_range(stacked, tuple(d for d in range(1, stacked.dim()) if d != axis))
    return _channel_rows(lo, hi)


def _stacked_group_ranges(spec: ObserverSpec, stacked: torch.Tensor) -> list[dict | None]:
    """`PerGroupMinMaxObserver`'s statistics of each tensor of `stacked` (None: see `_exact`)."""
    groups = stacked.reshape(len(stacked), stacked.shape[1], -1, spec.group_size)
    return _channel_rows(groups.amin(-1).flatten(1), groups.amax(-1).flatten(1))


def _channel_rows(lo: torch.Tensor, hi: torch.Tensor) -> list[dict | None]:
    """Per-channel statistics, one row of `lo` and `hi` per tensor, as float64 (the observer's
    buffers); None where `_exact` says no."""
    return [{"min": low, "max": high} if ok else None
            for low, high, ok in zip(lo.double().unbind(), hi.double().unbind(), _exact(lo, hi))]


def _exact(lo: torch.Tensor, hi: torch.Tensor) -> list[bool]:
    """For each row of extremes found in a batch, whether they are bit for bit the ones an
    observer finds alone: only when none is non-finite (the observer drops those values, and
    warns) or zero (which zero, +0.0 or -0.0, a reduction keeps depends on its order)."""
    return (torch.isfinite(lo) & (lo != 0) & torch.isfinite(hi) & (hi != 0)).all(1).tolist()


_STACKED_REDUCTIONS = {
    "minmax": _stacked_ranges,
    "moving_minmax": _stacked_ranges,
    "learned": _stacked_ranges,
    "per_channel_minmax": _stacked_channel_ranges,
    "per_group_minmax": _stacked_group_ranges,
}
"""How `observe_each` observes a stack of tensors, per observer kind (a histogram has no
batched form: each tensor sets its own bins)."""


def qparams(spec: ObserverSpec, stats: dict) -> tuple[float, int] | tuple[list[float], list[int]]:
    """`(scale, zero_point)` for values observed with `spec` whose statistics are `stats`;
    lists of them, one per channel, for `per_channel_minmax`.

    Raises ValueError when `stats` is empty (the observer saw no data) or does not fit `spec`."""
    (result,) = qparams_many([(spec, stats)])
    if isinstance(result, ValueError):
        raise result
    return result


def qparams_many(observed: list[tuple[ObserverSpec, dict]]) -> list[tuple | ValueError]:
    """`qparams` of each `(spec, stats)`, or the ValueError it raises, in order. The histograms'
    range searches run side by side (`_l2_range_searches`), and the parameters of every range
    whose spec asks the same arithmetic come from one `_calculate_qparams` call: many observers
    at once cost little more than one (its operations are elementwise, so each observer's
    parameters are bit for bit those it gets alone). The values of the statistics are checked
    together too (`_invalid_channels`, `_invalid_histograms`): a few tensor operations for all
    of them, where checking each one alone took as many per observer."""
    results: list = [None] * len(observed)
    ranges: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (index, min, max), float32
    histograms: list[tuple[int, tuple]] = []
    channels: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (index, min, max), float64
    for index, (spec, stats) in enumerate(observed):
        try:
            if not stats:
                raise ValueError("the observer saw no data: run the calibration module on representative "
                                 "inputs (with finite floating-point values) before convert")
            if spec.observer in _PER_CHANNEL:
                channels.append((index, *_channel_stats(stats, check_values=False)))
            elif spec.observer == "histogram":
                histograms.append((index, (*_histogram_stats(spec, stats, check_values=False),
                                           _storage_levels(spec))))
            else:
                ranges.append((index, *torch.tensor(_scalar_range(stats), dtype=torch.float32).split(1)))
        except ValueError as err:
            results[index] = err
    for index in _invalid_channels(channels) | _invalid_histograms(histograms):
        try:  # the checks one statistic at a time say what is wrong with it
            if observed[index][0].observer == "histogram":
                _histogram_stats(observed[index][0], observed[index][1])
            else:
                _channel_stats(observed[index][1])
        except ValueError as err:
            results[index] = err
    ranges.extend((index, lo.float(), hi.float()) for index, lo, hi in channels if results[index] is None)
    histograms = [entry for entry in histograms if results[entry[0]] is None]
    if histograms:
        lo, hi = _l2_range_searches([histogram for _, histogram in histograms])
        ranges.extend(zip((index for index, _ in histograms), lo.split(1), hi.split(1)))
    arithmetic: dict[tuple, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}
    for entry in ranges:
        spec = observed[entry[0]][0]
        arithmetic.setdefault((spec.qmin, spec.qmax, spec.symmetric, spec.signed, spec.eps), []).append(entry)
    for members in arithmetic.values():
        scale, zero_point = _calculate_qparams(observed[members[0][0]][0], torch.cat([lo for _, lo, _ in members]),
                                               torch.cat([hi for _, _, hi in members]))
        scales, zero_points = scale.tolist(), zero_point.tolist()
        at = 0
        for index, lo, _ in members:
            if observed[index][0].observer in _PER_CHANNEL:
                results[index] = scales[at:at + lo.numel()], zero_points[at:at + lo.numel()]
            else:
                results[index] = scales[at], zero_points[at]
            at += lo.numel()
    return results


def merge_stats(spec: ObserverSpec, stats_list: list[dict]) -> dict:
    """The statistics of observers of `spec` that saw parts of the data, merged into one:
    what a single observer would hold after seeing all of it, as closely as the kind allows.

    `{}` entries (an observer that saw nothing) are skipped; all empty gives `{}`. The inputs
    are checked as `load_stats` checks them and never changed. The result depends only on the
    list and its order, so every process merging the same gathered list gets the same bytes.

    * `minmax`, `per_channel_minmax`: the (elementwise) min of the mins and max of the maxes,
      exactly one observer's on all the data. (A channel that one observer never saw reports
      [0, 0]; widening a range to include 0 leaves its parameters unchanged.)
    * `moving_minmax`: the mean of the mins and of the maxes. A moving average depends on the
      order of the batches, and the order across processes is not defined: no exact merge
      exists, and each process's average estimates the same running range.
    * `histogram`: the union range; each histogram is moved into `spec.bins` bins over it with
      the proportional-overlap rebinning the observer uses when its own range grows, and the
      counts are added. A histogram whose range is the union's is added as it is (so merging
      histograms of one range adds their counts exactly); the others are smeared as they would
      be by one observer whose range grew, so the parameters are close to, not equal to, those
      of one observer on all the data."""
    seen = [stats for stats in stats_list if stats]
    if not seen:
        return {}
    if spec.observer in _PER_CHANNEL:
        ranges = [[bound.tolist() for bound in _channel_stats(stats)] for stats in seen]
        channels = {len(lo) for lo, _ in ranges}
        if len(channels) > 1:
            raise ValueError(f"cannot merge statistics of {sorted(channels)} channels")
        return {"min": [min(values) for values in zip(*(lo for lo, _ in ranges))],
                "max": [max(values) for values in zip(*(hi for _, hi in ranges))]}
    if spec.observer == "histogram":
        histograms = [_histogram_stats(spec, stats) for stats in seen]
        lo, hi = min(h[0] for h in histograms), max(h[1] for h in histograms)
        total = torch.zeros(spec.bins, dtype=torch.float64)
        for h_lo, h_hi, counts in histograms:
            total += counts if (h_lo, h_hi) == (lo, hi) else _rebin(counts, h_lo, h_hi, lo, hi)
        return {"min": lo, "max": hi, "bins": total.tolist()}
    ranges = [_scalar_range(stats) for stats in seen]
    if spec.observer == "moving_minmax":
        return {"min": math.fsum(lo for lo, _ in ranges) / len(ranges),
                "max": math.fsum(hi for _, hi in ranges) / len(ranges)}
    return {"min": min(lo for lo, _ in ranges), "max": max(hi for _, hi in ranges)}


def _storage_levels(spec: ObserverSpec) -> int:
    """The number of values of the 8, 16 or 32-bit storage that holds [qmin, qmax]: torch.ao's
    `dst_nbins`, the number of levels its histogram search assumes, also for a reduced range."""
    for bits in (8, 16, 32):
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if spec.signed else (0, 2 ** bits - 1)
        if low <= spec.qmin and spec.qmax <= high:
            return 2 ** bits
    raise ValueError(f"the range [{spec.qmin}, {spec.qmax}] does not fit 32-bit storage")


def _calculate_qparams(spec: ObserverSpec, min_val: torch.Tensor,
                       max_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.ao's `_calculate_qparams`, the same float32 operations in the same order."""
    qmin, qmax = spec.qmin, spec.qmax
    min_neg = torch.min(min_val, torch.zeros_like(min_val))
    max_pos = torch.max(max_val, torch.zeros_like(max_val))
    eps = torch.tensor([spec.eps], dtype=torch.float32)
    if spec.symmetric:
        scale = torch.max(torch.max(-min_neg, max_pos) / (float(qmax - qmin) / 2), eps)
        zero_point = torch.full(scale.shape, 0 if spec.signed else (qmin + qmax + 1) // 2, dtype=torch.int64)
    else:
        scale = torch.max((max_pos - min_neg) / float(qmax - qmin), eps)
        zero_point = torch.clamp(qmin - torch.round(min_neg / scale).to(torch.int), qmin, qmax)
    return scale, zero_point


def _l2_range_searches(histograms: list[tuple[float, float, torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipping range of each histogram `(lo, hi, counts, levels)` that (approximately)
    minimises the L2 quantization error with `levels` levels: torch.ao's
    `_non_linear_param_search`, as two float32 tensors (the mins, the maxes), one entry per
    histogram.

    The range shrinks greedily, one quantile step (1e-5) at a time from the
    side that sheds more bins, while the error decreases. Quantile thresholds
    compare in float32 and the range is computed in float32, as in torch.ao;
    the error is computed in float64.

    The searches run side by side: each round, every histogram still searching proposes its
    next range and one batched evaluation gives all their errors (`_quantization_errors`), so
    800 observers cost a few dozen tensor operations a round instead of a dozen each. Which
    ranges are proposed never depends on the errors, only when a search stops does. The
    proposals bisect the cumulative counts in place (a memoryview of the tensor: only the
    entries probed become Python floats), and the ranges found are computed together, by the
    same elementwise float32 operations as one at a time."""
    lo32 = torch.tensor([lo for lo, *_ in histograms], dtype=torch.float32)
    hi32 = torch.tensor([hi for _, hi, *_ in histograms], dtype=torch.float32)
    bounds = [(0, counts.numel() - 1) for _, _, counts, _ in histograms]  # the whole range, where width is 0
    searching = []  # [index, proposals, counts, width, levels, best error, start, end]
    for index, ((_, _, counts, levels), low, high) in enumerate(zip(histograms, lo32.tolist(), hi32.tolist())):
        nbins = counts.numel()
        width = (high - low) / nbins
        if width != 0.0:  # else every candidate range is [lo, lo]
            # a sequential sum on the CPU, as itertools.accumulate's
            proposals = _proposed_ranges(memoryview(counts.cumsum(0).numpy()), nbins)
            searching.append([index, proposals, counts, width, levels, math.inf, 0, nbins - 1])
    done = []
    while searching:
        proposed = []
        for search in searching:
            bins = next(search[1], None)
            if bins is None:
                done.append(search)
            else:
                proposed.append((search, bins))
        errors = _quantization_errors([(search[2], search[3], *bins, search[4]) for search, bins in proposed])
        searching = []
        for (search, (start, end)), error in zip(proposed, errors):
            if error > search[5]:
                done.append(search)
            else:
                search[5:] = error, start, end
                searching.append(search)
    for index, *_, start, end in done:
        bounds[index] = start, end
    found_lo, found_hi = torch.empty_like(lo32), torch.empty_like(hi32)
    by_size: dict[int, list[int]] = {}
    for index, (_, _, counts, _) in enumerate(histograms):
        by_size.setdefault(counts.numel(), []).append(index)
    for nbins, rows in by_size.items():
        rows_t = torch.tensor(rows)
        start, after_end = torch.tensor([(bounds[i][0], bounds[i][1] + 1) for i in rows], dtype=torch.float32).T
        lo, hi = lo32[rows_t], hi32[rows_t]
        bin_width = (hi - lo) / nbins
        unsearched = lo == hi  # torch.ao's range [lo, hi] as it is
        found_lo[rows_t] = torch.where(unsearched, lo, lo + bin_width * start)
        found_hi[rows_t] = torch.where(unsearched, hi, lo + bin_width * after_end)
    return found_lo, found_hi


def _proposed_ranges(cumulative: list[float], nbins: int) -> Iterator[tuple[int, int]]:
    """The bin ranges torch.ao's search tries in turn on a histogram of cumulative counts
    `cumulative`, each one step inside the last one tried (the search stops taking them when
    the error grows)."""
    total = cumulative[-1]
    step = 1e-5
    alpha, beta = 0.0, 1.0  # the quantiles of the range
    start, end = 0, nbins - 1
    while alpha < beta and start < end:  # with start == end, no step changes anything
        next_alpha = alpha + step
        left = min(end, max(start, bisect_left(cumulative, _f32(next_alpha * total))))
        if left == start:  # torch.ao's steps that change nothing: beta goes down until the end moves
            # Jump close to where the end bin moves (a few steps short, so rounding in the
            # repeated subtraction cannot be overtaken), then step exactly as torch.ao does.
            skip = int((beta - cumulative[end] / total) / step) - 4
            if skip > 0:
                beta -= skip * step
            while alpha < beta and cumulative[end] <= _f32((beta - step) * total):
                beta -= step
            if not alpha < beta:
                return
        next_beta = beta - step
        right = max(start, min(end, bisect_right(cumulative, _f32(next_beta * total)) - 1))
        if left - start > end - right:
            start, alpha = left, next_alpha
        else:
            end, beta = right, next_beta
        yield start, end


_ROWS_AT_ONCE = 32768
"""Bins evaluated in one batch: temporaries of 256 kB stay in the cache (800 histograms at
once made each operation fault in fresh pages, slower than one histogram at a time)."""


def _quantization_errors(ranges: list[tuple[torch.Tensor, float, int, int, int]]) -> list[float]:
    """The L2 error of quantizing each histogram `(counts, width, start, end, levels)` (bins of
    `width`, uniform density within each) on `levels` levels spanning bins `start..end`, values
    outside clipped. Histograms of one size are evaluated together, one row each: every
    operation is elementwise, or a sum along a row, so each error is bit for bit the one a
    histogram alone gives.

    Where most bins are empty (a histogram of a few batches: 256 values in 2048 bins), only
    the bins holding counts are evaluated: their products are put in their places in a row of
    zeros, which is summed as the whole row is. An empty bin's product is a zero either way
    (its sign aside, which only an error of exactly zero could show, and errors are only
    compared), so the errors, and the ranges chosen, are the same."""
    errors = [0.0] * len(ranges)
    by_size: dict[int, list[int]] = {}
    for index, (counts, *_) in enumerate(ranges):
        by_size.setdefault(counts.numel(), []).append(index)
    chunks = [(nbins, rows[at:at + max(1, _ROWS_AT_ONCE // nbins)])
              for nbins, rows in by_size.items() for at in range(0, len(rows), max(1, _ROWS_AT_ONCE // nbins))]
    for nbins, rows in chunks:
        hist = torch.stack([ranges[i][0] for i in rows])
        columns = []
        for i in rows:
            _, width, start, end, levels = ranges[i]
            step = width * (end - start + 1) / levels
            half = step / 2
            columns.append((start, width, step, levels - 1, half ** 3, 2 * half ** 3))
        parameters = torch.tensor(columns, dtype=torch.float64).T
        row, position = hist.nonzero(as_tuple=True)
        if 2 * row.numel() < hist.numel():
            products = torch.zeros_like(hist)
            products[row, position] = hist[row, position] * _bin_cubes(position.double(), *parameters[:, row])
        else:
            products = hist * _bin_cubes(torch.arange(nbins, dtype=torch.float64), *parameters[:, :, None])
        for i, total in zip(rows, products.sum(1).tolist()):
            errors[i] = total / (3 * ranges[i][1])
    return errors


def _bin_cubes(position: torch.Tensor, start: torch.Tensor, width: torch.Tensor, step: torch.Tensor,
               top: torch.Tensor, half_cubed: torch.Tensor, level_cubes: torch.Tensor) -> torch.Tensor:
    """For bins at `position` (float64 bin indices; the other arguments, one value per bin or
    one per row, broadcast) of a histogram quantized on levels of `step` from bin `start`: the
    integral of x² over each bin, x the offset from the centre of the level each value falls in
    (times 3, and per unit of density)."""
    begin = (position - start) * width
    finish = begin + width
    first = torch.clamp(torch.floor(begin / step), min=0).minimum(top)  # the level of each bin's begin
    last = torch.clamp(torch.floor(finish / step), min=0).minimum(top)
    to_begin = begin - (first + 0.5) * step  # offsets from the levels' centres
    to_finish = finish - (last + 0.5) * step
    # ∫x² over [to_begin, half], over whole levels strictly between, and over [-half, to_finish]
    return (half_cubed - to_begin ** 3) + (last - first - 1) * level_cubes + (to_finish ** 3 + half_cubed)


def _rebin(hist: torch.Tensor, lo: float, hi: float, new_lo: float, new_hi: float) -> torch.Tensor:
    """`hist` over [lo, hi] moved into as many bins over [new_lo, new_hi] ⊇ [lo, hi]."""
    nbins = hist.numel()
    if lo == hi:
        out = torch.zeros_like(hist)
        out[min(int((lo - new_lo) * nbins / (new_hi - new_lo)), nbins - 1)] = hist.sum()
        return out
    edges = torch.linspace(new_lo, new_hi, nbins + 1, dtype=torch.float64, device=hist.device)
    position = ((edges - lo) * (nbins / (hi - lo))).clamp_(0, nbins)  # in old bins
    index = position.floor().clamp_(max=nbins - 1)
    below = torch.cat([hist.new_zeros(1), hist.cumsum(0)])  # mass below each old edge
    index_long = index.long()
    mass = below[index_long] + (position - index) * hist[index_long]  # mass below each new edge
    return mass.diff().clamp_(min=0)


_FLOAT32 = struct.Struct("f")


def _f32(value: float) -> float:
    """`value` rounded to float32 (to nearest, ties to even)."""
    return _FLOAT32.unpack(_FLOAT32.pack(value))[0]


def _as_number(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(_f32(value)):
        raise ValueError(f"statistics: {key!r} must hold numbers finite in float32, not {value!r}")
    return float(value)


def _number(stats: dict, key: str) -> float:
    return _as_number(stats[key], key)


def _numbers(stats: dict, key: str, check_values: bool = True) -> torch.Tensor:
    """`stats[key]` as a 1-d float64 tensor: a non-empty list or tuple of numbers (not bools), or
    the 1-d float64 tensor `qir.observation.stats_from_attr` reads from the IR, with no Python
    float per entry (a histogram has thousands of bins). Finite in float32 unless not
    `check_values` (the caller checks many at once)."""
    values = stats[key]
    if isinstance(values, torch.Tensor):
        if values.dtype != torch.float64 or values.dim() != 1 or values.numel() == 0:
            raise ValueError(f"statistics: {key!r} must be a non-empty 1-d float64 tensor, not a "
                             f"{values.dtype} one of shape {tuple(values.shape)}")
        numbers = values
    else:
        if not isinstance(values, list | tuple) or not values:
            raise ValueError(f"statistics: {key!r} must be a non-empty list of numbers, not {values!r}")
        try:  # one conversion checks every entry at once
            numbers = torch.frombuffer(array("d", values), dtype=torch.float64)
        except (TypeError, OverflowError):
            numbers = None
        if numbers is None or bool in set(map(type, values)):
            raise ValueError(f"statistics: {key!r} must hold numbers, not {values!r}")
    if check_values and not torch.isfinite(numbers.float()).all():
        raise ValueError(f"statistics: {key!r} must hold numbers finite in float32")
    return numbers


def _expect_keys(stats: dict, keys: tuple[str, ...]) -> None:
    if set(stats) != set(keys):
        raise ValueError(f"statistics must have the keys {', '.join(keys)}; got {', '.join(map(str, stats))}")


def _scalar_range(stats: dict) -> tuple[float, float]:
    _expect_keys(stats, ("min", "max"))
    lo, hi = _number(stats, "min"), _number(stats, "max")
    if lo > hi:
        raise ValueError(f"statistics: min {lo} is above max {hi}")
    return lo, hi


def _channel_stats(stats: dict, check_values: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel minima and maxima, as float64 tensors; without `check_values`, their values
    are left to `_invalid_channels`."""
    _expect_keys(stats, ("min", "max"))
    lo, hi = _numbers(stats, "min", check_values), _numbers(stats, "max", check_values)
    if lo.numel() != hi.numel():
        raise ValueError(f"statistics: {lo.numel()} channel minima but {hi.numel()} maxima")
    if check_values and bool((lo > hi).any()):
        raise ValueError("statistics: a channel's min is above its max")
    return lo, hi


def _histogram_stats(spec: ObserverSpec, stats: dict, check_values: bool = True) -> tuple[float, float, torch.Tensor]:
    """A histogram's range and counts; without `check_values`, the counts' values are left to
    `_invalid_histograms`."""
    _expect_keys(stats, ("min", "max", "bins"))
    lo, hi = _scalar_range({"min": stats["min"], "max": stats["max"]})
    counts = _numbers(stats, "bins", check_values)
    if counts.numel() != spec.bins:
        raise ValueError(f"statistics: {counts.numel()} histogram bins, the spec says {spec.bins}")
    if check_values and (bool((counts < 0).any()) or not bool(counts.any())):
        raise ValueError("statistics: histogram counts must be non-negative, and not all zero")
    return lo, hi, counts


def _invalid_channels(channels: list[tuple[int, torch.Tensor, torch.Tensor]]) -> set[int]:
    """The indices of the `(index, min, max)` whose values `_channel_stats` refuses (finite in
    float32, min <= max), checked all at once: the whole set only when one is invalid."""
    if not channels:
        return set()
    lo = torch.cat([lo for _, lo, _ in channels])
    hi = torch.cat([hi for _, _, hi in channels])
    if bool(torch.isfinite(lo.float()).all()) and bool(torch.isfinite(hi.float()).all()) and bool((lo <= hi).all()):
        return set()
    return {index for index, _, _ in channels}


def _invalid_histograms(histograms: list[tuple[int, tuple]]) -> set[int]:
    """The indices of the `(index, (lo, hi, counts, levels))` whose counts `_histogram_stats`
    refuses (finite in float32, non-negative, not all zero), from each histogram's smallest and
    largest count: counts are all non-negative when the smallest is (a NaN makes both NaN), and
    then all finite in float32, and not all zero, when the largest is (rounding to float32 is
    monotonic). One reduction per histogram, its checks made for all at once."""
    if not histograms:
        return set()
    extremes = torch.stack([torch.stack(torch.aminmax(counts)) for _, (_, _, counts, _) in histograms])
    smallest, largest = extremes.unbind(1)
    valid = (smallest >= 0) & (largest > 0) & torch.isfinite(largest.float())
    return {index for (index, _), ok in zip(histograms, valid.tolist()) if not ok}


def _channel_range(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    if not dims:  # a 1-d tensor: each element is a channel
        return x, x
    return torch.amin(x, dim=dims), torch.amax(x, dim=dims)
