"""Conditional Transferring Features (Wu, Wen, Chen & Li): low → high quality helps a cGAN.

Three networks:

* ``G_LH`` (:class:`LowToHigh`) turns a low-quality image (with its label ``g_L``)
  into a high-quality image of class ``c``, through ResBlock+Unpooling blocks with
  class-conditional BN; a noise vector ``z_m`` is embedded and concatenated to each
  block's input.
* Its blocks yield the *conditional transferring features* (Eq. 2): difference
  maps ``H_m`` between a block's output and the previous block's (Eq. 3, 4, taken
  in the DCT domain), concatenated with an embedding of the block's second CBN
  scale/shift for ``c`` and of ``g_L``.
* ``G_A`` (:class:`CTFGenerator`) is an SN-GAN+Projection-style generator with one
  extra convolution per resolution that reads ``CTF_m``.
* ``D_LH`` (:class:`BoxDiscriminator`) is a projection discriminator with a second
  head that regresses the box of a patch cut from a real image and pasted at a
  random place (self-supervision, §III-B).

The paper leaves many choices open; every one we made is listed in
:data:`OPEN_CHOICES`, which the chapter prints.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..nn import Discriminator, GANConfig, Generator
from ..nn.layers import ConditionalBatchNorm2d

OPEN_CHOICES = {
    "DCT": "orthonormal 2-D DCT-II over each feature map (a matrix product, exact to float "
           "precision); by linearity D⁻¹(D(a) − D(b)) = a − b, so Eq. (3)/(4) equal pixel-domain "
           "differences and the 'no DCT' ablation must match (we test that it does)",
    "H_m aggregation": "Eq. (4) as written: the mean over the S previous maps of the per-pair "
                       "differences, i.e. F_m^t minus the mean of the upscaled previous maps",
    "Embed in Eq. (2)": "a linear map of [γ_{m,2}^c, β_{m,2}^c, one-hot g_L] to `ctf_channels` "
                        "values, broadcast over the block's resolution; it trains in phase 2 with "
                        "G_A (in phase 1 no CTF is used, so it would get no gradient there)",
    "normalisation of Eq. (1)": "the CBNs of G_LH and G_A use batch statistics (over the batch "
                                "and the spatial axes, as the CBN of SN-GAN+Projection); the "
                                "paper's 'across spatial axes' also admits per-sample (instance) "
                                "statistics, which we do not use",
    "noise embedding": "z_m (dim `noise_dim`) → linear → `noise_channels` maps at the block's "
                       "input resolution, concatenated to its input",
    "G_LH input": "the low-quality image upscaled bilinearly to the first block's input size, "
                  "then a 3×3 convolution to the block width",
    "G_A normalisation": "the text says both 'regular BN' and 'CBN'; G_A uses CBN as "
                         "SN-GAN+Projection does, so the baseline and ours differ only in the "
                         "CTF path",
    "G_A ← CTF": "per resolution: concatenate CTF_m to the block output, 3×3 conv back to the "
                 "block width, added as a residual",
    "patch": "a square patch of 1/4 the side cut from a random real high-quality image, pasted "
             "at a uniform random place; box = (x0, y0, x1, y1) / size; a near-uniform patch "
             "(pixel standard deviation below 0.1, e.g. black background) is drawn again",
    "self-supervision loss": "smooth-L1 between predicted and true normalised boxes, on pasted "
                             "real and pasted generated images, for D only (weight `lambda_ss`); "
                             "the head is linear on D's last feature maps before pooling",
    "phases": "phase 1 (tasks ②+③) trains G_LH against D_LH until `phase1_patience` "
              "evaluations in a row bring no better FID, at most `phase1_iterations` steps "
              "(the paper: 'until no significant improvement'); phase 2 (tasks ①+③) freezes "
              "the G_LH of phase 1's best FID and trains G_A against phase 1's last D_LH for "
              "as many steps as the baseline's generator takes; phase 1 is extra compute",
    "low-quality pool": "CTFs at sampling time come from a random low-quality image of the "
                        "pool with a random noise z_m; its class c is the class G_A is asked for. "
                        "Where the pool's labels are the high-quality classes (down-sampled "
                        "images), the image is drawn from class c itself (g_L = c), so that G_LH "
                        "is never asked to turn one class into another; a pool of other classes "
                        "(digits for characters) is drawn from at random",
}


# ---------------------------------------------------------------------------
# The DCT of Eq. (3)/(4)

def dct_matrix(n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """The orthonormal DCT-II matrix C (n×n): C[k, i] = α_k cos(π (2i + 1) k / 2n)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    matrix = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix.to(dtype=dtype, device=device)


