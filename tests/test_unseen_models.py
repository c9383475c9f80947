"""End to end on models unlike the zoo's, from a robustness sweep over model families:
quantize for every native backend, run on fresh inputs, compare with the float model.

Each test of the first part pins a bug the sweep found (unbatched convolutions, channels-last
max-pooling on the reference backend, float64/float16/bfloat16 models, copying and pickling
lowered modules); the last part keeps a few of the sweep's families running."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._pytree import tree_flatten

import qir
from helpers import INT8_BACKENDS as BACKENDS
from peers import sqnr
from qir.errors import PassFailure


def _quantize(model, make_inputs, backend, batches=4, **kwargs):
    torch.manual_seed(0)
    return qir.quantize(model, make_inputs(), calibration=[make_inputs() for _ in range(batches)],
                        backend=backend, **kwargs)


def _assert_tracks_float(model, quantized, inputs, min_sqnr=25.0):
    with torch.no_grad():
        expected, expected_spec = tree_flatten(model(*inputs))
        got, got_spec = tree_flatten(quantized(*inputs))
    assert expected_spec == got_spec
    for i, (e, g) in enumerate(zip(expected, got)):
        assert g.shape == e.shape and g.dtype == e.dtype, f"output {i}: {g.shape} {g.dtype} for {e.shape} {e.dtype}"
        if e.is_floating_point():
            assert sqnr(e, g) > min_sqnr, f"output {i}: SQNR {sqnr(e, g):.1f} dB"
        else:  # indices of maxima: a near tie may flip
            assert (e != g).sum() <= max(1, e.numel() // 10), f"output {i}: {g} for {e}"


# --------------------------------------------------------------------------
# Unbatched convolutions: canonicalize makes them convolutions of a batch of one.
# --------------------------------------------------------------------------


class UnbatchedConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.c2 = nn.Conv2d(3, 4, 3, padding=1)
        self.c1 = nn.Conv1d(3, 4, 3)
        self.t2 = nn.ConvTranspose2d(4, 2, 2, stride=2)

    def forward(self, image, signal):  # C x H x W and C x L: no batch dimension
        y = F.relu(self.c2(image))
        return self.t2(y), self.c1(signal)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unbatched_convolutions(backend):
    """x86 failed at run time ("negative dimension") and onednn in lowering (a 3-D input
    prepacked as a conv1d's) on a Conv2d called on a C x H x W tensor."""
    model = UnbatchedConvs().eval()
    make = lambda: (torch.randn(3, 6, 6), torch.randn(3, 10))  # noqa: E731
    quantized = _quantize(model, make, backend)
    _assert_tracks_float(model, quantized, make())


# --------------------------------------------------------------------------
# Channels-last inputs: torch's integer max_pool2d/3d kernels fail on channels-last storage.
# --------------------------------------------------------------------------


class ConvPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.c3 = nn.Conv3d(2, 4, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x, v):
        y = F.max_pool2d(F.relu(self.c(x)), 2, ceil_mode=True)  # 16 x 16 > 255 elements per channel
        return self.head(y), F.max_pool3d(F.relu(self.c3(v)), 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last_inputs(backend):
    model = ConvPool().eval()
    make = lambda: (torch.randn(2, 3, 16, 16).to(memory_format=torch.channels_last),  # noqa: E731
                    torch.randn(1, 2, 8, 8, 8).to(memory_format=torch.channels_last_3d))
    quantized = _quantize(model, make, backend)
    _assert_tracks_float(model, quantized, make())


# --------------------------------------------------------------------------
# Models computing in another float type than float32.
# --------------------------------------------------------------------------


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.relu(self.c(x)).mean((2, 3)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_model_in_another_float_type_is_a_clean_error(dtype):
    """Not a convert pass that leaves invalid IR (a quant.qcast of f64 to a type expressing f32):
    annotate names the op, its type and what to do."""
    model = Small().eval().to(dtype)
    x = torch.randn(2, 3, 6, 6, dtype=dtype)
    with pytest.raises(PassFailure, match=r"pass 'annotate' failed: .*conv2d.* computes in .*float32"):
        qir.quantize(model, (x,), calibration=[(x,)])
    assert next(model.parameters()).dtype == dtype


class Float64Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.fc64 = nn.Linear(8, 8).double()
        self.out = nn.Linear(8, 4)

    def forward(self, x):
        y = F.relu(self.fc(x))
        z = self.fc64(y.double()).float()
        return self.out(z + y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_part_stays_float(backend):
    model = Float64Branch().eval()
    make = lambda: (torch.randn(4, 8),)  # noqa: E731
    quantized = _quantize(model, make, backend)
    _assert_tracks_float(model, quantized, make())
    text = str(quantized.qir_program)
    assert 'aten.op "linear.default"' in text and "xf64>" in text  # fc64 as it was


# --------------------------------------------------------------------------
# Copies: deepcopy and pickling (torch.save) of what each stage returns.
# --------------------------------------------------------------------------


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = F.relu(self.bn(self.c(x)))
        y = F.relu(self.c2(y) + y)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


def _torch_save_load(module):
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lowered_module_copies_and_pickles(backend):
    """x86 and onednn modules hold oneDNN's opaque packed weights, qnnpack's a packed-params
    object: deepcopy and torch.save failed ("Cannot access storage of OpaqueTensorImpl")."""
    model = CNN().eval()
    make = lambda: (torch.randn(2, 3, 8, 8),)  # noqa: E731
    lowered = _quantize(model, make, backend)
    x = make()
    _assert_tracks_float(model, lowered, x)
    with torch.no_grad():
        expected = lowered(*x)
    for copied in (copy.deepcopy(lowered), _torch_save_load(lowered), pickle.loads(pickle.dumps(lowered))):
        assert copied.qir_program.stage == "lowered"
        with torch.no_grad():
            assert torch.equal(copied(*x), expected)


def test_copied_prepared_and_quantized_modules_keep_their_program():
    """GraphModule's deepcopy keeps only what the graph reads: a copied calibration module could
    no longer be converted ("convert expects the module returned by qir.prepare")."""
    model = CNN().eval()
    x = torch.randn(2, 3, 8, 8)
    prepared = qir.prepare(model, (x,))
    prepared(x)
    copied = copy.deepcopy(prepared)
    quantized = qir.convert(copied)
    _assert_tracks_float(model, quantized, (x,))
    lowered = qir.lower(pickle.loads(pickle.dumps(quantized)), "x86")
    _assert_tracks_float(model, lowered, (x,))


# --------------------------------------------------------------------------
# A few more of the sweep's families, on every backend.
# --------------------------------------------------------------------------


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 12)
        self.gru = nn.GRU(12, 16, batch_first=True)
        self.rnn = nn.RNN(16, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        y, h = self.gru(F.relu(self.inp(x)))
        y, _ = self.rnn(y)
        return self.fc(y[:, -1]) + h[0].sum(-1, keepdim=True)


class Norms(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(4, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.ln = nn.LayerNorm([8, 6, 6])
        self.c2 = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.c2(self.ln(self.inorm(F.relu(self.gn(self.c(x))))))


class ConvGeometry(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 8, 3, padding=1, groups=4)  # depthwise, multiplier 2
        self.dil = nn.Conv2d(8, 8, 3, dilation=2, padding=2)
        self.same = nn.Conv2d(8, 8, 4, padding="same", bias=False)
        self.reflect = nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect")
        self.circular = nn.Conv2d(8, 4, 3, padding=1, padding_mode="circular")
        self.up = nn.ConvTranspose3d(1, 2, 2, stride=2)

    def forward(self, x):
        y = F.relu(self.dw(x))
        y = self.circular(self.reflect(self.same(self.dil(y))))
        return y, self.up(y[:, :1].unsqueeze(1)).amax((2, 3, 4))


class Resampling(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 12, 3, padding=1)
        self.ps = nn.PixelShuffle(2)
        self.c2 = nn.Conv2d(3, 4, 3, padding=1)
        self.c1 = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x):
        y = F.relu(self.c2(self.ps(self.c(x))))
        a = F.interpolate(y, scale_factor=0.5, mode="bilinear")
        b = F.interpolate(a, scale_factor=2, mode="nearest")
        s = self.c1(F.pad(y.mean(2), (1, 1), mode="reflect"))
        return torch.cat([b, y], 1), F.adaptive_avg_pool1d(s, 3) + F.adaptive_max_pool1d(s, 3)


class NestedOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)
        self.emb = nn.Embedding(10, 8)
        self.tied = nn.Linear(8, 10, bias=False)
        self.tied.weight = self.emb.weight

    def forward(self, x, extra, ids, mask):
        y = self.fc(x) + self.fc(extra["a"])  # one module called twice
        z = self.head(torch.where(mask, y, torch.zeros_like(y)))
        return {"out": z, "aux": [y, (z.relu(), z.argmax(-1))], "tied": (self.tied(self.emb(ids)),)}


FAMILIES = {
    "recurrent": (Recurrent, lambda: (torch.randn(2, 5, 6),)),
    "norms": (Norms, lambda: (torch.randn(2, 4, 6, 6),)),
    "conv_geometry": (ConvGeometry, lambda: (torch.randn(2, 4, 10, 10),)),
    "resampling": (Resampling, lambda: (torch.randn(2, 3, 6, 6),)),
    "nested_outputs": (NestedOutputs, lambda: (torch.randn(8, 8), {"a": torch.randn(8, 8)},
                                               torch.randint(0, 10, (8, 3)), torch.rand(8, 8) > 0.3)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", FAMILIES)
def test_family_tracks_float(family, backend):
    make_model, make = FAMILIES[family]
    torch.manual_seed(0)
    model = make_model().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = _quantize(model, make, backend, batches=8)
    torch.manual_seed(1)
    _assert_tracks_float(model, quantized, make(), min_sqnr=20.0)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # the caller's model is unchanged
