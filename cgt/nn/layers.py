"""Building blocks: spectrally normalised layers, conditional BN, self-attention.

Spectral norm is PyTorch's own (``torch.nn.utils.parametrizations.spectral_norm``):
one power iteration per training forward, none in eval mode.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

INITS = ("ortho", "N02", "default")


def initialise(module: nn.Module, init: str) -> nn.Module:
    """BigGAN's init schemes: orthogonal (ImageNet) or N(0, 0.02) (CIFAR); biases zero."""
    if init not in INITS:
        raise ValueError(f"unknown init '{init}'; valid: {', '.join(INITS)}")
    if init != "default":
        if init == "ortho":
            nn.init.orthogonal_(module.weight)
        else:
            nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    return module


def sn(module: nn.Module, eps: float = 1e-6, enabled: bool = True) -> nn.Module:
    return spectral_norm(module, eps=eps) if enabled else module


def sn_conv(cin, cout, kernel=3, init="ortho", eps=1e-6, use_sn=True, bias=True) -> nn.Module:
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias)
    return sn(initialise(conv, init), eps, use_sn)


def sn_linear(cin, cout, init="ortho", eps=1e-6, use_sn=True, bias=True) -> nn.Module:
    return sn(initialise(nn.Linear(cin, cout, bias=bias), init), eps, use_sn)


def sn_embedding(classes, dim, init="ortho", eps=1e-6, use_sn=True) -> nn.Module:
    return sn(initialise(nn.Embedding(classes, dim), init), eps, use_sn)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift depend on the class, in the papers' two forms.

    * per-class tables (``num_classes``): ``gain = 1 + G[y]``, ``bias = B[y]``, as in
      SNGAN-projection and BigGAN without a shared embedding;
    * linear maps of a conditioning vector (``cond_dim``): ``gain = 1 + W_g c``,
      ``bias = W_b c`` with ``c = [shared class embedding | z chunk]`` (BigGAN).

    With neither, it is plain batch norm with a learned affine (unconditional models).
    The normalisation itself keeps running statistics in ``norm``.
    """

    def __init__(self, num_features: int, num_classes: int = 0, cond_dim: int = 0,
                 eps: float = 1e-5, init: str = "ortho", sn_eps: float = 1e-6,
                 use_sn: bool = True, momentum: float = 0.1):
        super().__init__()
        if num_classes and cond_dim:
            raise ValueError("give num_classes (per-class tables) or cond_dim (linear maps), not both")
        self.num_features, self.num_classes, self.cond_dim = num_features, num_classes, cond_dim
        conditional = bool(num_classes or cond_dim)
        self.norm = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=not conditional)
        if cond_dim:
            self.gain = sn_linear(cond_dim, num_features, init, sn_eps, use_sn, bias=False)
            self.bias = sn_linear(cond_dim, num_features, init, sn_eps, use_sn, bias=False)
        elif num_classes:
            # Tables start at the identity transform (gain 1, bias 0) for every class.
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    @property
    def conditional(self) -> bool:
        return bool(self.num_classes or self.cond_dim)

    def scale_shift(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample (gain, bias) of shape N×C for class indices or conditioning vectors."""
        return 1.0 + self.gain(cond), self.bias(cond)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        out = self.norm(x)
        if not self.conditional:
            return out
        gain, bias = self.scale_shift(cond)
        return out * gain[:, :, None, None].to(out.dtype) + bias[:, :, None, None].to(out.dtype)


class SelfAttention(nn.Module):
    """Non-local self-attention as in SAGAN/BigGAN, blended in by a learned ``gamma`` (init 0)."""

    def __init__(self, channels: int, init="ortho", eps=1e-6, use_sn=True):
        super().__init__()
        self.theta = sn_conv(channels, channels // 8, 1, init, eps, use_sn, bias=False)
        self.phi = sn_conv(channels, channels // 8, 1, init, eps, use_sn, bias=False)
        self.g = sn_conv(channels, channels // 2, 1, init, eps, use_sn, bias=False)
        self.o = sn_conv(channels // 2, channels, 1, init, eps, use_sn, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2)                          # N × C/8 × HW
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)             # N × C/8 × HW/4
        g = F.max_pool2d(self.g(x), 2).flatten(2)                 # N × C/2 × HW/4
        attention = torch.softmax(theta.transpose(1, 2) @ phi, -1)  # N × HW × HW/4
        out = (g @ attention.transpose(1, 2)).view(n, c // 2, h, w)
        return x + self.gamma * self.o(out)
