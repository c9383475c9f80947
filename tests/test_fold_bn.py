"""fold-bn through torch: folded programs compute what the float models compute.

Every case exports a real model, runs `fold-bn`, counts the BatchNorms left,
compares the emitted module with the float model, and checks that the input
program (its text and its parameter store) is unchanged.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import qir
from qir.passes.fold_bn import fold_weights

RTOL, ATOL = 1e-5, 1e-6


def _randomize_bn(model: nn.Module) -> nn.Module:
    """Non-trivial statistics and affine parameters, so that a wrong fold shows."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                if m.affine:
                    m.weight.uniform_(0.5, 2)
                    m.bias.uniform_(-1, 1)
    return model.eval()


class _Linear3DPermute(nn.Module):
    """Linear on (N, L, C), permute to (N, C, L), BatchNorm1d over C.

    Folding would be right here, but only by proving the permute moves the
    feature axis to axis 1; fold-bn does not try (the BN's producer is the permute)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 6)
        self.bn = nn.BatchNorm1d(6)

    def forward(self, x):
        return self.bn(self.fc(x).permute(0, 2, 1))


class _Linear3D(nn.Module):
    """Linear on (N, L, C), BatchNorm1d straight after: it normalizes L, not the features.

    L == out_features, so a fold would even pass the channel-count check (ao#4116)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        return self.bn(self.fc(x))


class _SharedConv(nn.Module):
    """The conv's output feeds the BatchNorm and the add: folding would change the add."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class _SharedWeight(nn.Module):
    """One conv module applied twice, each time followed by a different BatchNorm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn1(self.conv(x)) + self.bn2(self.conv(x))


def _seq(*layers):
    return lambda: nn.Sequential(*layers)


# name: (model builder, input shape, BatchNorms left, folds)
CASES = {
    "conv2d": (_seq(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6)), (2, 3, 8, 8), 0, 1),
    "conv2d_no_bias": (_seq(nn.Conv2d(3, 6, 3, bias=False), nn.BatchNorm2d(6)), (2, 3, 8, 8), 0, 1),
    "conv2d_padding_same": (_seq(nn.Conv2d(3, 6, 3, padding="same"), nn.BatchNorm2d(6)), (2, 3, 8, 8), 0, 1),
    "conv1d": (_seq(nn.Conv1d(3, 6, 3), nn.BatchNorm1d(6)), (2, 3, 10), 0, 1),
    "conv3d": (_seq(nn.Conv3d(2, 4, 3, bias=False), nn.BatchNorm3d(4)), (2, 2, 5, 5, 5), 0, 1),
    "depthwise": (_seq(nn.Conv2d(6, 6, 3, groups=6), nn.BatchNorm2d(6)), (2, 6, 8, 8), 0, 1),
    "grouped": (_seq(nn.Conv2d(4, 6, 3, groups=2), nn.BatchNorm2d(6)), (2, 4, 8, 8), 0, 1),
    "conv_transpose2d": (_seq(nn.ConvTranspose2d(4, 6, 3), nn.BatchNorm2d(6)), (2, 4, 5, 5), 0, 1),
    "conv_transpose2d_groups2": (_seq(nn.ConvTranspose2d(4, 6, 3, groups=2), nn.BatchNorm2d(6)),
                                 (2, 4, 5, 5), 0, 1),
    "conv_transpose1d_groups2_no_bias": (
        _seq(nn.ConvTranspose1d(4, 6, 3, stride=2, groups=2, bias=False), nn.BatchNorm1d(6)), (2, 4, 7), 0, 1),
    "linear_2d": (_seq(nn.Linear(8, 6), nn.BatchNorm1d(6)), (3, 8), 0, 1),
    "linear_2d_no_bias": (_seq(nn.Linear(8, 6, bias=False), nn.BatchNorm1d(6)), (3, 8), 0, 1),
    "bn_no_affine": (_seq(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6, affine=False)), (2, 3, 8, 8), 0, 1),
    "chain": (_seq(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1, bias=False),
                   nn.BatchNorm2d(4), nn.BatchNorm2d(4)), (2, 3, 8, 8), 0, 3),
    "shared_weight": (_SharedWeight, (2, 4, 6, 6), 0, 2),
    # Not folds: the program must come out unchanged in what it computes.
    "linear_3d_permute_not_folded": (_Linear3DPermute, (3, 5, 8), 1, 0),
    "linear_3d_not_folded": (_Linear3D, (3, 4, 8), 1, 0),
    "unbatched_conv1d_not_folded": (_seq(nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4)), (3, 6), 1, 0),
    "shared_output_not_folded": (_SharedConv, (2, 3, 8, 8), 1, 0),
}


def _batch_norms(program) -> int:
    return sum(1 for op in program.forward.body.walk() if "batch_norm" in getattr(op, "op_name", ""))


def _snapshot(program):
    return str(program), {name: program.params[name].clone() for name in program.params}


def _assert_unchanged(program, snapshot) -> None:
    text, params = snapshot
    assert str(program) == text
    assert set(program.params) == set(params)
    for name, tensor in params.items():
        assert torch.equal(program.params[name], tensor), name


def _fold(program, folds: int):
    manager = qir.PassManager("fold-bn")
    result = manager.run(program)
    assert manager.records[0].counts.get("folded", 0) == folds
    return result


