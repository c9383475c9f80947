"""The test model zoo.

Every entry is a :class:`ZooEntry`:

* ``make_model()`` returns a fresh ``nn.Module`` in eval mode with deterministic
  random weights; every BatchNorm has non-trivial running statistics and affine
  parameters, so BatchNorm folding is really exercised.
* ``make_inputs(batch=N)`` returns ``(args, kwargs)``: deterministic example
  inputs (``batch=None`` uses the entry's default batch size).
* ``dynamic_shapes`` is passed as-is to ``torch.export.export``.
* ``kwargs_inputs`` is True when ``make_inputs`` returns non-empty kwargs.

Neither factory touches the global RNG state (they seed inside
``torch.random.fork_rng``). The module depends on torch only (no torchvision).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ZooEntry", "ZOO"]

Inputs = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class ZooEntry:
    name: str
    make_model: Callable[[], nn.Module]
    make_inputs: Callable[..., Inputs]
    dynamic_shapes: Optional[Any] = None
    kwargs_inputs: bool = False


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _randomize_bn(module: nn.Module, gen: torch.Generator) -> None:
    """Give every BatchNorm non-trivial affine params and running statistics."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=gen))
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
                m.running_var.copy_(torch.empty(n).uniform_(0.4, 2.0, generator=gen))
                m.num_batches_tracked.fill_(100)


def _model_factory(cls: type, seed: int, *ctor_args: Any) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = cls(*ctor_args)
            gen = torch.Generator().manual_seed(seed + 1)
            _randomize_bn(model, gen)
        return model.eval()

    make.__name__ = f"make_{cls.__name__}"
    return make


def _gen(seed: int, batch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000 + batch)


