"""Built-in example models, defined here (torchvision is not a dependency).

`resnet18` has torchvision's ResNet-18 shape (BasicBlocks that reuse one ReLU
module twice, as torchvision's do), `mobilenet_v2` MobileNetV2's inverted
residuals with depthwise convolutions, `transformer` a BERT-style encoder
written out op by op. Weights are random but seeded, and BatchNorm statistics
are set to non-trivial values so that folding and calibration see real ranges.

For accuracy rather than SQNR, a real data set that needs no download:
`load_digits_split` (scikit-learn's bundled 8x8 handwritten digits), `DigitsCNN`
(conv + BatchNorm + ReLU blocks that reach about 99% on it in seconds), and the
`train` / `accuracy` pair every flow (float, PTQ, QAT) shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for i, cout in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    # (expansion, channels, repeats, stride), MobileNetV2's table at width 1.0
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                                 nn.ReLU6(inplace=True))]
        cin = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(nn.Sequential(nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280),
                                    nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn1, self.ffn2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)

    def forward(self, x, mask):
        b, t, d = x.shape
        h = self.heads

        def split(y):
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (d // h) ** 0.5
        scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        attn = torch.matmul(torch.softmax(scores, dim=-1), v)
        x = self.norm1(x + self.out(attn.transpose(1, 2).reshape(b, t, d)))
        return self.norm2(x + self.ffn2(F.gelu(self.ffn1(x))))


class TransformerEncoder(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 256, heads: int = 4, layers: int = 4, ffn: int = 1024,
                 max_len: int = 128):
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, ffn) for _ in range(layers))

    def forward(self, ids, mask):
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        for layer in self.layers:
            x = layer(x, mask)
        summed = (x * mask[..., None]).sum(1)
        return summed / mask.sum(1, keepdim=True)


class DigitsSplit(NamedTuple):
    """scikit-learn's digits, split once: images N x 1 x 8 x 8 in [0, 1], labels 0..9 (int64)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_split(seed: int = 0, test_size: int = 360) -> DigitsSplit:
    """scikit-learn's bundled `load_digits` (1797 8x8 images, shipped with the package: no
    download), pixels scaled from 0..16 to [0, 1], split stratified by class with `seed`:
    1437 training and 360 test images by default, the same split for the same seed."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise ImportError("the digits data set needs scikit-learn: pip install scikit-learn "
                          "(or qir's `test` / `bench` extra)") from err
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.int64)
    train_idx, test_idx = train_test_split(torch.arange(len(labels)).numpy(), test_size=test_size,
                                           stratify=labels.numpy(), random_state=seed)
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return DigitsSplit(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])


class DigitsCNN(nn.Module):
    """A small CNN for 1 x 8 x 8 digits: three conv + BatchNorm + ReLU blocks (a max pool after
    the second), then flatten and one linear classifier. About 19k parameters."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 32), num_classes: int = 10):
        super().__init__()
        c1, c2, c3 = channels

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(*block(1, c1), *block(c1, c2), nn.MaxPool2d(2), *block(c2, c3))
        self.classifier = nn.Linear(c3 * 4 * 4, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def train(model, data: tuple[torch.Tensor, torch.Tensor], *, epochs: int, seed: int = 0, lr: float = 3e-3,
          batch_size: int = 64, weight_decay: float = 0.0, set_training: Callable | None = None) -> list[float]:
    """Train `model` (an nn.Module: a float model, a QAT module, an exported GraphModule) on
    `data` = (images, labels) with cross entropy, Adam and a cosine learning-rate decay to 0
    over `epochs`, in batches of `batch_size` shuffled with `seed` (the last, shorter batch
    dropped so every step sees the same batch size: an exported graph may fix it). `seed` also
    seeds torch's global generator (dropout); the same seed, data, model and thread count give
    the same weights. `set_training(model)` puts the model in
    training mode (default `model.train()`; torchao's exported modules need
    `move_exported_model_to_train`). Returns the mean loss of each epoch."""
    x, y = data
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    (set_training or (lambda m: m.train()))(model)
    steps = len(x) // batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs * steps))
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        losses.append(total / max(1, steps))
    return losses


@torch.no_grad()
def predict(model: Callable, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """The class `model` predicts for each of `x`, in batches of `batch_size` (all at once by
    default); a shorter last batch is padded with copies of its first image, for a model whose
    graph fixes the batch size. Any callable works (an nn.Module in eval mode, an fx.GraphModule
    qir or torchao returned); its mode is left as it is."""
    if batch_size is None or batch_size == len(x):
        return model(x).argmax(-1)
    predictions = []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        n = len(batch)
        if n < batch_size:
            batch = torch.cat([batch, batch[:1].expand(batch_size - n, *batch.shape[1:])])
        predictions.append(model(batch).argmax(-1)[:n])
    return torch.cat(predictions)


def accuracy(model: Callable, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> float:
    """Top-1 accuracy of `model` on (x, y), in percent (see `predict` for `batch_size`)."""
    return 100.0 * float((predict(model, x, batch_size) == y).float().mean())


@dataclass(frozen=True)
class Example:
    name: str
    description: str
    build: Callable[[], nn.Module]
    inputs: Callable[[int], tuple]
    """Example inputs for a batch size."""


def _seeded(cls: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        model = cls()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
        return model.eval()

    return build


def _ids(batch: int) -> tuple:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1000, (batch, 32), generator=g)
    mask = torch.ones(batch, 32, dtype=torch.long)
    mask[:, 24:] = 0
    return ids, mask


EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in (
        Example("resnet18", "ResNet-18 (torchvision's shape), 1x3x224x224", _seeded(ResNet18),
                lambda b: (torch.randn(b, 3, 224, 224, generator=torch.Generator().manual_seed(1)),)),
        Example("mobilenet_v2", "MobileNetV2 (depthwise convs, inverted residuals), 1x3x224x224",
                _seeded(MobileNetV2),
                lambda b: (torch.randn(b, 3, 224, 224, generator=torch.Generator().manual_seed(1)),)),
        Example("transformer", "BERT-style encoder, 4 layers, 256 wide, batch x 32 tokens",
                _seeded(TransformerEncoder), _ids),
    )
}


def example(name: str) -> Example:
    if name not in EXAMPLES:
        raise KeyError(f"no built-in example {name!r} (examples: {', '.join(EXAMPLES)})")
    return EXAMPLES[name]
