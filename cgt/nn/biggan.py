"""BigGAN-style class-conditional generator and projection discriminator (32, 64, 128 px).

One configuration object describes both networks, so a checkpoint, a chapter and
a run record all name the same thing.  ``num_classes = 0`` gives the
unconditional variants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .layers import ConditionalBatchNorm2d, SelfAttention, initialise, sn_conv, sn_embedding, sn_linear

# Channel multipliers of ``ch`` per block: (inputs, outputs), as in BigGAN.
G_ARCH = {
    32: ([4, 4, 4], [4, 4, 4]),
    64: ([16, 16, 8, 4], [16, 8, 4, 2]),
    128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
}
D_ARCH = {
    32: ([None, 4, 4, 4], [4, 4, 4, 4], [True, True, False, False]),
    64: ([None, 1, 2, 4, 8], [1, 2, 4, 8, 16], [True, True, True, True, False]),
    128: ([None, 1, 2, 4, 8, 16], [1, 2, 4, 8, 16, 16], [True] * 5 + [False]),
}


@dataclass
class GANConfig:
    """Everything that shapes the two networks.

    ``shared_dim > 0`` selects BigGAN's shared class embedding with linear
    conditional BN (and ``hier`` splits z across the blocks); ``shared_dim = 0``
    uses per-class BN tables (the CIFAR/SNGAN form).
    """

    resolution: int = 32
    channels: int = 1
    num_classes: int = 10
    ch: int = 32
    d_ch: int | None = None
    dim_z: int = 128
    shared_dim: int = 0
    hier: bool = False
    attention: int = 0  # resolution of G's attention block (0: none)
    d_attention: int = 0
    init: str = "N02"
    bn_eps: float = 1e-5
    sn_eps: float = 1e-6
    g_sn: bool = True
    bottom_width: int = 4
    class_names: list = field(default_factory=list)

    def __post_init__(self):
        if self.resolution not in G_ARCH:
            raise ValueError(f"resolution {self.resolution} not supported; valid: {sorted(G_ARCH)}")
        if self.hier and not self.shared_dim:
            raise ValueError("hierarchical z needs the shared class embedding (shared_dim > 0)")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    @property
    def num_slots(self) -> int:
        return len(G_ARCH[self.resolution][0]) + 1 if self.hier else 1

    @property
    def z_chunk(self) -> int:
        return self.dim_z // self.num_slots

    def to_dict(self) -> dict:
        return asdict(self)


def imagenet128_config(num_classes: int = 1000) -> GANConfig:
    """BigGAN-PyTorch's ImageNet-128 generator (REFERENCE.md §3): ch 96, z 120, shared 128."""
    return GANConfig(resolution=128, channels=3, num_classes=num_classes, ch=96, dim_z=120,
                     shared_dim=128, hier=True, attention=64, d_attention=64, init="ortho")


def truncated_normal(n: int, dim: int, threshold: float | None, generator=None) -> torch.Tensor:
    """N(0, I) samples on the CPU; with ``threshold`` every entry beyond ±threshold is
    resampled until none is (the truncation trick: resampled, not rescaled)."""
    z = torch.randn(n, dim, generator=generator)
    if threshold is not None:
        while (bad := z.abs() > threshold).any():
            z[bad] = torch.randn(int(bad.sum()), generator=generator)
    return z


