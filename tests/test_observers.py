"""Calibration observers (`qir.observers`), with torch.ao's observers as the independent reference.

Min/max observers must give bit-identical parameters to torch.ao's on the same
data; the histogram must give torch.ao's parameters closely (identically on a
single tensor, or on torch.ao's own histogram) and an SQNR at most 0.1 dB below. Statistics must survive JSON, and
degenerate calibration (constant, zero, NaN/inf, empty, integer, no data)
must be handled.
"""

from __future__ import annotations

import json
import math
import struct
import warnings
from functools import partial

import pytest
import torch
import torch.ao.quantization as tq
from torch import fx

from peers import sqnr
from qir.observers import (
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    ObserverSpec,
    PerChannelMinMaxObserver,
    make_observer,
    observe_each,
    qparams,
)

# name: (qmin, qmax, symmetric, signed, torch.ao keyword arguments giving the same range and scheme)
SCHEMES = {
    "u8_affine": (0, 255, False, False, dict(dtype=torch.quint8)),
    "u8_affine_reduced": (0, 127, False, False, dict(dtype=torch.quint8, quant_min=0, quant_max=127)),
    "i8_affine": (-128, 127, False, True, dict(dtype=torch.qint8)),
    "i8_symmetric": (-128, 127, True, True, dict(dtype=torch.qint8, symmetric=True)),
    "i8_symmetric_narrow": (-127, 127, True, True, dict(dtype=torch.qint8, symmetric=True,
                                                        quant_min=-127, quant_max=127)),
    "i8_symmetric_reduced": (-64, 63, True, True, dict(dtype=torch.qint8, symmetric=True,
                                                       quant_min=-64, quant_max=63)),
    "u8_symmetric": (0, 255, True, False, dict(dtype=torch.quint8, symmetric=True)),  # zero point 128
}


def _spec(observer: str, scheme: str, **kwargs) -> ObserverSpec:
    qmin, qmax, symmetric, signed, _ = SCHEMES[scheme]
    return ObserverSpec(observer=observer, qmin=qmin, qmax=qmax, symmetric=symmetric, signed=signed, **kwargs)


def _torch_observer(cls, scheme: str, per_channel: bool = False, **kwargs):
    qmin, qmax, _, _, options = SCHEMES[scheme]
    options = dict(options)
    symmetric = options.pop("symmetric", False)
    if per_channel:
        qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    else:
        qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    observer = cls(qscheme=qscheme, **options, **kwargs)
    assert (observer.quant_min, observer.quant_max) == (qmin, qmax)
    return observer


def _observe_both(ours, theirs, batches) -> None:
    for batch in batches:
        ours(batch)
        theirs(batch)


def _torch_qparams(observer) -> tuple:
    scale, zero_point = observer.calculate_qparams()
    if scale.numel() == 1 and not isinstance(observer, tq.PerChannelMinMaxObserver):
        return scale.item(), int(zero_point.item())
    return scale.tolist(), [int(z) for z in zero_point.tolist()]


def _batches(seed: int, kind: str) -> list[torch.Tensor]:
    """Calibration batches of different sizes (batch 1 included) from a few distributions."""
    g = torch.Generator().manual_seed(seed)
    sizes = [1, 4, 2, 3]
    if kind == "normal":
        return [torch.randn(n, 8, 5, generator=g) * (1 + i) for i, n in enumerate(sizes)]
    if kind == "positive":
        return [torch.rand(n, 8, 5, generator=g) * 3 + 0.5 for n in sizes]
    if kind == "negative":
        return [-torch.rand(n, 8, 5, generator=g) * 2 - 0.25 for n in sizes]
    if kind == "skewed":
        return [torch.relu(torch.randn(n, 8, 5, generator=g)) * 4 - 0.1 for n in sizes]
    raise AssertionError(kind)


def _sqnr_after(x: torch.Tensor, scale: float, zero_point: int, qmin: int, qmax: int) -> float:
    return sqnr(x, torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax))


# --------------------------------------------------------------------------- min/max observers vs torch.ao

@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("data", ["normal", "positive", "negative", "skewed"])
def test_minmax_matches_torch_exactly(scheme, data):
    ours, theirs = make_observer(_spec("minmax", scheme)), _torch_observer(tq.MinMaxObserver, scheme)
    _observe_both(ours, theirs, _batches(0, data))
    assert qparams(ours.spec, ours.stats()) == _torch_qparams(theirs)
    assert ours.stats() == {"min": theirs.min_val.item(), "max": theirs.max_val.item()}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("averaging_constant", [0.01, 0.3, 1.0])
def test_moving_minmax_matches_torch_exactly(scheme, averaging_constant):
    ours = make_observer(_spec("moving_minmax", scheme, averaging_constant=averaging_constant))
    theirs = _torch_observer(tq.MovingAverageMinMaxObserver, scheme, averaging_constant=averaging_constant)
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(1 + i % 3, 7, generator=g) * (0.1 + i % 5) + (i % 3 - 1) for i in range(60)]
    _observe_both(ours, theirs, batches)
    assert ours.stats() == {"min": theirs.min_val.item(), "max": theirs.max_val.item()}
    assert qparams(ours.spec, ours.stats()) == _torch_qparams(theirs)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("axis, shapes", [
    (0, [(6, 3, 3, 3)]),                                 # a conv weight
    (1, [(1, 5, 4, 4), (3, 5, 2, 7), (2, 5, 4, 4)]),     # activations: batch and spatial sizes change
    (2, [(2, 3, 4), (1, 2, 4)]),                         # the last axis
])
def test_per_channel_minmax_matches_torch_exactly(scheme, axis, shapes):
    ours = make_observer(_spec("per_channel_minmax", scheme, axis=axis))
    theirs = _torch_observer(tq.PerChannelMinMaxObserver, scheme, per_channel=True, ch_axis=axis)
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(*shape, generator=g) * (1 + i) + 0.3 for i, shape in enumerate(shapes)]
    _observe_both(ours, theirs, batches)
    scale, zero_point = qparams(ours.spec, ours.stats())
    assert isinstance(scale, list) and isinstance(zero_point, list) and len(scale) == shapes[0][axis]
    assert (scale, zero_point) == _torch_qparams(theirs)