# --------------------------------------------------------------------------- #
# 1. cnn_bn_residual — ResNet-like
# --------------------------------------------------------------------------- #


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: ONE nn.ReLU module called twice."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class CnnBnResidual(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = BasicBlock(16, 16)
        self.layer2 = BasicBlock(16, 32, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _inputs_cnn(batch: Optional[int] = None) -> Inputs:
    batch = 1 if batch is None else batch
    return (torch.randn(batch, 3, 32, 32, generator=_gen(1, batch)),), {}


# --------------------------------------------------------------------------- #
# 2. mobilenet_dw — MobileNetV2/V3 style
# --------------------------------------------------------------------------- #


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


class SqueezeExcite(nn.Module):
    def __init__(self, ch: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(ch, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, ch, 1)
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale_activation(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return s * x


class InvertedResidual(nn.Module):
    def __init__(
        self, cin: int, expand: int, cout: int, stride: int, act: type, use_se: bool
    ) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        layers += _conv_bn(cin, expand, 1) + [act()]  # expand (pointwise)
        layers += _conv_bn(expand, expand, 3, stride, groups=expand) + [act()]  # depthwise
        if use_se:
            layers.append(SqueezeExcite(expand, max(8, expand // 4)))
        layers += _conv_bn(expand, cout, 1)  # project (linear bottleneck)
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = out + x
        return out


class MobileNetDW(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(*_conv_bn(3, 16, 3, 2), nn.Hardswish()),
            InvertedResidual(16, 64, 16, 1, nn.Hardswish, use_se=True),
            InvertedResidual(16, 48, 24, 2, nn.ReLU6, use_se=False),
            InvertedResidual(24, 72, 24, 1, nn.ReLU6, use_se=True),
            nn.Sequential(*_conv_bn(24, 96, 1), nn.Hardswish()),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(96, 64), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(64, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _inputs_mobilenet(batch: Optional[int] = None) -> Inputs:
    batch = 1 if batch is None else batch
    return (torch.randn(batch, 3, 32, 32, generator=_gen(2, batch)),), {}


# --------------------------------------------------------------------------- #
# 3. transformer_encoder — hand-written attention
# --------------------------------------------------------------------------- #


class TransformerEncoder(nn.Module):
    def __init__(self, dim: int = 64, heads: int = 4, ffn: int = 128) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(ffn, dim)
        self.norm2 = nn.LayerNorm(dim)
        with torch.no_grad():  # non-trivial LayerNorm affine params
            for ln in (self.norm1, self.norm2):
                ln.weight.uniform_(0.5, 1.5)
                ln.bias.normal_(0.0, 0.1)

    def _heads(self, t: torch.Tensor, b: int, n: int) -> torch.Tensor:
        return t.reshape(b, n, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q = self._heads(self.q_proj(x), b, n)
        k = self._heads(self.k_proj(x), b, n)
        v = self._heads(self.v_proj(x), b, n)
        attn = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        attn = F.softmax(attn, dim=-1)
        ctx = torch.matmul(attn, v).permute(0, 2, 1, 3).reshape(b, n, c)
        x = self.norm1(x + self.out_proj(ctx))
        x = self.norm2(x + self.fc2(self.act(self.fc1(x))))
        return x


def _inputs_transformer(batch: Optional[int] = None) -> Inputs:
    batch = 2 if batch is None else batch
    return (torch.randn(batch, 16, 64, generator=_gen(3, batch)),), {}


# --------------------------------------------------------------------------- #
# 4. embedding_bag — integer ids + boolean mask
# --------------------------------------------------------------------------- #


class EmbeddingBag(nn.Module):
    def __init__(self, vocab: int = 100, dim: int = 32, num_classes: int = 5) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(ids)  # (B, T, D)
        m = mask.to(torch.float32).unsqueeze(-1)  # (B, T, 1)
        pooled = (emb * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)


def _inputs_embedding(batch: Optional[int] = None) -> Inputs:
    batch = 2 if batch is None else batch
    g = _gen(4, batch)
    ids = torch.randint(0, 100, (batch, 12), generator=g, dtype=torch.int64)
    mask = torch.rand(batch, 12, generator=g) < 0.7
    mask[:, 0] = True  # every row has at least one valid token
    return (ids, mask), {}


# --------------------------------------------------------------------------- #
# 5. multi_io — several inputs (one passed by keyword), nested outputs
# --------------------------------------------------------------------------- #


class MultiIO(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.lin_x = nn.Linear(dim, dim)
        self.lin_y = nn.Linear(dim, dim)
        self.lin_out = nn.Linear(dim, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor) -> dict:
        t1 = self.lin_x(x) * scale
        t2 = x + self.lin_y(y)
        t3 = torch.relu(y - t1)
        t4 = self.lin_out(t2 * t3)
        return {"a": (t1, [t2, t3]), "b": {"c": t4}}


def _inputs_multi_io(batch: Optional[int] = None) -> Inputs:
    batch = 2 if batch is None else batch
    g = _gen(5, batch)
    x = torch.randn(batch, 8, generator=g)
    y = torch.randn(batch, 8, generator=g)
    scale = torch.rand(8, generator=g) + 0.5
    return (x, y), {"scale": scale}


# --------------------------------------------------------------------------- #
# 6. split_cat — split / chunk / cat / stack / max(dim) / unbind
# --------------------------------------------------------------------------- #


class SplitCat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # x: (B, 12, 8)
        x = self.proj(x)
        a, b, c = torch.split(x, [3, 4, 5], dim=1)
        p, q = torch.chunk(x, 2, dim=2)  # (B, 12, 4) each
        s0, s1 = torch.split(x, 6, dim=1)  # equal-size split
        cat = torch.cat([c, a, b], dim=1)  # permuted rows
        pq = torch.cat([q * 2.0, p], dim=-1)
        stacked = torch.stack([s0, s1.flip(1)], dim=0).sum(0)  # (B, 6, 8)
        values, indices = torch.max(cat + pq, dim=-1)  # (B, 12) each
        picked = torch.gather(x, -1, indices.unsqueeze(-1)).squeeze(-1)
        rows = torch.unbind(stacked, dim=1)  # 6 x (B, 8)
        rowsum = rows[0] + rows[2] * rows[5]
        return values + picked + indices.to(x.dtype), rowsum, indices


def _inputs_split_cat(batch: Optional[int] = None) -> Inputs:
    batch = 2 if batch is None else batch
    return (torch.randn(batch, 12, 8, generator=_gen(6, batch)),), {}


# --------------------------------------------------------------------------- #
# 7. dynamic_batch — symbolic batch flowing into a view
# --------------------------------------------------------------------------- #


class DynamicBatch(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn(self.conv(x))))  # (B, 8, 4, 4)
        x = x.view(x.shape[0], -1)
        return self.fc2(torch.relu(self.fc1(x)))


def _inputs_dynamic(batch: Optional[int] = None) -> Inputs:
    batch = 4 if batch is None else batch
    return (torch.randn(batch, 3, 8, 8, generator=_gen(7, batch)),), {}


_BATCH = torch.export.Dim("batch", min=1, max=64)

# --------------------------------------------------------------------------- #
# 8. scalar_and_int — integer arithmetic, bool masks, lifted constants
# --------------------------------------------------------------------------- #


class ScalarAndInt(nn.Module):
    def __init__(self, n: int = 10) -> None:
        super().__init__()
        self.lin = nn.Linear(n, n)
        # non-persistent buffer: a buffer, but not in the state_dict
        self.register_buffer("offset", torch.linspace(-1.0, 1.0, n), persistent=False)
        # plain tensor attribute: neither parameter nor buffer -> lifted constant
        self.table = torch.arange(10.0)

    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # ids: int64 (B, n) in [0, 10); x: float32 (B, n)
        s = ids * 3 + 1
        q = torch.floor_divide(s, 4)  # int64
        r = s % 4
        big = q > 3  # bool
        t = self.table[ids]  # gather from the constant table
        y = self.lin(x)
        y = torch.where(big, y * t, y + self.offset)
        y = y.masked_fill(ids == 0, float("-inf"))
        probs = torch.softmax(y, dim=-1)
        counts = big.sum(dim=-1) + r.max(dim=-1).values
        return probs, q, counts


def _inputs_scalar_int(batch: Optional[int] = None) -> Inputs:
    batch = 2 if batch is None else batch
    g = _gen(8, batch)
    ids = torch.randint(0, 10, (batch, 10), generator=g, dtype=torch.int64)
    ids[:, 0] = 0  # some -inf entries ...
    ids[:, 1] = 7  # ... but never a fully masked row
    x = torch.randn(batch, 10, generator=g)
    return (ids, x), {}


# --------------------------------------------------------------------------- #
# 9. conv1d_linear_bn — the other BatchNorm-foldable patterns
# --------------------------------------------------------------------------- #


class Conv1dLinearBn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1d = nn.Conv1d(4, 8, 3, padding=1)
        self.bn1d = nn.BatchNorm1d(8)
        self.deconv = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.bn2d = nn.BatchNorm2d(6)
        self.linear = nn.Linear(16, 12)
        self.bn_lin = nn.BatchNorm1d(12)
        self.linear3d = nn.Linear(16, 8)

    def forward(
        self, seq: torch.Tensor, img: torch.Tensor, feat: torch.Tensor, tok: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        a = torch.relu(self.bn1d(self.conv1d(seq)))  # (B, 8, 16)
        b = self.bn2d(self.deconv(img))  # (B, 6, 16, 16)
        c = self.bn_lin(self.linear(feat))  # (B, 12)
        d = self.linear3d(tok)  # (B, 5, 8)
        return a, b, c, d


def _inputs_conv1d(batch: Optional[int] = None) -> Inputs:
    batch = 2 if batch is None else batch
    g = _gen(9, batch)
    seq = torch.randn(batch, 4, 16, generator=g)
    img = torch.randn(batch, 4, 8, 8, generator=g)
    feat = torch.randn(batch, 16, generator=g)
    tok = torch.randn(batch, 5, 16, generator=g)
    return (seq, img, feat, tok), {}


# --------------------------------------------------------------------------- #
# the zoo
# --------------------------------------------------------------------------- #

_ENTRIES = [
    ZooEntry("cnn_bn_residual", _model_factory(CnnBnResidual, 1), _inputs_cnn),
    ZooEntry("mobilenet_dw", _model_factory(MobileNetDW, 2), _inputs_mobilenet),
    ZooEntry("transformer_encoder", _model_factory(TransformerEncoder, 3), _inputs_transformer),
    ZooEntry("embedding_bag", _model_factory(EmbeddingBag, 4), _inputs_embedding),
    ZooEntry("multi_io", _model_factory(MultiIO, 5), _inputs_multi_io, kwargs_inputs=True),
    ZooEntry("split_cat", _model_factory(SplitCat, 6), _inputs_split_cat),
    ZooEntry(
        "dynamic_batch",
        _model_factory(DynamicBatch, 7),
        _inputs_dynamic,
        dynamic_shapes={"x": {0: _BATCH}},
    ),
    ZooEntry("scalar_and_int", _model_factory(ScalarAndInt, 8), _inputs_scalar_int),
    ZooEntry("conv1d_linear_bn", _model_factory(Conv1dLinearBn, 9), _inputs_conv1d),
]

ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}