class GBlock(nn.Module):
    """BN → ReLU → upsample → conv → BN → ReLU → conv, plus an upsampled 1×1 shortcut."""

    def __init__(self, cin, cout, cfg: GANConfig, cond_dim: int):
        super().__init__()
        conv = dict(init=cfg.init, eps=cfg.sn_eps, use_sn=cfg.g_sn)
        bn = dict(num_classes=0 if cond_dim else cfg.num_classes, cond_dim=cond_dim,
                  eps=cfg.bn_eps, init=cfg.init, sn_eps=cfg.sn_eps, use_sn=cfg.g_sn)
        self.bn1 = ConditionalBatchNorm2d(cin, **bn)
        self.conv1 = sn_conv(cin, cout, 3, **conv)
        self.bn2 = ConditionalBatchNorm2d(cout, **bn)
        self.conv2 = sn_conv(cout, cout, 3, **conv)
        self.conv_sc = sn_conv(cin, cout, 1, **conv)

    def forward(self, x, cond):
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        ins, outs = [m * cfg.ch for m in G_ARCH[cfg.resolution][0]], \
                    [m * cfg.ch for m in G_ARCH[cfg.resolution][1]]
        conditional = cfg.num_classes > 0
        if cfg.shared_dim and conditional:
            self.shared = initialise(nn.Embedding(cfg.num_classes, cfg.shared_dim), cfg.init)
            cond_dim = cfg.shared_dim + (cfg.z_chunk if cfg.hier else 0)
        else:
            cond_dim = 0
        self.linear = sn_linear(cfg.z_chunk, ins[0] * cfg.bottom_width ** 2, cfg.init,
                                cfg.sn_eps, cfg.g_sn)
        self.blocks = nn.ModuleList()
        resolution = cfg.bottom_width
        for cin, cout in zip(ins, outs):
            resolution *= 2
            stage = nn.ModuleList([GBlock(cin, cout, cfg, cond_dim)])
            if cfg.attention == resolution:
                stage.append(SelfAttention(cout, cfg.init, cfg.sn_eps, cfg.g_sn))
            self.blocks.append(stage)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(outs[-1], eps=cfg.bn_eps), nn.ReLU(),
            sn_conv(outs[-1], cfg.channels, 3, cfg.init, cfg.sn_eps, cfg.g_sn))

    def conditioning(self, z: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, list]:
        """Split z into the linear layer's input and each block's BN conditioning."""
        cfg = self.cfg
        blocks = len(self.blocks)
        if cfg.num_classes and y is None:
            raise ValueError("this generator is class-conditional: pass class labels y")
        if cfg.hier:
            chunks = torch.split(z, cfg.z_chunk, dim=1)
            class_vector = self.shared(y)
            return chunks[0], [torch.cat([class_vector, c], 1) for c in chunks[1:blocks + 1]]
        if cfg.shared_dim and cfg.num_classes:
            return z, [self.shared(y)] * blocks
        return z, [y] * blocks

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        z0, conds = self.conditioning(z, y)
        h = self.linear(z0).view(z.shape[0], -1, self.cfg.bottom_width, self.cfg.bottom_width)
        for stage, cond in zip(self.blocks, conds):
            for layer in stage:
                h = layer(h, cond)
        return torch.tanh(self.output_layer(h))

    def sample_inputs(self, n: int, classes=None, generator=None, device=None,
                      truncation: float | None = None,
                      start: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z ~ N(0, I) (optionally truncated to ±truncation) and labels cycling over ``classes``
        (from position ``start`` of the cycle, so batches can continue one another)."""
        device = device or next(self.parameters()).device
        z = truncated_normal(n, self.cfg.dim_z, truncation, generator)
        y = None
        if self.cfg.num_classes:
            pool = torch.as_tensor(list(range(self.cfg.num_classes)) if classes is None else classes)
            y = pool[(torch.arange(n) + start) % len(pool)]
            y = y.to(device)
        return z.to(device), y


class DBlock(nn.Module):
    """(ReLU) → conv → ReLU → conv → (pool), plus a 1×1 shortcut; the first block skips the ReLU."""

    def __init__(self, cin, cout, cfg: GANConfig, downsample: bool, first: bool):
        super().__init__()
        conv = dict(init=cfg.init, eps=cfg.sn_eps)
        self.first, self.downsample = first, downsample
        self.conv1 = sn_conv(cin, cout, 3, **conv)
        self.conv2 = sn_conv(cout, cout, 3, **conv)
        self.learnable_sc = cin != cout or downsample
        if self.learnable_sc:
            self.conv_sc = sn_conv(cin, cout, 1, **conv)

    def shortcut(self, x):
        if self.first:  # pool first: cheaper and the input is not pre-activated
            x = F.avg_pool2d(x, 2) if self.downsample else x
            return self.conv_sc(x) if self.learnable_sc else x
        x = self.conv_sc(x) if self.learnable_sc else x
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x, cond=None):
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)


class Discriminator(nn.Module):
    """Projection discriminator: D(x, y) = w·φ(x) + ⟨embed(y), φ(x)⟩ (Miyato & Koyama)."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.d_ch or cfg.ch
        ins, outs, down = D_ARCH[cfg.resolution]
        ins = [cfg.channels] + [m * ch for m in ins[1:]]
        outs = [m * ch for m in outs]
        self.blocks = nn.ModuleList()
        resolution = cfg.resolution
        for i, (cin, cout, d) in enumerate(zip(ins, outs, down)):
            stage = nn.ModuleList([DBlock(cin, cout, cfg, d, first=i == 0)])
            resolution //= 2 if d else 1
            if cfg.d_attention == resolution and d:
                stage.append(SelfAttention(cout, cfg.init, cfg.sn_eps))
            self.blocks.append(stage)
        self.linear = sn_linear(outs[-1], 1, cfg.init, cfg.sn_eps)
        if cfg.num_classes:
            self.embed = sn_embedding(cfg.num_classes, outs[-1], cfg.init, cfg.sn_eps)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's maps, before the ReLU and sum pooling of φ."""
        h = x
        for stage in self.blocks:
            for layer in stage:
                h = layer(h)
        return h

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.feature_maps(x)).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        phi = self.features(x)
        out = self.linear(phi).squeeze(1)
        if self.cfg.num_classes:
            if y is None:
                raise ValueError("this discriminator is class-conditional: pass class labels y")
            out = out + (self.embed(y) * phi).sum(1)
        return out


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