def test_per_channel_of_a_1d_tensor_has_a_channel_per_element():
    """torch.ao's PerChannelMinMaxObserver fails on 1-d tensors (a bias); each element is a channel."""
    b = torch.tensor([0.5, -2.0, 0.0, 3.0])
    observer = make_observer(_spec("per_channel_minmax", "i8_symmetric", axis=0))
    observer(b)
    assert observer.stats() == {"min": b.tolist(), "max": b.tolist()}
    scales, zero_points = qparams(observer.spec, observer.stats())
    per_tensor = [qparams(_spec("minmax", "i8_symmetric"), {"min": v, "max": v}) for v in b.tolist()]
    assert list(zip(scales, zero_points)) == per_tensor


def test_per_channel_constant_and_zero_channels_match_torch():
    w = torch.randn(4, 3)
    w[1] = 0.0
    w[2] = 0.75
    w[3] = -2.5
    for scheme in ("u8_affine", "i8_symmetric", "i8_symmetric_narrow"):
        ours = make_observer(_spec("per_channel_minmax", scheme, axis=0))
        theirs = _torch_observer(tq.PerChannelMinMaxObserver, scheme, per_channel=True, ch_axis=0)
        _observe_both(ours, theirs, [w])
        assert qparams(ours.spec, ours.stats()) == _torch_qparams(theirs)


# --------------------------------------------------------------------------- histogram vs torch.ao

def _distribution(kind: str, n: int, g: torch.Generator) -> torch.Tensor:
    x = torch.randn(n, generator=g)
    if kind == "normal":
        return x
    if kind == "relu":
        return torch.relu(x)
    if kind == "heavy_tail":  # Laplace-like with a few outliers
        x = torch.sign(x) * torch.log1p(torch.rand(n, generator=g) * 40)
        x[:3] = torch.tensor([25.0, -18.0, 31.0])[:n]
        return x
    if kind == "bimodal":
        return torch.where(torch.rand(n, generator=g) < 0.3, x * 0.4 - 3, x + 2)
    if kind == "clipped":  # relu6: much of the mass in the last bin
        return torch.clamp(3 * x, 0, 6)
    raise AssertionError(kind)


DISTRIBUTIONS = ["normal", "relu", "heavy_tail", "bimodal", "clipped"]


def _histograms(scheme: str, batches: list[torch.Tensor]):
    ours = make_observer(_spec("histogram", scheme))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation chatter
        theirs = _torch_observer(tq.HistogramObserver, scheme)
        _observe_both(ours, theirs, batches)
        return ours, theirs, _torch_qparams(theirs)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_histogram_of_one_tensor_is_torchs(scheme, kind):
    """On one tensor both histograms are torch.histc's: the search makes the same decisions."""
    x = _distribution(kind, 20000, torch.Generator().manual_seed(3))
    ours, theirs, expected = _histograms(scheme, [x])
    assert ours.stats()["bins"] == theirs.histogram.tolist()
    assert qparams(ours.spec, ours.stats()) == expected


@pytest.mark.parametrize("scheme", ["u8_affine", "i8_symmetric", "u8_affine_reduced", "i8_symmetric_narrow"])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_histogram_with_growing_range_is_close_to_torch(scheme, kind, seed):
    """The range grows with every batch; old counts are re-binned differently from torch.ao's."""
    g = torch.Generator().manual_seed(seed)
    batches = [_distribution(kind, n, g) * (1 + 0.6 * i) - 0.2 * i for i, n in enumerate([6000, 1, 9000, 2500])]
    ours, _, (torch_scale, torch_zp) = _histograms(scheme, batches)
    scale, zero_point = qparams(ours.spec, ours.stats())
    assert scale == pytest.approx(torch_scale, rel=0.01)
    assert abs(zero_point - torch_zp) <= 1
    qmin, qmax = ours.spec.qmin, ours.spec.qmax
    x = torch.cat([b.flatten() for b in batches])
    assert _sqnr_after(x, scale, zero_point, qmin, qmax) >= _sqnr_after(x, torch_scale, torch_zp, qmin, qmax) - 0.1


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_search_on_torchs_own_histogram_gives_torchs_qparams(scheme, kind):
    """The reimplemented search makes torch.ao's decisions on any histogram, also one torch.ao
    re-binned as its range grew (fractional float32 counts): differences come from re-binning only."""
    g = torch.Generator().manual_seed(8)
    batches = [_distribution(kind, n, g) * (1 + 0.6 * i) - 0.2 * i for i, n in enumerate([6000, 1, 9000, 2500])]
    ours, theirs, expected = _histograms(scheme, batches)
    stats = {"min": theirs.min_val.item(), "max": theirs.max_val.item(), "bins": theirs.histogram.tolist()}
    assert qparams(ours.spec, stats) == expected


