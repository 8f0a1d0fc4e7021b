"""Networks: BigGAN-style generator / projection discriminator and their layers."""

from .biggan import (Discriminator, GANConfig, Generator, count_parameters,
                     imagenet128_config)
from .layers import ConditionalBatchNorm2d, SelfAttention, sn_conv, sn_linear

__all__ = ["ConditionalBatchNorm2d", "Discriminator", "GANConfig", "Generator",
           "SelfAttention", "count_parameters", "imagenet128_config", "sn_conv", "sn_linear"]
