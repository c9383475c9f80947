"""Quantization-aware training: prepare_qat, fake quantization, the conv-BN simulation,
train/eval, convert and lower (issue 12).

References are independent of the code under test: the float model itself (with fake
quantization off, the prepared module must train exactly as it does), PTQ's program on the
same trained weights, and each program's own reference lowering."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

import qir
from qir.quantizer import QuantizationConfig, QuantizationSpec, X86Quantizer, XNNPACKQuantizer, x86_config, xnnpack_config
from helpers import INT8_BACKENDS
from peers import sqnr


class ConvNet(nn.Module):
    """conv + BN + ReLU, a residual conv + BN + add + ReLU, dropout, and linear + BN1d + ReLU."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.bn3 = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)) + y)
        y = self.drop(nn.functional.avg_pool2d(y, 2)).flatten(1)
        return self.fc2(torch.relu(self.bn3(self.fc1(y))))


class Decoder(nn.Module):
    """A transposed conv + BN, a conv1d + BN1d, and a batch norm on the input (it stays float)."""

    def __init__(self):
        super().__init__()
        self.bn_in = nn.BatchNorm2d(4)
        self.up = nn.ConvTranspose2d(4, 6, 2, stride=2)
        self.bn_up = nn.BatchNorm2d(6)
        self.conv = nn.Conv1d(6, 6, 3, padding=1)
        self.bn_conv = nn.BatchNorm1d(6)

    def forward(self, x):
        y = torch.relu(self.bn_up(self.up(self.bn_in(x))))
        y = y.flatten(2)
        return torch.relu(self.bn_conv(self.conv(y)))


MODELS = {"convnet": (ConvNet, (4, 3, 8, 8)), "decoder": (Decoder, (4, 4, 3, 3))}


def _batches(shape, n: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for _ in range(n)]


def _train(module, batches, lr: float = 0.05):
    """A few steps of SGD on a regression to a fixed random projection: deterministic."""
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=lr)
    module.train()
    for x in batches:
        loss = module(x).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return module


def _model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    cls, shape = MODELS[name]
    return cls().eval(), shape