def dct2(x: torch.Tensor) -> torch.Tensor:
    """2-D orthonormal DCT-II over the last two dimensions (scipy's ``dctn(norm="ortho")``)."""
    rows = dct_matrix(x.shape[-2], x.dtype, x.device)
    cols = dct_matrix(x.shape[-1], x.dtype, x.device)
    return rows @ x @ cols.T


def idct2(y: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`dct2` (C is orthonormal, so its transpose)."""
    rows = dct_matrix(y.shape[-2], y.dtype, y.device)
    cols = dct_matrix(y.shape[-1], y.dtype, y.device)
    return rows.T @ y @ cols


def upscale(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def grey(images: torch.Tensor) -> torch.Tensor:
    """CvtGray: ITU-R 601 luma of RGB images; grey images pass through."""
    if images.shape[1] == 1:
        return images
    weights = images.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]
    return (images * weights).sum(1, keepdim=True)


def difference_maps(current: torch.Tensor, previous: torch.Tensor,
                    domain: str = "dct") -> torch.Tensor:
    """H_m of Eq. (3) (``previous`` the grey low-quality image) and Eq. (4)
    (``previous`` the S maps of block m − 1): for every map F_m^t, the mean
    over s of D(F_m^t) − D(Upscale(F_{m-1}^s)), taken back with D⁻¹.
    ``domain="pixel"`` skips the transform (the ablation)."""
    if domain not in ("dct", "pixel"):
        raise ValueError(f"unknown difference domain '{domain}'; valid: dct, pixel")
    reference = upscale(previous, current.shape[-1])
    if domain == "pixel":
        return current - reference.mean(1, keepdim=True)
    current_f, reference_f = dct2(current.float()), dct2(reference.float())
    difference = current_f - reference_f.mean(1, keepdim=True)
    return idct2(difference).to(current.dtype)


# ---------------------------------------------------------------------------
# Self-supervision: paste a patch, predict its box

def paste_patches(images: torch.Tensor, donors: torch.Tensor, generator: torch.Generator | None = None,
                  fraction: float = 0.25, min_spread: float = 0.1,
                  tries: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a square patch (``fraction`` of the side) at a random place of a random donor
    image and paste it at a random place of each image.  A patch whose pixels vary by
    less than ``min_spread`` (standard deviation, images in [-1, 1]: e.g. the black
    background of Fashion-MNIST) shows nowhere, so it is drawn again, up to ``tries``
    times, keeping the most varied.  Returns the pasted images and the boxes
    (x0, y0, x1, y1) / size of where each patch now lies."""
    if donors.shape[1:] != images.shape[1:]:
        raise ValueError(f"donor images {tuple(donors.shape[1:])} do not match {tuple(images.shape[1:])}")
    n, _, height, width = images.shape
    side = max(1, int(round(fraction * min(height, width))))
    picks = torch.randint(len(donors), (n, tries), generator=generator)
    sx = torch.randint(0, width - side + 1, (n, tries), generator=generator)
    sy = torch.randint(0, height - side + 1, (n, tries), generator=generator)
    place = torch.randint(0, width - side + 1, (n, 2), generator=generator)
    place[:, 1] = torch.randint(0, height - side + 1, (n,), generator=generator)
    steps = torch.arange(side)
    rows, cols = sy[..., None] + steps, sx[..., None] + steps
    candidates = donors.cpu()[picks[..., None, None], :, rows[..., :, None], cols[..., None, :]]
    spread = candidates.float().flatten(2).std(2)  # n × tries
    varied = spread >= min_spread
    choice = torch.where(varied.any(1), varied.float().argmax(1), spread.argmax(1))
    patches = candidates[torch.arange(n), choice].permute(0, 3, 1, 2).to(images.device, images.dtype)
    out = images.clone()
    for i, (px, py) in enumerate(place.tolist()):
        out[i, :, py:py + side, px:px + side] = patches[i]
    boxes = torch.stack([place[:, 0], place[:, 1], place[:, 0] + side, place[:, 1] + side], 1).float()
    return out, (boxes / torch.tensor([width, height, width, height])).to(images.device)


class BoxDiscriminator(Discriminator):
    """D_LH: the projection discriminator plus a head that regresses a pasted patch's
    box from the last feature maps, before they are pooled (pooling would throw away
    where things are)."""

    def __init__(self, cfg: GANConfig):
        super().__init__(cfg)
        channels = self.linear.weight.shape[1]
        side = cfg.resolution // 2 ** sum(block[0].downsample for block in self.blocks)
        self.box_head = nn.Linear(channels * side * side, 4)

    def predict_box(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.box_head(F.relu(self.feature_maps(x)).flatten(1)))


BOX_BETA = 0.1  # smooth-L1's quadratic zone: a tenth of the image side


def box_loss(predicted: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    return F.smooth_l1_loss(predicted.float(), boxes.float(), beta=BOX_BETA)


def constant_floor(boxes: torch.Tensor) -> torch.Tensor:
    """The box loss of the best prediction that ignores the image: every coordinate's
    median over these boxes (fitted to them, so a little below a real constant's loss)."""
    return box_loss(boxes.median(0).values.expand_as(boxes), boxes)


def self_supervision_loss(discriminator: BoxDiscriminator, images: torch.Tensor,
                          donors: torch.Tensor, generator: torch.Generator | None = None) -> tuple:
    """(smooth-L1 between the boxes D predicts for pasted ``images`` and the true ones,
    the :func:`constant_floor` of those boxes)."""
    pasted, boxes = paste_patches(images, donors, generator)
    return box_loss(discriminator.predict_box(pasted), boxes), constant_floor(boxes)


# ---------------------------------------------------------------------------
# G_LH: low-quality image → high-quality image, yielding CTF_m on the way

class LowToHighBlock(nn.Module):
    """ResBlock+Unpooling of Fig. 3: [input | noise maps] → CBN_{m,1} → ReLU → conv →
    CBN_{m,2} → ReLU → unpool → conv, plus an unpooled 1×1 shortcut.  CBN_{m,2} sits
    before the unpooling, at block m − 1's resolution, as the paper notes."""

    def __init__(self, cin: int, cout: int, classes: int, noise_dim: int, noise_channels: int,
                 resolution: int):
        super().__init__()
        self.resolution, self.noise_channels = resolution, noise_channels
        self.noise = nn.Linear(noise_dim, noise_channels * resolution * resolution)
        width = cin + noise_channels
        self.bn1 = ConditionalBatchNorm2d(width, num_classes=classes)
        self.conv1 = nn.Conv2d(width, cout, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(cout, num_classes=classes)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(width, cout, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        noise = self.noise(z).view(len(z), self.noise_channels, self.resolution, self.resolution)
        x = torch.cat([x, noise.to(x.dtype)], 1)
        h = F.relu(self.bn2(self.conv1(F.relu(self.bn1(x, c))), c))
        h = self.conv2(F.interpolate(h, scale_factor=2, mode="nearest"))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class LowToHigh(nn.Module):
    """G_LH: ``forward(low, g_low, c, z)`` → (high-quality image of class ``c``, [CTF_m]).

    ``low`` is a low-quality image batch (any size; resized to ``base`` px), ``g_low``
    its labels (``low_classes`` of them), ``c`` the high-quality classes, ``z`` one
    noise vector per block (N × blocks × noise_dim).
    """

    def __init__(self, channels: int, classes: int, low_classes: int, resolution: int = 32,
                 base: int = 8, width: int = 64, noise_dim: int = 32, noise_channels: int = 4,
                 ctf_channels: int = 8, domain: str = "dct"):
        super().__init__()
        self.channels, self.classes, self.low_classes = channels, classes, low_classes
        self.base, self.noise_dim, self.domain = base, noise_dim, domain
        self.blocks_count = int(math.log2(resolution // base))
        if base * 2 ** self.blocks_count != resolution:
            raise ValueError(f"resolution {resolution} is not base {base} times a power of two")
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            LowToHighBlock(width, width, classes, noise_dim, noise_channels, base * 2 ** m)
            for m in range(self.blocks_count))
        # Eq. (2)'s Embed of [γ_{m,2}^c, β_{m,2}^c, one-hot g_L] per block
        self.ctf_embed = nn.ModuleList(nn.Linear(2 * width + low_classes, ctf_channels)
                                       for _ in range(self.blocks_count))
        self.ctf_channels = width + ctf_channels
        self.output = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, padding=1))

    def resolutions(self) -> list[int]:
        """The resolution of each CTF_m (the output size of block m)."""
        return [self.base * 2 ** (m + 1) for m in range(self.blocks_count)]

    def forward(self, low: torch.Tensor, g_low: torch.Tensor, c: torch.Tensor, z: torch.Tensor):
        image, differences, codes = self.maps(low, g_low, c, z)
        return image, self.transferring_features(differences, codes)

    def maps(self, low: torch.Tensor, g_low: torch.Tensor, c: torch.Tensor, z: torch.Tensor):
        """(high-quality image, [H_m] of Eq. (3)/(4), [[γ_{m,2}^c, β_{m,2}^c, one-hot g_L]]):
        everything of Eq. (2) but its Embed."""
        if low.shape[1] not in (1, self.channels):
            raise ValueError(f"low-quality images have {low.shape[1]} channels; this G_LH "
                             f"takes 1 or {self.channels}")
        if z.shape[1:] != (self.blocks_count, self.noise_dim):
            raise ValueError(f"z must be N × {self.blocks_count} × {self.noise_dim}, got {tuple(z.shape)}")
        low = upscale(low, self.base).expand(-1, self.channels, -1, -1)
        previous = grey(low)  # Eq. (3): block 1 compares with the grey low-quality image
        h = self.stem(low)
        one_hot = F.one_hot(g_low, self.low_classes).to(h.dtype)
        differences, codes = [], []
        for block in self.blocks:
            h = block(h, c, z[:, len(differences)])
            differences.append(difference_maps(h, previous, self.domain))
            gain, bias = block.bn2.scale_shift(c)
            codes.append(torch.cat([gain, bias, one_hot], 1))
            previous = h
        return torch.tanh(self.output(h)), differences, codes

    def transferring_features(self, differences: list,
                              codes: list) -> list[torch.Tensor]:
        """CTF_m = [H_m, Embed([γ_{m,2}^c, β_{m,2}^c, one-hot g_L])] of Eq. (2),
        the embedding broadcast over the block's resolution."""
        ctfs = []
        for h, code, embed in zip(differences, codes, self.ctf_embed):
            code = embed(code.to(h.dtype))[:, :, None, None]
            ctfs.append(torch.cat([h, code.expand(-1, -1, *h.shape[-2:])], 1))
        return ctfs

    def sample_noise(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        return torch.randn(n, self.blocks_count, self.noise_dim, generator=generator).to(device)


def pool_draw(pool_labels: torch.Tensor, c: torch.Tensor, same_classes: bool) -> torch.Tensor:
    """Indices of the low-quality images that G_LH turns into classes ``c``: a random
    image of class c itself where the pool's labels are the high-quality classes
    (``same_classes``) and the pool holds that class, else any image of the pool."""
    anywhere = torch.randint(len(pool_labels), (len(c),), device=pool_labels.device)
    if not same_classes:
        return anywhere
    classes = max(int(pool_labels.max()), int(c.max())) + 1
    counts = torch.bincount(pool_labels, minlength=classes)
    order = torch.argsort(pool_labels, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    offset = (torch.rand(len(c), device=c.device) * counts[c]).long()
    own = order[(starts[c] + offset).clamp(max=len(order) - 1)]
    return torch.where(counts[c] > 0, own, anywhere)


# ---------------------------------------------------------------------------
# G_A: the conditional generator that reads CTF_m

class CTFGenerator(nn.Module):
    """G_A: a cgt :class:`~cgt.nn.Generator` whose stage outputs at the CTF resolutions
    get ``h + conv([h | CTF_m])``.  ``forward(z, y)`` draws the CTFs itself: a random
    low-quality image of ``pool`` and fresh noise go through the frozen ``low_to_high``
    asked for class ``y`` (the same interface as every generator in cgt, so the
    training loop and the metrics need nothing new).  With ``same_classes`` the pool
    image of class ``y`` is drawn from class ``y`` (:func:`pool_draw`)."""

    def __init__(self, generator: nn.Module, low_to_high: LowToHigh, pool: torch.Tensor,
                 pool_labels: torch.Tensor, same_classes: bool = False):
        super().__init__()
        self.body, self.cfg, self.same_classes = generator, generator.cfg, same_classes
        self.low_to_high = low_to_high
        for name, p in self.low_to_high.named_parameters():
            p.requires_grad_(name.startswith("ctf_embed."))  # G_LH frozen, its Embed trains
        self.register_buffer("pool", pool)
        self.register_buffer("pool_labels", pool_labels)
        width = generator.blocks[0][0].conv2.weight.shape[0]
        self.ctf_resolutions = low_to_high.resolutions()
        self.ctf_convs = nn.ModuleDict({
            str(r): nn.Conv2d(width + low_to_high.ctf_channels, width, 3, padding=1)
            for r in self.ctf_resolutions})

    def train(self, mode: bool = True):
        super().train(mode)
        self.low_to_high.eval()  # frozen in phase 2, statistics included
        return self

    def transferring_features(self, y: torch.Tensor) -> list[torch.Tensor]:
        """CTF_m for class ``y`` from random pool images: G_LH's maps without gradient
        (it is frozen), Eq. (2)'s Embed with it (it trains with G_A)."""
        index = pool_draw(self.pool_labels, y, self.same_classes)
        z = self.low_to_high.sample_noise(len(y), device=y.device)
        with torch.no_grad():
            _, differences, codes = self.low_to_high.maps(self.pool[index], self.pool_labels[index], y, z)
        return self.low_to_high.transferring_features(differences, codes)

    def forward(self, z: torch.Tensor, y: torch.Tensor, ctfs: list[torch.Tensor] | None = None):
        g = self.body
        ctfs = self.transferring_features(y) if ctfs is None else ctfs
        by_resolution = {c.shape[-1]: c for c in ctfs}
        z0, conds = g.conditioning(z, y)
        h = g.linear(z0).view(z.shape[0], -1, self.cfg.bottom_width, self.cfg.bottom_width)
        for stage, cond in zip(g.blocks, conds):
            for layer in stage:
                h = layer(h, cond)
            if h.shape[-1] in by_resolution:
                ctf = by_resolution[h.shape[-1]].to(h.dtype)
                h = h + self.ctf_convs[str(h.shape[-1])](torch.cat([h, ctf], 1))
        return torch.tanh(g.output_layer(h))

    def sample_inputs(self, *args, **kwargs):
        return self.body.sample_inputs(*args, **kwargs)


class LowToHighSampler(nn.Module):
    """Phase 1 as a plain generator: ``forward(z, y)`` turns a low-quality image of the
    pool (of class ``y`` itself with ``same_classes``, :func:`pool_draw`) into class
    ``y``; ``z`` supplies the per-block noise."""

    def __init__(self, low_to_high: LowToHigh, cfg: GANConfig, pool: torch.Tensor, pool_labels: torch.Tensor,
                 same_classes: bool = False):
        super().__init__()
        self.low_to_high, self.cfg, self.same_classes = low_to_high, cfg, same_classes
        self.register_buffer("pool", pool)
        self.register_buffer("pool_labels", pool_labels)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        index = pool_draw(self.pool_labels, y, self.same_classes)
        noise = z[:, :self.low_to_high.blocks_count * self.low_to_high.noise_dim]
        noise = noise.reshape(len(z), self.low_to_high.blocks_count, self.low_to_high.noise_dim)
        return self.low_to_high(self.pool[index], self.pool_labels[index], y, noise)[0]

    def sample_inputs(self, n: int, classes=None, generator=None, device=None, truncation=None, start=0):
        from ..nn.biggan import truncated_normal

        device = device or self.pool.device
        pool = torch.as_tensor(list(range(self.cfg.num_classes)) if classes is None else classes)
        y = pool[(torch.arange(n) + start) % len(pool)].to(device)
        return truncated_normal(n, self.cfg.dim_z, truncation, generator).to(device), y


# ---------------------------------------------------------------------------
# Training: phase 1 (tasks ② + ③), then phase 2 (tasks ① + ③)

class SelfSupervision:
    """``d_regulariser(D, real, fake)`` for :func:`cgt.train.train_gan`: ``weight`` × the
    box loss on pasted real and pasted generated images, patches cut from ``donors``
    (real high-quality images).  It keeps the mean box loss and constant-predictor floor
    since the last :meth:`report`, so that the run's history shows whether the head
    learned anything (a loss below the floor) or only the boxes' average place."""

    def __init__(self, donors: torch.Tensor, weight: float, seed: int = 0):
        self.donors, self.weight = donors, weight
        self.rng = torch.Generator().manual_seed(seed)
        self.losses, self.floors = [], []

    def __call__(self, discriminator: BoxDiscriminator, real: torch.Tensor, fake: torch.Tensor):
        both = torch.cat([real, fake.detach()])
        loss, floor = self_supervision_loss(discriminator, both, self.donors, self.rng)
        self.losses.append(loss.item())
        self.floors.append(floor.item())
        return self.weight * loss

    def report(self) -> dict:
        """{"box_loss", "box_floor"}: the means since the last report ({} if none)."""
        if not self.losses:
            return {}
        means = {"box_loss": sum(self.losses) / len(self.losses),
                 "box_floor": sum(self.floors) / len(self.floors)}
        self.losses, self.floors = [], []
        return means

    def reporting(self, evaluate):
        """``evaluate`` of :func:`cgt.train.train_gan`, its metrics joined by :meth:`report`."""
        return lambda generator, iteration: {**evaluate(generator, iteration), **self.report()}


def select_low_to_high(sampler: LowToHighSampler, discriminator: nn.Module):
    """Phase 1 trains G_LH and D_LH (not Eq. (2)'s Embed: no CTF is used in phase 1)."""
    trainable = [p for n, p in sampler.low_to_high.named_parameters() if not n.startswith("ctf_embed.")]
    return trainable, list(discriminator.parameters())


def select_conditional(generator: CTFGenerator, discriminator: nn.Module):
    """Phase 2 trains G_A (its body, the CTF convolutions and Eq. (2)'s Embed, through
    which the CTFs reach it) and D_LH; the rest of G_LH stays frozen."""
    trainable = [p for n, p in generator.named_parameters()
                 if not n.startswith("low_to_high.") or n.startswith("low_to_high.ctf_embed.")]
    return trainable, list(discriminator.parameters())


def build_from_config(config: dict) -> torch.nn.Module:
    """The untrained generator of a cell's config (registered in :mod:`cgt.builders`): the
    pool is a placeholder of its shape until the saved weights fill it."""
    model = config["model"]
    generator = Generator(GANConfig(**model["gan"]))
    if model["pool"] is None:
        return generator
    low_to_high = LowToHigh(generator.cfg.channels, generator.cfg.num_classes,
                            model["low_classes"], domain=model["domain"], **model["g_lh"])
    return CTFGenerator(generator, low_to_high, torch.zeros(model["pool"]),
                        torch.zeros(model["pool"][0], dtype=torch.long), model["same_classes"])