def test_histogram_counts_everything_when_the_range_grows():
    observer = make_observer(_spec("histogram", "u8_affine"))
    g = torch.Generator().manual_seed(5)
    batches = [torch.randn(1000, generator=g) * s + m for s, m in [(1, 0), (0.1, 0), (3, 1), (1, -9), (0.5, 0)]]
    for b in batches:
        observer(b)
    stats = observer.stats()
    x = torch.cat(batches)
    assert (stats["min"], stats["max"]) == (x.min().item(), x.max().item())
    assert len(stats["bins"]) == 2048 and min(stats["bins"]) >= 0
    assert sum(stats["bins"]) == pytest.approx(x.numel(), rel=1e-12)
    # re-binning keeps the mass where it was: the histogram's CDF stays within a bin of the data's
    edges = torch.linspace(stats["min"], stats["max"], 2049, dtype=torch.float64)[1:]
    cdf = torch.tensor(stats["bins"], dtype=torch.float64).cumsum(0)
    data_cdf = torch.searchsorted(x.double().sort().values, edges, right=True).double()
    lower = torch.cat([torch.zeros(1, dtype=torch.float64), data_cdf[:-1]])
    upper = torch.cat([data_cdf[1:], data_cdf[-1:]])
    assert bool(((cdf >= lower - 1e-6) & (cdf <= upper + 1e-6)).all())


def test_histogram_counts_low_precision_inputs_exactly():
    """torch.histc counts in the input's dtype (bfloat16 integers are exact only to 256)."""
    x = torch.zeros(5000, dtype=torch.bfloat16)
    x[:10] = 1.0
    observer = make_observer(_spec("histogram", "u8_affine"))
    observer(x)
    bins = observer.stats()["bins"]
    assert bins[0] == 4990 and bins[-1] == 10


# --------------------------------------------------------------------------- qparams semantics

def test_qparams_of_a_range_follow_torch_formulas():
    eps = torch.finfo(torch.float32).eps
    f32 = lambda v: torch.tensor(v, dtype=torch.float32).item()  # noqa: E731
    affine = _spec("minmax", "u8_affine")
    assert qparams(affine, {"min": -1.0, "max": 3.0}) == (f32(f32(4.0) / 255.0), 0 - round(-1.0 / f32(4 / 255)))
    assert qparams(affine, {"min": 0.5, "max": 2.0}) == (f32(2.0 / 255), 0)          # the range includes 0
    assert qparams(affine, {"min": -2.0, "max": -0.5}) == (f32(2.0 / 255), 255)
    assert qparams(affine, {"min": 0.0, "max": 0.0}) == (f32(eps), 0)                 # scale = max(scale, eps)
    symmetric = _spec("minmax", "i8_symmetric")
    assert qparams(symmetric, {"min": -1.0, "max": 3.0}) == (f32(3.0 / 127.5), 0)
    assert qparams(_spec("minmax", "i8_symmetric_narrow"), {"min": -4.0, "max": 3.0}) == (f32(4.0 / 127), 0)
    assert qparams(_spec("minmax", "u8_symmetric"), {"min": -1.0, "max": 3.0}) == (f32(3.0 / 127.5), 128)
    reduced_u8_symmetric = ObserverSpec(observer="minmax", qmin=0, qmax=127, symmetric=True, signed=False)
    assert qparams(reduced_u8_symmetric, {"min": -1.0, "max": 1.0})[1] == 64        # (qmin + qmax + 1) // 2
    custom_eps = ObserverSpec(observer="minmax", qmin=0, qmax=255, symmetric=False, signed=False, eps=1e-3)
    assert qparams(custom_eps, {"min": 0.0, "max": 0.01}) == (f32(1e-3), 0)


def test_unsigned_symmetric_zero_point_is_the_upper_midpoint():
    """torch.ao takes 128 on its default [0, 255] but rounds the midpoint down for an explicit
    quant_min/quant_max (127 on [0, 255]); qir always takes (qmin + qmax + 1) // 2."""
    x = torch.tensor([-1.0, 3.0])
    for qmax, ours_zp, torch_zp in [(255, 128, 127), (127, 64, 63)]:
        theirs = tq.MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric, quant_min=0, quant_max=qmax)
        theirs(x)
        spec = ObserverSpec(observer="minmax", qmin=0, qmax=qmax, symmetric=True, signed=False)
        scale, zero_point = qparams(spec, {"min": -1.0, "max": 3.0})
        assert (scale, zero_point) == (theirs.calculate_qparams()[0].item(), ours_zp)
        assert theirs.calculate_qparams()[1].item() == torch_zp


def test_qparams_accept_integers_in_statistics():
    spec = _spec("minmax", "u8_affine")
    assert qparams(spec, {"min": -1, "max": 2}) == qparams(spec, {"min": -1.0, "max": 2.0})


@pytest.mark.parametrize("stats, message", [
    ({"min": 1.0}, "keys"),
    ({"min": 1.0, "max": 2.0, "extra": 0}, "keys"),
    ({"min": 2.0, "max": 1.0}, "above"),
    ({"min": float("nan"), "max": 1.0}, "finite"),
    ({"min": -float("inf"), "max": 1.0}, "finite"),
    ({"min": "0", "max": 1.0}, "finite"),
    ({"min": 0.0, "max": 1e39}, "float32"),
])
def test_qparams_reject_bad_statistics(stats, message):
    with pytest.raises(ValueError, match=message):
        qparams(_spec("minmax", "u8_affine"), stats)