@pytest.mark.parametrize("name", sorted(CASES))
def test_fold_matches_float_model(name):
    build, shape, remaining, folds = CASES[name]
    model = _randomize_bn(build())
    x = torch.randn(*shape)
    program = qir.export(model, (x,))
    snapshot = _snapshot(program)
    folded = _fold(program, folds)
    assert _batch_norms(program) == remaining + folds
    assert _batch_norms(folded) == remaining
    with torch.no_grad():
        torch.testing.assert_close(folded.to_fx()(x), model(x), rtol=RTOL, atol=ATOL)
    _assert_unchanged(program, snapshot)
    # The parameters a fold leaves unused go with it (`num_batches_tracked` was never used).
    assert _unused_params(folded) <= _unused_params(program)


def _unused_params(program) -> set[str]:
    return {op.param_name for op in program.forward.body.walk()
            if op.name == "aten.param" and not op.result.uses}


@pytest.mark.parametrize("groups", [1, 2])
def test_decomposed_forms(groups):
    """After run_decompositions: `convolution.default` (transposed and not) and
    `_native_batch_norm_legit_no_training` (three results)."""
    model = _randomize_bn(nn.Sequential(
        nn.Conv2d(4, 4, 3, groups=groups, bias=False), nn.BatchNorm2d(4),
        nn.ConvTranspose2d(4, 6, 3, groups=groups), nn.BatchNorm2d(6)))
    x = torch.randn(2, 4, 7, 7)
    program = qir.import_program(torch.export.export(model, (x,)).run_decompositions())
    targets = {op.target.data for op in program.forward.body.ops if op.name == "aten.op"}
    assert {"convolution.default", "_native_batch_norm_legit_no_training.default"} <= targets
    snapshot = _snapshot(program)
    folded = _fold(program, 2)
    assert _batch_norms(folded) == 0
    with torch.no_grad():
        torch.testing.assert_close(folded.to_fx()(x), model(x), rtol=RTOL, atol=ATOL)
    _assert_unchanged(program, snapshot)


def test_dynamic_batch_linear():
    model = _randomize_bn(nn.Sequential(nn.Linear(8, 6), nn.BatchNorm1d(6)))
    x = torch.randn(4, 8)
    batch = torch.export.Dim("batch", min=2)
    program = qir.export(model, (x,), dynamic_shapes=({0: batch},))
    folded = _fold(program, 1)
    assert _batch_norms(folded) == 0
    for n in (2, 7):
        x = torch.randn(n, 8)
        with torch.no_grad():
            torch.testing.assert_close(folded.to_fx()(x), model(x), rtol=RTOL, atol=ATOL)


def test_training_mode_batchnorm_is_left_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    reference = copy.deepcopy(model)
    x = torch.randn(2, 3, 8, 8)
    program = qir.export(model, (x,))
    snapshot = _snapshot(program)
    folded = _fold(program, 0)
    assert _batch_norms(folded) == 1
    torch.testing.assert_close(folded.to_fx()(x), reference(x), rtol=RTOL, atol=ATOL)
    _assert_unchanged(program, snapshot)


def test_fold_weights_matches_torch_fusion_and_keeps_inputs():
    """Same numbers as torch's own helper (groups=1), inputs untouched, dtype kept."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    torch.manual_seed(0)
    w, b = torch.randn(6, 3, 3, 3), torch.randn(6)
    mean, var, gamma, beta = torch.randn(6), torch.rand(6) + 0.5, torch.randn(6), torch.randn(6)
    inputs = [t.clone() for t in (w, b, mean, var, gamma, beta)]
    fw, fb = fold_weights(w, b, mean, var, gamma, beta, 1e-5)
    tw, tb = fuse_conv_bn_weights(w, b, mean, var, 1e-5, gamma, beta)
    torch.testing.assert_close(fw, tw.detach())
    torch.testing.assert_close(fb, tb.detach())
    assert fw.dtype == fb.dtype == torch.float32
    for before, after in zip(inputs, (w, b, mean, var, gamma, beta)):
        assert torch.equal(before, after)


INLINE = """
func.func @forward(%x: tensor<1x4x5x5xf32>) -> tensor<1x6x7x7xf32> {
  %w = aten.param constant "w" = dense<WEIGHT> : tensor<4x3x3x3xf32>
  %g = aten.param constant "g" = dense<[0.5, 1.0, 1.5, 2.0, 2.5, 3.0]> : tensor<6xf32>
  %b = aten.param constant "b" = dense<[-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]> : tensor<6xf32>
  %m = aten.param constant "m" = dense<[0.1, 0.2, 0.3, -0.4, -0.5, -0.6]> : tensor<6xf32>
  %v = aten.param constant "v" = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]> : tensor<6xf32>
  %c = aten.op "conv_transpose2d.input"(%x, %w, none, [1, 1], [0, 0], [0, 0], 2) : (tensor<1x4x5x5xf32>, tensor<4x3x3x3xf32>) -> tensor<1x6x7x7xf32>
  %y = aten.op "batch_norm.default"(%c, %g, %b, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<1x6x7x7xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<1x6x7x7xf32>
  func.return %y : tensor<1x6x7x7xf32>
}
"""


def test_inline_weights():
    """Weights written inline in the IR (as lit tests do) fold; the new ones go to the store."""
    weight = torch.arange(4 * 3 * 3 * 3, dtype=torch.float32).reshape(4, 3, 3, 3) / 50 - 1
    program = qir.parse(INLINE.replace("WEIGHT", str(weight.tolist())))
    assert len(program.params) == 0
    snapshot = _snapshot(program)
    folded = _fold(program, 1)
    assert _batch_norms(folded) == 0
    assert sorted(folded.params) == ["w.bias_folded", "w.weight_folded"]
    assert {op.param_name for op in folded.forward.body.walk() if op.name == "aten.param"} == set(folded.params)
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(folded.to_fx()(x), program.to_fx()(x), rtol=RTOL, atol=ATOL)
    _assert_unchanged(program, snapshot)
