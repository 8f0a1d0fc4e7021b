"""Import and export of BigGAN-PyTorch state dicts (REFERENCE.md §3 layout).

BigGAN-PyTorch keeps each spectrally normalised weight raw, next to buffers
``u0`` (the left singular vector, shape 1×out) and ``sv0`` (the last singular
value); its batch norms store ``stored_mean``/``stored_var``; the output BN calls
its affine ``gain``/``bias``.  ``cgt`` uses PyTorch's spectral-norm
parametrization (``parametrizations.weight.original`` with ``_u`` and ``_v``)
and ``nn.BatchNorm2d``.  The conversion is a key mapping plus the vectors of
PyTorch's parametrization.

What σ is: BigGAN-PyTorch's ``sv0`` is a logging buffer, never used to normalise.
Every forward (eval included) divides W by σ = ‖W v‖ with v = normalise(Wᵀu0),
one power-iteration step from the stored ``u0`` (updated only in training).  An
EMA generator (``G_ema.pth``) averages ``sv0`` over training, so it is not even σ
of its own weights.  The import therefore ignores ``sv0`` and sets PyTorch's
``_v = v`` and ``_u = normalise(W v)``, whose eval-mode σ = _uᵀ W _v is exactly
‖W v‖.  (In training mode PyTorch then iterates once more from ``_u``, where
BigGAN-PyTorch would start again from ``u0``.)  The export writes ``u0 = _u`` and
``sv0`` = the cgt layer's σ; a round trip is exact when ``_u``, ``_v`` are the
singular vectors, i.e. once the power iteration has converged.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .state_dicts import CheckpointError, mismatch_error
from .nn import Discriminator, GANConfig, Generator, imagenet128_config

SN_ORIGINAL = ".parametrizations.weight.original"
SN_U = ".parametrizations.weight.0._u"
SN_V = ".parametrizations.weight.0._v"


def _their_key(key: str) -> str | None:
    """The BigGAN-PyTorch name of a cgt state-dict key (None: not stored there)."""
    if key.endswith(SN_V) or key.endswith("num_batches_tracked"):
        return None
    if key.endswith(SN_ORIGINAL):
        return key[: -len(SN_ORIGINAL)] + ".weight"
    if key.endswith(SN_U):
        return key[: -len(SN_U)] + ".u0"
    if key.startswith("output_layer.0."):
        return {"output_layer.0.weight": "output_layer.0.gain",
                "output_layer.0.running_mean": "output_layer.0.stored_mean",
                "output_layer.0.running_var": "output_layer.0.stored_var"}.get(key, key)
    return key.replace(".norm.running_mean", ".stored_mean").replace(".norm.running_var",
                                                                      ".stored_var")


def export_state(module: torch.nn.Module) -> dict:
    """A cgt G or D state dict in BigGAN-PyTorch's layout (for round trips and sharing)."""
    own = module.state_dict()
    out = {}
    for key, value in own.items():
        theirs = _their_key(key)
        if theirs is None:
            continue
        if key.endswith(SN_U):
            prefix = key[: -len(SN_U)]
            weight = own[prefix + SN_ORIGINAL].flatten(1)
            v = own[prefix + SN_V]
            out[theirs] = value[None].clone()
            out[theirs[:-2] + "sv0"] = (value @ weight @ v).reshape(1)
        else:
            out[theirs] = value.clone()
    return out


def import_state(module: torch.nn.Module, state: dict, what: str) -> None:
    """Load a BigGAN-PyTorch state dict into a cgt module, naming every mismatch."""
    own = module.state_dict()
    converted, used, missing, shapes = {}, set(), [], []
    for key, value in own.items():
        theirs = _their_key(key)
        if theirs is None:
            continue
        if theirs not in state:
            missing.append(theirs)
            continue
        used.add(theirs)
        tensor = state[theirs].to(value.dtype)
        if key.endswith(SN_U):
            tensor = tensor.reshape(-1)
            used.add(theirs[:-2] + "sv0")  # a logging buffer: read, never used (see above)
        if tuple(tensor.shape) != tuple(value.shape):
            shapes.append(f"{theirs}: checkpoint {tuple(tensor.shape)} vs model {tuple(value.shape)}")
        converted[key] = tensor
    unexpected = sorted(set(state) - used)
    if missing or unexpected or shapes:
        raise mismatch_error(f"the BigGAN-PyTorch {what} state dict does not fit the "
                             f"configuration:", missing, unexpected, shapes)
    for key, value in own.items():
        if key.endswith(SN_V):
            prefix = key[: -len(SN_V)]
            weight = converted[prefix + SN_ORIGINAL].flatten(1).to(torch.float64)
            v = F.normalize(weight.T @ converted[prefix + SN_U].to(torch.float64), dim=0, eps=1e-12)
            converted[key] = v.to(value.dtype)
            converted[prefix + SN_U] = F.normalize(weight @ v, dim=0, eps=1e-12).to(value.dtype)
        elif key.endswith("num_batches_tracked"):
            converted[key] = torch.zeros_like(value)
    module.load_state_dict(converted)


def _check_classes(state: dict, key: str, cfg: GANConfig, what: str) -> None:
    if key in state and state[key].shape[0] != cfg.num_classes:
        raise CheckpointError(
            f"the {what} checkpoint has {state[key].shape[0]} classes ({key} has "
            f"{state[key].shape[0]} rows) but the configuration asks for {cfg.num_classes}; "
            f"load it with num_classes={state[key].shape[0]} and then transfer to new classes")


def load_biggan_pytorch(g_state: dict, d_state: dict | None = None,
                        cfg: GANConfig | None = None) -> tuple[Generator, Discriminator | None]:
    """cgt networks holding BigGAN-PyTorch weights (ImageNet-128 configuration by default)."""
    cfg = cfg or imagenet128_config()
    _check_classes(g_state, "shared.weight", cfg, "generator")
    generator = Generator(cfg)
    import_state(generator, g_state, "generator")
    discriminator = None
    if d_state is not None:
        _check_classes(d_state, "embed.weight", cfg, "discriminator")
        discriminator = Discriminator(cfg)
        import_state(discriminator, d_state, "discriminator")
    return generator.eval(), discriminator.eval() if discriminator is not None else None