def test_qparams_reject_bad_histogram_and_channel_statistics():
    histogram = _spec("histogram", "u8_affine")
    with pytest.raises(ValueError, match="bins"):
        qparams(histogram, {"min": 0.0, "max": 1.0, "bins": [1.0] * 10})
    with pytest.raises(ValueError, match="non-negative"):
        qparams(histogram, {"min": 0.0, "max": 1.0, "bins": [-1.0] + [1.0] * 2047})
    with pytest.raises(ValueError, match="keys"):
        qparams(histogram, {"min": 0.0, "max": 1.0})
    per_channel = _spec("per_channel_minmax", "i8_symmetric", axis=0)
    with pytest.raises(ValueError, match="maxima"):
        qparams(per_channel, {"min": [0.0, 1.0], "max": [1.0]})
    with pytest.raises(ValueError, match="above"):
        qparams(per_channel, {"min": [0.0, 3.0], "max": [1.0, 2.0]})
    with pytest.raises(ValueError, match="list"):
        qparams(per_channel, {"min": 0.0, "max": 1.0})


@pytest.mark.parametrize("kwargs, message", [
    (dict(observer="kl"), "unknown observer"),
    (dict(qmin=1, qmax=255), "contain 0"),
    (dict(qmin=0, qmax=0), "contain 0"),
    (dict(qmin=-128, qmax=127, signed=False), "unsigned"),
    (dict(observer="per_channel_minmax"), "axis"),
    (dict(axis=0), "axis"),
    (dict(averaging_constant=0.0), "averaging_constant"),
    (dict(bins=0), "bins"),
    (dict(eps=0.0), "eps"),
])
def test_spec_is_validated(kwargs, message):
    fields = dict(observer="minmax", qmin=0, qmax=255, symmetric=False, signed=False) | kwargs
    with pytest.raises(ValueError, match=message):
        ObserverSpec(**fields)


def test_spec_is_frozen_and_hashable():
    spec = _spec("histogram", "u8_affine")
    with pytest.raises(AttributeError):
        spec.qmin = 1  # type: ignore[misc]
    assert {spec: 1}[_spec("histogram", "u8_affine")] == 1
    assert (spec.bins, spec.averaging_constant, spec.eps) == (2048, 0.01, torch.finfo(torch.float32).eps)


# --------------------------------------------------------------------------- statistics as plain data

SPECS = {
    "minmax": _spec("minmax", "u8_affine"),
    "moving_minmax": _spec("moving_minmax", "i8_symmetric", averaging_constant=0.2),
    "histogram": _spec("histogram", "u8_affine"),
    "per_channel_minmax": _spec("per_channel_minmax", "i8_symmetric", axis=1),
}
CLASSES = {"minmax": MinMaxObserver, "moving_minmax": MovingAverageMinMaxObserver,
           "histogram": HistogramObserver, "per_channel_minmax": PerChannelMinMaxObserver}


def _plain(value) -> bool:
    if isinstance(value, list):
        return all(type(v) is float for v in value)
    return type(value) in (float, int)


@pytest.mark.parametrize("kind", SPECS)
def test_stats_round_trip_through_json(kind):
    spec = SPECS[kind]
    observer = make_observer(spec)
    assert type(observer) is CLASSES[kind] and observer.spec is spec
    g = torch.Generator().manual_seed(6)
    first, second = [torch.randn(2, 4, 3, generator=g) * 2 for _ in range(2)], torch.randn(3, 4, 5, generator=g) * 5
    for b in first:
        observer(b)
    stats = observer.stats()
    assert stats and all(isinstance(k, str) and _plain(v) for k, v in stats.items())
    text = json.dumps(stats, allow_nan=False)
    loaded = json.loads(text)
    assert loaded == stats
    assert qparams(spec, loaded) == qparams(spec, stats)
    # a fresh observer resumes from loaded statistics as if it had seen the data itself
    resumed = make_observer(spec)
    resumed.load_stats(loaded)
    assert resumed.stats() == stats
    observer(second)
    resumed(second)
    assert resumed.stats() == observer.stats()
    resumed.load_stats({})
    assert resumed.stats() == {}


def test_stats_formats():
    x = torch.tensor([[-1.0, 2.0], [0.5, 4.0]])
    observers = {kind: make_observer(spec) for kind, spec in SPECS.items()}
    for observer in observers.values():
        observer(x)
    assert observers["minmax"].stats() == {"min": -1.0, "max": 4.0}
    assert observers["moving_minmax"].stats() == {"min": -1.0, "max": 4.0}
    assert observers["per_channel_minmax"].stats() == {"min": [-1.0, 2.0], "max": [0.5, 4.0]}
    histogram = observers["histogram"].stats()
    assert set(histogram) == {"min", "max", "bins"} and (histogram["min"], histogram["max"]) == (-1.0, 4.0)
    assert histogram["bins"] == torch.histc(x, 2048, min=-1.0, max=4.0).tolist()


# --------------------------------------------------------------------------- degenerate calibration

@pytest.mark.parametrize("kind", SPECS)
def test_no_data_means_no_stats_and_no_qparams(kind):
    observer = make_observer(SPECS[kind])
    observer(torch.empty(0, 4))
    observer(torch.arange(8).reshape(2, 4))
    observer(torch.ones(2, 4, dtype=torch.bool))
    assert observer.stats() == {}
    with pytest.raises(ValueError, match="saw no data"):
        qparams(observer.spec, observer.stats())


@pytest.mark.parametrize("kind", SPECS)
def test_passes_input_through_unchanged(kind):
    observer = make_observer(SPECS[kind])
    for x in (torch.randn(2, 4, requires_grad=True), torch.arange(8).reshape(2, 4), torch.empty(0, 4)):
        assert observer(x) is x
    y = observer(torch.randn(2, 4, requires_grad=True) * 2)
    y.sum().backward()  # observing does not interfere with autograd