def _grads(module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", MODELS)
def test_without_fake_quantization_it_trains_as_the_float_model(name):
    """The simulated conv-BN is the float conv-BN in exact arithmetic: with fake quantization
    off, outputs, running statistics and gradients are the float model's in training mode."""
    model, shape = _model(name)
    prepared = qir.enable_fake_quant(qir.prepare_qat(model, (torch.randn(shape),)), False)
    float_model = copy.deepcopy(model).train()
    for x in _batches(shape, 3):
        got, want = prepared.train()(x), float_model(x)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        got.square().sum().backward()
        want.square().sum().backward()
    targets = prepared.qir_param_targets
    for name_, grad in _grads(float_model).items():
        torch.testing.assert_close(prepared.get_parameter(targets[name_]).grad, grad, rtol=1e-3, atol=1e-4)
    for name_, buffer in float_model.named_buffers():
        if buffer.is_floating_point():
            torch.testing.assert_close(prepared.get_buffer(targets[name_]), buffer, rtol=1e-4, atol=1e-6)


def test_gradients_reach_what_the_model_trains_and_nothing_else():
    model, shape = _model("convnet")
    model.conv1.weight.requires_grad_(False)
    prepared = qir.prepare_qat(model, (torch.randn(shape),))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    targets = prepared.qir_param_targets
    params = {name: prepared.get_parameter(targets[name]) for name, _ in model.named_parameters()}
    assert {n for n, p in params.items() if p.requires_grad} == trained
    assert not [n for n, _ in prepared.named_buffers() if n.startswith("observers")]  # no learned state to train
    prepared(torch.randn(shape)).square().mean().backward()
    for name, param in params.items():
        if name in trained:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name
    assert "frozen" in str(prepared.qir_program).split('"conv1.weight"')[1].split("\n")[0]


def test_train_and_eval_switch_dropout_and_batch_norm():
    model, shape = _model("convnet")
    model.drop.p = 0.5
    x = torch.randn(shape)
    batch = torch.export.Dim("batch")
    prepared = _train(qir.prepare_qat(model, (x,), dynamic_shapes={"x": {0: batch}}), _batches(shape, 3))
    mean = prepared.get_buffer(prepared.qir_param_targets["bn1.running_mean"])
    before = mean.clone()
    assert not torch.equal(prepared.train()(x), prepared(x))  # dropout drops
    assert not torch.equal(mean, before)  # batch statistics are gathered
    prepared.eval()
    before = mean.clone()
    first = prepared(x)
    torch.testing.assert_close(prepared(x), first, rtol=0, atol=0)
    assert torch.equal(mean, before)
    # A batch of one sample gives what the converted model gives (running statistics, no dropout).
    converted = qir.convert(prepared)
    for i in range(2):
        one = x[i:i + 1]
        assert sqnr(converted(x)[i:i + 1], prepared(one)) > 35
    assert prepared.training is False and not any(m.training for m in prepared.modules())


@pytest.mark.parametrize("name", MODELS)
def test_eval_gives_what_convert_gives(name):
    model, shape = _model(name)
    prepared = _train(qir.prepare_qat(model, (torch.randn(shape),)), _batches(shape, 4))
    prepared.eval()
    converted = qir.convert(prepared)
    for x in _batches(shape, 2, seed=7):
        expected = prepared(x)
        assert sqnr(expected, converted(x)) > 35
    program = converted.qir_program.text()
    # Every batch norm after a conv or linear is folded; the decoder's one on its input stays float.
    assert program.count('"batch_norm.default"') == (1 if name == "decoder" else 0)
    assert "obs." not in program and "#aten.training" not in program and "add_" not in program


def _state(prepared) -> dict[str, torch.Tensor]:
    targets = prepared.qir_param_targets
    return {name: (prepared.get_parameter(t) if t in dict(prepared.named_parameters()) else prepared.get_buffer(t))
            for name, t in targets.items()}


def test_convert_gives_the_program_ptq_gives_on_the_trained_weights():
    """At convert the batch norms are folded as PTQ folds them: the integer weights and their
    scales are PTQ's on a float model holding the trained parameters."""
    model, shape = _model("convnet")
    prepared = _train(qir.prepare_qat(model, (torch.randn(shape),)), _batches(shape, 4)).eval()
    quantized = qir.convert(prepared)
    trained = copy.deepcopy(model)
    trained.load_state_dict({k: v.detach() for k, v in _state(prepared).items()})
    ptq = qir.prepare(trained.eval(), (torch.randn(shape),), X86Quantizer(x86_config(is_qat=True)))
    ptq(torch.randn(shape))
    reference = qir.convert(ptq)
    qat_weights = {n: quantized.qir_program.params[n] for n in quantized.qir_program.param_names() if n.endswith("_q")}
    ptq_weights = {n: reference.qir_program.params[n] for n in reference.qir_program.param_names() if n.endswith("_q")}
    assert set(qat_weights) == set(ptq_weights) and len(qat_weights) == 4
    for n in qat_weights:
        assert torch.equal(qat_weights[n], ptq_weights[n]), n
    types = {line.split("=")[0].strip(): line.split(":", 1)[1] for text in [reference.qir_program.text()]
             for line in text.splitlines() if "aten.param parameter" in line and "_q\"" in line}
    for line in quantized.qir_program.text().splitlines():
        if "aten.param parameter" in line and '_q"' in line:
            assert line.split(":", 1)[1] == types[line.split("=")[0].strip()]


def test_freezing_batch_norm_and_observers():
    model, shape = _model("convnet")
    x = torch.randn(shape)
    prepared = _train(qir.prepare_qat(model, (x,)), _batches(shape, 2))
    qir.freeze_bn_stats(prepared)
    qir.freeze_observers(prepared)
    mean = prepared.get_buffer(prepared.qir_param_targets["bn1.running_mean"])
    before_mean = mean.clone()
    before_stats = _activation_stats(prepared)
    train_out = prepared.train()(x * 3)
    assert torch.equal(mean, before_mean)
    assert _activation_stats(prepared) == before_stats
    torch.testing.assert_close(train_out, prepared.eval()(x * 3))  # running statistics used in training too
    text = qir.observed_program(prepared).text()
    assert 'qir.frozen_switches = ["batch_norm"]' in text and ", frozen}" in text
    qir.freeze_bn_stats(prepared, False)
    qir.freeze_observers(prepared, False)
    prepared.train()(x * 3)
    assert not torch.equal(mean, before_mean)
    assert _activation_stats(prepared) != before_stats


def _activation_stats(prepared) -> list[str]:
    return [line for line in qir.observed_program(prepared).text().splitlines() if "moving_minmax" in line]


def test_qat_program_round_trips_through_text_mid_training(tmp_path):
    model, shape = _model("convnet")
    prepared = _train(qir.prepare_qat(model, (torch.randn(shape),)), _batches(shape, 3))
    qir.observed_program(prepared).save(tmp_path / "qat.mlir")
    resumed = qir.load(tmp_path / "qat.mlir").to_fx()
    more = _batches(shape, 2, seed=3)
    _train(prepared, more)
    _train(resumed, more)
    x = torch.randn(shape)
    torch.testing.assert_close(resumed.eval()(x), prepared.eval()(x), rtol=1e-5, atol=1e-6)
    assert qir.convert(resumed).qir_program.text() == qir.convert(prepared).qir_program.text()


@pytest.mark.parametrize("backend", INT8_BACKENDS)
def test_lowered_qat_program_agrees_with_its_q_dq_form(backend):
    model, shape = _model("convnet")
    quantizer = (XNNPACKQuantizer(xnnpack_config(is_qat=True)) if backend == "qnnpack"
                 else X86Quantizer(x86_config(is_qat=True)))
    prepared = _train(qir.prepare_qat(model, (torch.randn(shape),), quantizer), _batches(shape, 4)).eval()
    quantized = qir.convert(prepared)
    lowered = qir.lower(quantized, backend)
    for x in _batches(shape, 2, seed=11):
        assert sqnr(quantized(x), lowered(x)) > 30, backend


@pytest.mark.parametrize("bits", [4, 2])
def test_low_bit_weights_train_and_convert(bits):
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    activation = QuantizationSpec(torch.uint8, 0, 255, torch.per_tensor_affine, observer="moving_minmax")
    weight = QuantizationSpec(torch.int8, low, high, torch.per_channel_symmetric, ch_axis=0,
                              observer="per_channel_minmax")
    config = QuantizationConfig(activation, activation, weight, None, is_qat=True)
    model, shape = _model("convnet")
    prepared = _train(qir.prepare_qat(model, (torch.randn(shape),), X86Quantizer(config)), _batches(shape, 4))
    prepared.eval()
    quantized = qir.convert(prepared)
    program = quantized.qir_program
    weights = [program.params[n] for n in program.param_names() if n.endswith("_q")]
    assert len(weights) == 4
    for w in weights:
        assert w.min() >= low and w.max() <= high
    x = torch.randn(shape)
    assert sqnr(prepared(x), quantized(x)) > 35


def test_the_callers_model_is_never_changed():
    model, shape = _model("convnet")
    model.bn1.train()  # a mixed mode, restored as it was
    state = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    prepared = _train(qir.prepare_qat(model, (torch.randn(shape),)), _batches(shape, 2))
    qir.convert(prepared.eval())
    assert [m.training for m in model.modules()] == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_training_for_a_cpu_whose_pairs_saturate_trains_the_fitted_weights():
    """For an x86 target without VNNI the weights are fitted to int16 pairs at convert; training
    fake-quantizes with the same fitted scales, so eval still gives what convert gives, and the
    converted program has no fitted layer its kernels would saturate (on any host: the target is named)."""
    model, shape = _model("convnet")
    quantizer = X86Quantizer(x86_config(is_qat=True), target="x86-avx2")
    prepared = _train(qir.prepare_qat(model, (torch.randn(shape),), quantizer), _batches(shape, 4)).eval()
    assert "int16_pairs 255" in qir.observed_program(prepared).text()
    quantized = qir.convert(prepared)
    for x in _batches(shape, 2, seed=5):
        assert sqnr(prepared(x), quantized(x)) > 35
    # The classifier, the cheapest layer, keeps full-range weights and runs in float on such a
    # CPU (PatternQuantizer.full_range_share); every other layer is fitted.
    assert {r.module for r in qir.debug.saturating_layers(quantized, "x86-avx2")} <= {"fc2"}


def test_learned_scales_train_and_convert():
    """LSQ: activation scales and zero points are parameters that train, start from the example
    inputs' range, show in the text as the range they stand for, and convert to what eval gives."""
    learned = QuantizationSpec(torch.uint8, 0, 255, torch.per_tensor_affine, observer="learned")
    config = replace(x86_config(is_qat=True), input_activation=learned, output_activation=learned)
    model, shape = _model("convnet")
    x = torch.randn(shape)
    prepared = qir.prepare_qat(model, (x,), X86Quantizer(config))
    scales = {n: p for n, p in prepared.named_parameters() if n.endswith(".scale")}
    assert scales and all(float(p) != 1.0 for p in scales.values())  # started from the example's range
    start = {n: float(p) for n, p in scales.items()}
    _train(prepared, _batches(shape, 4))
    assert any(float(p) != start[n] for n, p in scales.items())  # they learn
    assert "learned" in qir.observed_program(prepared).text()
    prepared.eval()
    quantized = qir.convert(prepared)
    for batch in _batches(shape, 2, seed=9):
        assert sqnr(prepared(batch), quantized(batch)) > 35
