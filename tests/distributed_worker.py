"""Trains a small G/D pair for a few steps and saves the result; run once plainly and
once under torchrun by tests/test_distributed.py.  argv: output file, batch size.

It also keeps the gradient each optimiser step used (after the cross-process mean).
Everything runs in float64, so that summation order (a half batch per process, and
whichever kernels the CPU picks) changes the result only at float64 rounding."""

import sys

import torch

from cgt import distributed
from cgt.nn import Discriminator, GANConfig, Generator
from cgt.train import TrainConfig, train_gan

if __name__ == "__main__":
    out, batch = sys.argv[1], int(sys.argv[2])
    steps, average = [], distributed.average_gradients

    def recording_average(parameters):
        parameters = list(parameters)
        average(parameters)
        steps.append(torch.cat([p.grad.reshape(-1) for p in parameters if p.grad is not None]))

    distributed.average_gradients = recording_average
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    cfg = GANConfig(num_classes=2, ch=8, dim_z=16)
    images = torch.rand(64, 1, 32, 32) * 2 - 1
    labels = torch.arange(64) % 2
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    initial = {k: v.clone() for k, v in generator.state_dict().items()}
    train_gan(generator, discriminator, images, labels,
              TrainConfig(iterations=3, batch_size=batch, device="cpu", precision="fp32"),
              progress=False)
    torch.manual_seed(1)
    z, y = torch.randn(32, cfg.dim_z), torch.arange(32) % 2
    with torch.no_grad():
        output = generator.train()(z, y)  # batch statistics: what the training steps saw
        # D has no batch norm; eval() keeps the spectral-norm vectors as training left them
        judged = discriminator.eval()(images[:32], labels[:32])
    if distributed.is_main_process():
        torch.save({"initial": initial, "generator": generator.state_dict(),
                    "discriminator": discriminator.state_dict(), "gradients": steps,
                    "output": output, "judged": judged, "processes": distributed.world_size()}, out)
