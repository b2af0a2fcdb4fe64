"""The networks: pure modules and their config dataclasses. No files, no network, no Gradio.

This file needs only torch: it is published beside each model on the Hub, so a round loads without the rest of
Outwit (see the model card).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


# ---------------------------------------------------------------------------------------------- networks
@dataclass(frozen=True)
class SeedConfig:
    """The network of the original DADC blog post, kept for comparison."""

    hidden: int = 50
    dropout: float = 0.5


@dataclass(frozen=True)
class CNNConfig:
    """The default: BatchNorm conv blocks, about 140k parameters."""

    channels: tuple[int, int, int] = (32, 64, 128)
    dropout: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))


class Normalize(nn.Module):
    """Callers pass pixels in [0, 1]; the MNIST normalisation lives inside the model."""

    def forward(self, x):
        return (x - MNIST_MEAN) / MNIST_STD


class SeedNet(nn.Module):
    def __init__(self, config: SeedConfig):
        super().__init__()
        self._config = config
        self.norm = Normalize()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(config.dropout)
        self.fc1 = nn.Linear(320, config.hidden)
        self.fc2 = nn.Linear(config.hidden, 10)
        self.dropout = config.dropout

    def forward(self, x):  # (B, 1, 28, 28) in [0, 1]
        x = self.norm(x)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))  # (B, 10, 12, 12)
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))  # (B, 20, 4, 4)
        x = F.relu(self.fc1(x.flatten(1)))  # (B, 50)
        x = F.dropout(x, self.dropout, training=self.training)
        return self.fc2(x)  # (B, 10) logits


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class CNN(nn.Module):
    def __init__(self, config: CNNConfig):
        super().__init__()
        self._config = config
        c1, c2, c3 = config.channels
        self.norm = Normalize()
        self.features = nn.Sequential(
            _conv_block(1, c1), _conv_block(c1, c1), nn.MaxPool2d(2),  # (B, c1, 14, 14)
            _conv_block(c1, c2), _conv_block(c2, c2), nn.MaxPool2d(2),  # (B, c2, 7, 7)
            _conv_block(c2, c3),  # (B, c3, 7, 7)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c3, 10)

    TRUNK = 6  # features[:6]: the blocks at 28 and 14 px, four fifths of the multiply-adds

    def forward(self, x):  # (B, 1, 28, 28) in [0, 1]
        return self.upper(self.trunk(x))

    def trunk(self, x):  # (B, 1, 28, 28) -> (B, c2, 7, 7)
        return self.features[: self.TRUNK](self.norm(x))

    def upper(self, f):  # (B, c2, 7, 7) -> (B, 10) logits
        x = self.features[self.TRUNK :](f).mean(dim=(2, 3))  # (B, c3) global average pool
        return self.head(self.dropout(x))

    def trunk_layers(self) -> nn.Module:
        """The layers `trunk` runs that hold weights: what a round that keeps the trunk fixed leaves alone."""
        return self.features[: self.TRUNK]

    def upper_layers(self) -> list[nn.Module]:
        """The layers `upper` runs: what such a round trains."""
        return [self.features[self.TRUNK :], self.dropout, self.head]


@dataclass(frozen=True)
class ViTConfig:
    """A small vision transformer: 4×4 patches (49 tokens and a class token), about 140k parameters."""

    patch: int = 4
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 2
    dropout: float = 0.1

    def __post_init__(self):
        if 28 % self.patch or self.dim % self.heads:
            raise ValueError(f"patch={self.patch} must divide 28 and heads={self.heads} must divide dim={self.dim}")


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):  # (B, T, D)
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (B, H, T, D/H)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: attention, then an MLP, each added to the residual stream."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_ratio * dim, dim), nn.Dropout(dropout))

    def forward(self, x):  # (B, T, D)
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self._config = config
        tokens = (28 // config.patch) ** 2
        self.norm = Normalize()
        self.patches = nn.Conv2d(1, config.dim, kernel_size=config.patch, stride=config.patch)  # patch embedding
        self.cls = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.position = nn.Parameter(torch.randn(1, tokens + 1, config.dim) * 0.02)
        self.blocks = nn.Sequential(*(EncoderBlock(config.dim, config.heads, config.mlp_ratio, config.dropout)
                                      for _ in range(config.depth)))
        self.final_norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, 10)

    def forward(self, x):  # (B, 1, 28, 28) in [0, 1]
        x = self.patches(self.norm(x)).flatten(2).transpose(1, 2)  # (B, 49, D)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.position  # (B, 50, D)
        x = self.final_norm(self.blocks(x))
        return self.head(x[:, 0])  # (B, 10) logits from the class token


ARCHITECTURES: dict[str, tuple[type, type]] = {
    "seed": (SeedNet, SeedConfig), "cnn": (CNN, CNNConfig), "vit": (ViT, ViTConfig)}


def build_model(arch: str, **arch_args: Any) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch={arch!r} is not one of {sorted(ARCHITECTURES)}")
    net_cls, config_cls = ARCHITECTURES[arch]
    return net_cls(config_cls(**arch_args))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_arch_args(model: nn.Module) -> tuple[str, dict]:
    for name, (net_cls, _) in ARCHITECTURES.items():
        if type(model) is net_cls:
            return name, json.loads(json.dumps(asdict(model._config)))  # as a checkpoint stores them
    raise ValueError(f"{type(model).__name__} is not a known architecture")
