"""The digits data set and model of `qir.examples` (issue 12's real data set), quick: a few seconds.

The reference for quantized accuracy is the float model itself, on the held-out test split.
Nothing here assumes the CPU's features: the quantizer is the host's, and the x86 kernels run
only where torch has them.
"""

from __future__ import annotations

import pytest
import torch

import qir
from qir.examples import DigitsCNN, accuracy, load_digits_split, predict, train
from qir.quantizer import X86Quantizer

pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn (qir's test extra)")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The model is tiny: one thread is as fast as two, and many times faster while other
    processes keep the cores busy (OpenMP's threads then wait on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    """DigitsCNN after 3 epochs (about a second), in eval mode, and its float test accuracy."""
    torch.manual_seed(0)
    model = DigitsCNN()
    train(model, (digits.x_train, digits.y_train), epochs=3, seed=0, lr=3e-3)
    model.eval()
    return model, accuracy(model, digits.x_test, digits.y_test)


def test_split_shapes_and_range(digits):
    x_train, y_train, x_test, y_test = digits
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0
    # stratified: every digit 35 to 37 times among the 360 test images
    counts = torch.bincount(y_test, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37


def test_split_is_deterministic(digits):
    again = load_digits_split(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(digits, again))
    other = load_digits_split(seed=1)
    assert not torch.equal(digits.y_test, other.y_test)
    # the same 1797 images either way, split differently
    total = torch.cat([digits.x_train, digits.x_test]).flatten(1).sum(1).sort().values
    assert torch.equal(total, torch.cat([other.x_train, other.x_test]).flatten(1).sum(1).sort().values)


def test_training_is_deterministic(digits):
    data = (digits.x_train[:256], digits.y_train[:256])
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        model = DigitsCNN()
        train(model, data, epochs=1, seed=3, lr=3e-3)
        states.append(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(states[0].values(), states[1].values()))


def test_predict_pads_a_fixed_batch(digits, trained):
    """`predict` in fixed-size batches (an exported graph may fix the batch) gives what one call gives."""
    model, _ = trained
    exported = torch.export.export(model, (digits.x_test[:64],)).module()
    assert torch.equal(predict(exported, digits.x_test, batch_size=64), predict(model, digits.x_test))


def test_qir_ptq_int8_keeps_float_accuracy(digits, trained):
    """X86Quantizer's int8 PTQ, calibrated on training batches: within 1.5 points of the float
    model on the test split, as Q/DQ, as exact integers (reference) and on x86's kernels."""
    model, float_acc = trained
    assert float_acc > 90.0, f"float DigitsCNN reached only {float_acc:.2f}% after 3 epochs"
    batch = torch.export.Dim("batch", min=2)
    prepared = qir.prepare(model, (digits.x_train[:64],), X86Quantizer(), dynamic_shapes=({0: batch},))
    with torch.no_grad():
        for start in range(0, 512, 64):
            prepared(digits.x_train[start:start + 64])
    quantized = qir.convert(prepared)
    modules = {"Q/DQ": quantized, "reference": qir.lower(quantized, "reference")}
    if "x86" in torch.backends.quantized.supported_engines:
        modules["x86"] = qir.lower(quantized, "x86")
    for name, module in modules.items():
        acc = accuracy(module, digits.x_test, digits.y_test)
        assert abs(acc - float_acc) <= 1.5, f"{name}: {acc:.2f}% against float {float_acc:.2f}%"