@pytest.mark.parametrize("kind", SPECS)
def test_ignores_empty_integer_and_bool_tensors_between_data(kind):
    spec = SPECS[kind]
    x = torch.randn(2, 4, 3)
    reference, observer = make_observer(spec), make_observer(spec)
    reference(x)
    for t in (torch.empty(0, 4, 3), x, torch.empty(2, 4, 0), torch.full((2, 4, 3), 100, dtype=torch.int64),
              torch.ones(2, 4, 3, dtype=torch.bool)):
        observer(t)
    assert observer.stats() == reference.stats()


@pytest.mark.parametrize("kind", SPECS)
def test_non_finite_values_are_ignored_with_one_warning(kind):
    spec = SPECS[kind]
    g = torch.Generator().manual_seed(7)
    clean = [torch.randn(2, 4, 3, generator=g) for _ in range(3)]
    dirty = [c.clone() for c in clean]
    dirty[0][0, 0, 0] = float("nan")
    dirty[1][1, 2, 1] = float("inf")
    dirty[2][0, 1, 2] = -float("inf")
    dirty[2][1, 3, 0] = float("nan")
    reference, observer = make_observer(spec), make_observer(spec)
    observer.name = "obs7"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for c, d in zip(clean, dirty):
            reference(c[torch.isfinite(d)].reshape(-1) if kind != "per_channel_minmax" else c)
            observer(d)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "'obs7'" in messages[0] and "NaN" in messages[0]
    if kind == "per_channel_minmax":
        # each channel's range is that of its finite values
        x = torch.cat(dirty, dim=0).transpose(0, 1).reshape(4, -1)
        lo = [row[torch.isfinite(row)].min().item() for row in x]
        hi = [row[torch.isfinite(row)].max().item() for row in x]
        assert observer.stats() == {"min": lo, "max": hi}
    else:
        assert observer.stats() == reference.stats()
    json.dumps(observer.stats(), allow_nan=False)


