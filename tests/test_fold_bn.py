"""fold-bn through torch: folded programs compute what the float models compute."""

from __future__ import annotations

import pytest
import torch

import qir


def _randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                if m.affine:
                    m.weight.uniform_(0.5, 2)
                    m.bias.uniform_(-1, 1)
    return model.eval()


class _Linear3D(torch.nn.Module):
    """Linear on (N, L, C) then BatchNorm1d over L: not a fold (the channel axes differ)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 5)
        self.bn = torch.nn.BatchNorm1d(4)

    def forward(self, x):
        return self.bn(self.fc(x))


class _SharedConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


CASES = {
    "conv2d": (lambda: torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.BatchNorm2d(6)), (2, 3, 8, 8), 0),
    "conv2d_no_bias": (lambda: torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, bias=False), torch.nn.BatchNorm2d(6)),
                       (2, 3, 8, 8), 0),
    "conv1d": (lambda: torch.nn.Sequential(torch.nn.Conv1d(3, 6, 3), torch.nn.BatchNorm1d(6)), (2, 3, 10), 0),
    "depthwise": (lambda: torch.nn.Sequential(torch.nn.Conv2d(6, 6, 3, groups=6), torch.nn.BatchNorm2d(6)),
                  (2, 6, 8, 8), 0),
    "grouped": (lambda: torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, groups=2), torch.nn.BatchNorm2d(6)),
                (2, 4, 8, 8), 0),
    "conv_transpose": (lambda: torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 6, 3), torch.nn.BatchNorm2d(6)),
                       (2, 4, 5, 5), 0),
    "conv_transpose_groups": (lambda: torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 6, 3, groups=2),
                                                          torch.nn.BatchNorm2d(6)), (2, 4, 5, 5), 0),
    "linear_2d": (lambda: torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.BatchNorm1d(6)), (3, 8), 0),
    "bn_no_affine": (lambda: torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.BatchNorm2d(6, affine=False)),
                     (2, 3, 8, 8), 0),
    "linear_3d_not_folded": (_Linear3D, (3, 4, 8), 1),
    "shared_output_not_folded": (_SharedConv, (2, 3, 8, 8), 1),
}


def _batch_norms(program) -> int:
    return sum(1 for op in program.forward.body.ops if getattr(op, "op_name", "") == "batch_norm")


@pytest.mark.parametrize("name", sorted(CASES))
def test_fold_matches_float_model(name):
    build, shape, remaining = CASES[name]
    model = _randomize_bn(build())
    x = torch.randn(*shape)
    program = qir.export(model, (x,))
    before = str(program)
    folded = qir.PassManager("fold-bn").run(program)
    assert _batch_norms(folded) == remaining
    torch.testing.assert_close(folded.to_fx()(x), model(x), rtol=1e-5, atol=1e-5)
    assert str(program) == before


def test_training_mode_batchnorm_is_left_alone():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).train()
    program = qir.export(model, (torch.randn(2, 3, 8, 8),))
    assert _batch_norms(qir.PassManager("fold-bn").run(program)) == 1