def test_unnamed_observer_warning_names_its_kind_and_all_non_finite_input_is_no_data():
    observer = make_observer(SPECS["minmax"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        observer(torch.tensor([float("nan"), float("inf")]))
        observer(torch.full((3,), float("nan")))
    assert [str(w.message).split(" ignored")[0] for w in caught] == ["a minmax observer"]
    assert observer.stats() == {}


def test_each_observer_instance_warns_once():
    observers = [make_observer(SPECS["histogram"]) for _ in range(3)]
    for i, observer in enumerate(observers):
        observer.name = f"obs{i}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(4):
            for observer in observers:
                observer(torch.tensor([1.0, float("nan"), 2.0]))
    assert sorted(str(w.message).split()[1] for w in caught) == ["'obs0'", "'obs1'", "'obs2'"]


def test_finite_data_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for spec in SPECS.values():
            observer = make_observer(spec)
            observer(torch.randn(3, 4, 2))
            observer(torch.zeros(1, 4, 2))
            qparams(spec, observer.stats())


def test_per_channel_channel_without_finite_values_reports_zero_range():
    observer = make_observer(_spec("per_channel_minmax", "u8_affine", axis=1))
    x = torch.randn(3, 3)
    x[:, 1] = float("nan")
    with pytest.warns(RuntimeWarning):
        observer(x)
    stats = observer.stats()
    assert stats["min"][1] == stats["max"][1] == 0.0
    assert stats["min"][0] == x[:, 0].min().item()
    scale, zero_point = qparams(observer.spec, stats)
    assert len(scale) == 3 and all(math.isfinite(s) and s > 0 for s in scale)


def test_per_channel_rejects_changing_channels_and_bad_axis():
    observer = make_observer(_spec("per_channel_minmax", "i8_symmetric", axis=1))
    observer.name = "obs9"
    observer(torch.randn(2, 4))
    with pytest.raises(ValueError, match="'obs9'.*4 channels"):
        observer(torch.randn(2, 5))
    with pytest.raises(ValueError, match="axis 1 is out of range"):
        observer(torch.randn(4))
    observer(torch.randn(7, 4))  # a different batch size is fine


@pytest.mark.parametrize("kind", ["minmax", "moving_minmax", "histogram"])
@pytest.mark.parametrize("value", [0.0, 0.75, -3.5])
@pytest.mark.parametrize("scheme", ["u8_affine", "i8_symmetric", "u8_symmetric"])
def test_constant_tensors_match_torch_minmax(kind, value, scheme):
    """A constant range [c, c]: the histogram's search has nothing to choose; all match torch.ao's MinMaxObserver."""
    observer = make_observer(_spec(kind, scheme))
    theirs = _torch_observer(tq.MinMaxObserver, scheme)
    for n in (1, 5, 3):
        _observe_both(observer, theirs, [torch.full((n, 2), value)])
    assert qparams(observer.spec, observer.stats()) == _torch_qparams(theirs)
    scale, _ = qparams(observer.spec, observer.stats())
    assert scale > 0


def test_histogram_from_constant_to_a_range():
    observer = make_observer(_spec("histogram", "u8_affine"))
    observer(torch.full((10,), 2.0))
    assert observer.stats()["bins"][0] == 10.0
    observer(torch.tensor([0.0, 4.0]))
    stats = observer.stats()
    assert (stats["min"], stats["max"]) == (0.0, 4.0)
    assert sum(stats["bins"]) == 12.0 and stats["bins"][1024] == 10.0


def test_low_precision_and_double_inputs():
    x = torch.randn(4, 6) * 3
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        y = x.to(dtype)
        for kind in ("minmax", "moving_minmax"):
            ours = make_observer(_spec(kind, "u8_affine"))
            theirs = _torch_observer(tq.MinMaxObserver, "u8_affine")
            _observe_both(ours, theirs, [y])
            assert qparams(ours.spec, ours.stats()) == _torch_qparams(theirs)
        per_channel = make_observer(_spec("per_channel_minmax", "i8_symmetric", axis=0))
        per_channel(y)
        assert per_channel.stats()["max"] == y.amax(dim=1).double().tolist()


# --------------------------------------------------------------------------- inside a calibration module

def test_observers_run_inside_an_fx_graph_module():
    root = torch.nn.Module()
    root.observers = torch.nn.Module()
    for kind, spec in SPECS.items():
        root.observers.add_module(kind, make_observer(spec))
    graph = fx.Graph()
    x = graph.placeholder("x")
    y = x
    for kind in SPECS:
        y = graph.call_module(f"observers.{kind}", (y,))
    graph.output(graph.call_function(torch.relu, (y,)))
    gm = fx.GraphModule(root, graph)
    batches = [torch.randn(n, 4, 3) for n in (1, 2, 5)]
    for b in batches:
        assert torch.equal(gm(b), torch.relu(b))
    everything = torch.cat(batches)
    assert gm.observers.minmax.stats() == {"min": everything.min().item(), "max": everything.max().item()}
    for kind, spec in SPECS.items():
        assert qparams(spec, getattr(gm.observers, kind).stats())
    assert not gm.state_dict()  # statistics travel through stats(), not the state dict


# -- the histogram's range search, against its one-observer-at-a-time form ----------------------

def _reference_l2_range_search(lo: float, hi: float, counts: list[float], *, levels: int):
    """The search as qir computed it before its searches ran side by side (kept verbatim as
    the independent reference): one histogram, one error evaluation per step."""
    from bisect import bisect_left, bisect_right
    from itertools import accumulate

    from qir.observers import _f32

    def error_of(hist, width, start, end):
        step = width * (end - start + 1) / levels
        begin = (torch.arange(hist.numel(), dtype=torch.float64) - start) * width
        finish = begin + width
        first = torch.clamp(torch.floor(begin / step), 0, levels - 1)
        last = torch.clamp(torch.floor(finish / step), 0, levels - 1)
        half = step / 2
        to_begin = begin - (first + 0.5) * step
        to_finish = finish - (last + 0.5) * step
        cubes = (half ** 3 - to_begin ** 3) + (last - first - 1) * (2 * half ** 3) + (to_finish ** 3 + half ** 3)
        return float((hist * cubes).sum()) / (3 * width)

    lo32, hi32 = torch.tensor([lo], dtype=torch.float32), torch.tensor([hi], dtype=torch.float32)
    nbins = len(counts)
    width = (hi32.item() - lo32.item()) / nbins
    if width == 0.0:
        return lo32, hi32
    hist = torch.tensor(counts, dtype=torch.float64)
    cumulative = list(accumulate(counts))
    total = cumulative[-1]
    step = 1e-5
    alpha, beta = 0.0, 1.0
    start, end = 0, nbins - 1
    best = math.inf
    while alpha < beta and start < end:
        next_alpha = alpha + step
        left = min(end, max(start, bisect_left(cumulative, _f32(next_alpha * total))))
        if left == start:
            skip = int((beta - cumulative[end] / total) / step) - 4
            if skip > 0:
                beta -= skip * step
            while alpha < beta and cumulative[end] <= _f32((beta - step) * total):
                beta -= step
            if not alpha < beta:
                break
        next_beta = beta - step
        right = max(start, min(end, bisect_right(cumulative, _f32(next_beta * total)) - 1))
        if left - start > end - right:
            next_start, next_end, alpha = left, end, next_alpha
        else:
            next_start, next_end, beta = start, right, next_beta
        error = error_of(hist, width, next_start, next_end)
        if error > best:
            break
        best, start, end = error, next_start, next_end
    bin_width = (hi32 - lo32) / nbins
    return lo32 + bin_width * start, lo32 + bin_width * (end + 1)


def _random_histograms(count: int, seed: int):
    """Histograms of the shapes calibration gives: bell curves, skewed and heavy-tailed data,
    ReLU outputs (a spike at zero), sparse counts, fractional counts from a grown range, a
    single value; 2048 bins mostly, some of other sizes; 8 and 16-bit levels."""
    g = torch.Generator().manual_seed(seed)
    histograms = []
    for index in range(count):
        bins = (2048, 2048, 2048, 256, 100)[index % 5]
        size = int(torch.randint(1, 20000, (1,), generator=g))
        kind = index % 6
        x = torch.randn(size, generator=g, dtype=torch.float64)
        if kind == 1:
            x = x.exp()
        elif kind == 2:
            x = x / torch.rand(size, generator=g, dtype=torch.float64).clamp(min=1e-3)
        elif kind == 3:
            x = x.clamp(min=0)
        elif kind == 4:
            x = x[: int(torch.randint(1, 40, (1,), generator=g))] * 100
        lo, hi = float(x.min()), float(x.max())
        counts = torch.histc(x, bins, min=lo, max=hi) if lo < hi else torch.eye(1, bins, dtype=torch.float64)[0] * size
        if kind == 5:
            counts = counts * torch.rand(bins, generator=g, dtype=torch.float64)  # fractional counts
            counts[0] += 1.0
        levels = 65536 if index % 7 == 0 else 256
        histograms.append((lo, hi, counts.double().tolist(), levels))
    return histograms


def test_range_searches_side_by_side_give_the_ranges_of_one_at_a_time_bit_for_bit():
    """The searches run together (one batched error evaluation per round) and decide exactly
    as the one-histogram search did, on each of a set of random histograms."""
    from qir.observers import _l2_range_searches

    histograms = _random_histograms(120, seed=11)
    found_lo, found_hi = _l2_range_searches([(lo, hi, torch.tensor(c, dtype=torch.float64), levels)
                                             for lo, hi, c, levels in histograms])
    assert found_lo.dtype == found_hi.dtype == torch.float32
    for (lo, hi, counts, levels), got_lo, got_hi in zip(histograms, found_lo.split(1), found_hi.split(1)):
        want_lo, want_hi = _reference_l2_range_search(lo, hi, counts, levels=levels)
        assert torch.equal(got_lo, want_lo) and torch.equal(got_hi, want_hi)


def test_qparams_many_gives_each_observers_qparams_and_errors_in_place():
    from qir.observers import qparams_many

    histogram, per_channel = _spec("histogram", "u8_affine"), _spec("per_channel_minmax", "i8_symmetric", axis=0)
    observer = make_observer(histogram)
    observer(torch.randn(64, 64, generator=torch.Generator().manual_seed(2)))
    observed = [(histogram, observer.stats()), (histogram, {}), (per_channel, {"min": [-1.0, 0.0], "max": [1.0, 2.0]})]
    results = qparams_many(observed)
    assert results[0] == qparams(*observed[0]) and results[2] == qparams(*observed[2])
    assert isinstance(results[1], ValueError) and "saw no data" in str(results[1])


def test_qparams_many_refuses_each_invalid_statistic_as_qparams_does():
    """The values are checked all at once: each invalid one among valid ones still gets the
    error `qparams` gives it alone, and the valid ones their parameters."""
    from qir.observers import qparams_many

    histogram, per_channel = _spec("histogram", "u8_affine"), _spec("per_channel_minmax", "i8_symmetric", axis=0)
    observer = make_observer(histogram)
    observer(torch.randn(64, 64, generator=torch.Generator().manual_seed(2)))
    good = observer.stats(tensors=True)
    bins = good["bins"]
    tensor = partial(torch.tensor, dtype=torch.float64)
    bad_histograms = [dict(good, bins=bins.clone().index_fill_(0, torch.tensor([3]), -1.0)),
                      dict(good, bins=torch.zeros_like(bins)),
                      dict(good, bins=bins.clone().index_fill_(0, torch.tensor([0]), math.inf)),
                      dict(good, bins=bins.clone().index_fill_(0, torch.tensor([5]), 1e39)),  # inf in float32
                      dict(good, bins=bins.clone().index_fill_(0, torch.tensor([7]), math.nan))]
    bad_channels = [{"min": tensor([-1.0, 3.0]), "max": tensor([1.0, 2.0])},
                    {"min": tensor([-1.0, 0.0]), "max": tensor([1.0, 1e39])},
                    {"min": tensor([1.0 + 1e-12]), "max": tensor([1.0])}]  # equal in float32 only
    observed = [(histogram, good), *((histogram, b) for b in bad_histograms),
                (per_channel, {"min": tensor([-1.0, 0.0]), "max": tensor([1.0, 2.0])}),
                *((per_channel, b) for b in bad_channels)]
    results = qparams_many(observed)
    for (spec, stats), result in zip(observed, results):
        try:
            alone = qparams(spec, stats)
        except ValueError as err:
            assert isinstance(result, ValueError) and str(result) == str(err)
        else:
            assert result == alone
    assert sum(isinstance(r, ValueError) for r in results) == 8


def test_qparams_many_computes_each_observer_as_alone_bit_for_bit():
    """Observers of every kind and scheme at once, their parameters computed together (one
    `_calculate_qparams` per arithmetic), give each the parameters it gets alone."""
    from qir.observers import qparams_many

    g = torch.Generator().manual_seed(5)
    observed = []
    for index in range(60):
        scheme = sorted(SCHEMES)[index % len(SCHEMES)]
        kind = ("minmax", "moving_minmax", "histogram", "per_channel_minmax")[index % 4]
        spec = _spec(kind, scheme, **({"axis": 0} if kind == "per_channel_minmax" else {}))
        observer = make_observer(spec)
        observer(torch.randn(8, 16, generator=g) * (index + 1) + index % 3)
        observed.append((spec, observer.stats()))
    together = qparams_many(observed)
    assert together == [qparams(spec, stats) for spec, stats in observed]
    assert all(type(s) is float and type(z) is int for s, z in together if not isinstance(s, list))


@pytest.mark.parametrize("kind", ["minmax", "histogram", "per_channel_minmax", "per_group_minmax"])
def test_statistics_as_tensors_are_the_same_statistics(kind):
    """`stats(tensors=True)` gives the lists as float64 tensors, which become the same IR
    attribute and load as the same statistics."""
    from qir.observation import stats_to_attr

    options = {"per_channel_minmax": {"axis": 0}, "per_group_minmax": {"axis": 0, "group_size": 4}}.get(kind, {})
    observer = make_observer(_spec(kind, "i8_symmetric", **options))
    observer(torch.randn(6, 8, generator=torch.Generator().manual_seed(3)))
    as_tensors = observer.stats(tensors=True)
    assert all(isinstance(v, float) or (isinstance(v, torch.Tensor) and v.dtype == torch.float64)
               for v in as_tensors.values())
    assert stats_to_attr(as_tensors) == stats_to_attr(observer.stats())
    again = make_observer(observer.spec)
    again.load_stats(as_tensors)
    assert again.stats() == observer.stats()


@pytest.mark.parametrize("values", [40, 100_000])
def test_errors_of_sparse_and_dense_histograms_are_those_of_every_bin(values):
    """Histograms of few values (most bins empty: only occupied bins are evaluated) and of many
    (every bin evaluated) give the errors of evaluating every bin of each histogram alone."""
    from qir.observers import _bin_cubes, _quantization_errors

    g = torch.Generator().manual_seed(7)
    ranges = []
    for index in range(40):
        x = torch.randn(values, generator=g, dtype=torch.float64) * (index + 1)
        counts = torch.histc(x, 2048, min=float(x.min()), max=float(x.max()))
        start, end = index * 7, 2047 - index * 5
        ranges.append((counts, float(x.max() - x.min()) / 2048, start, end, 256 if index % 3 else 65536))
    for (counts, width, start, end, levels), got in zip(ranges, _quantization_errors(ranges)):
        step = width * (end - start + 1) / levels
        columns = torch.tensor([(start, width, step, levels - 1, (step / 2) ** 3, 2 * (step / 2) ** 3)],
                               dtype=torch.float64).T[:, :, None]
        every_bin = (counts * _bin_cubes(torch.arange(2048, dtype=torch.float64), *columns)).sum(1).item()
        assert got == every_bin / (3 * width)


# -- observe_each: weights observed together ------------------------------------------------


def _bits(value) -> object:
    """A statistic as its exact bits: a float's (the sign of a zero counts), a tensor's bytes."""
    if isinstance(value, torch.Tensor):
        return (value.dtype, tuple(value.shape), value.numpy().tobytes())
    return struct.pack("<d", value)


def _alone(spec: ObserverSpec, x: torch.Tensor):
    observer = make_observer(spec)
    try:
        observer(x)
    except ValueError as err:
        return ("error", str(err))
    return {key: _bits(value) for key, value in observer.stats(tensors=True).items()}


def _weights() -> list[torch.Tensor]:
    """Weights of several shapes and dtypes, some alike (stacked together), with the cases the
    batch hands to an observer of their own: non-finite values, zero extremes of either sign,
    empty and integer tensors."""
    g = torch.Generator().manual_seed(0)
    weights = [torch.randn(shape, generator=g) for shape in [(8, 16)] * 4 + [(6, 4, 3, 3)] * 3 + [(5,)] * 2 + [()]]
    weights += [torch.randn(8, 16, generator=g).to(dtype) for dtype in (torch.float16, torch.bfloat16, torch.float64)]
    weights += [torch.randn(8, 16, generator=g, dtype=torch.float64)]
    odd = [torch.randn(8, 16, generator=g) for _ in range(5)]
    odd[0][2, 3] = math.nan
    odd[1][4, 0] = -math.inf
    odd[2][1] = odd[2][1].abs()
    odd[2][1, :3] = 0.0  # a channel whose minimum is zero
    odd[3].zero_()
    odd[3][0, :4] = -0.0  # zeros of both signs: which one a reduction keeps depends on its order
    odd[4][:, 0] = -odd[4][:, 0].abs() - 1
    odd[4][0] = -odd[4][0].abs()
    odd[4][0, 5] = -0.0  # a channel whose maximum is a negative zero
    return weights + odd + [torch.empty(0, 16), torch.arange(12).reshape(3, 4)]


@pytest.mark.parametrize("observer, options", [
    ("minmax", {}), ("moving_minmax", {}), ("learned", {}), ("histogram", dict(bins=64)),
    ("per_channel_minmax", dict(axis=0)), ("per_channel_minmax", dict(axis=1)),
    ("per_channel_minmax", dict(axis=-1)), ("per_group_minmax", dict(axis=0, group_size=4)),
])
def test_observe_each_records_what_each_observer_records(observer, options):
    """Statistics computed for many weights together are bit for bit those a fresh observer
    records from each weight alone, or the same error, or the same warning."""
    spec = _spec(observer, "i8_symmetric", **options)
    weights = _weights()
    with warnings.catch_warnings(record=True) as alone_warnings:
        warnings.simplefilter("always")
        expected = [_alone(spec, w) for w in weights]
    with warnings.catch_warnings(record=True) as batch_warnings:
        warnings.simplefilter("always")
        found = observe_each(spec, weights)
    got = [("error", str(s)) if isinstance(s, ValueError) else {k: _bits(v) for k, v in s.items()} for s in found]
    assert got == expected
    assert [str(w.message) for w in batch_warnings] == [str(w.message) for w in alone_warnings]


@pytest.mark.filterwarnings("ignore:a per_channel_minmax observer ignored:RuntimeWarning")
def test_observe_each_stacks_a_bounded_number_of_bytes(monkeypatch):
    """Same-shaped weights are stacked in runs of a bounded size (a stack is a copy): split into
    runs, or each weight alone, the statistics are the same."""
    import qir.observers as observers

    spec = _spec("per_channel_minmax", "i8_symmetric", axis=0)
    weights = _weights()
    whole = [{k: _bits(v) for k, v in s.items()} if isinstance(s, dict) else str(s)
             for s in observe_each(spec, weights)]
    for limit in (8 * 16 * 4 * 3, 1):  # three 8x16 float32 weights a run; one
        monkeypatch.setattr(observers, "_STACKED_BYTES", limit)
        runs = [{k: _bits(v) for k, v in s.items()} if isinstance(s, dict) else str(s)
                for s in observe_each(spec, weights)]
        assert runs == whole
