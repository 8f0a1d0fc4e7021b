"""Loading state dicts into modules with every mismatch named.

Shared by the cgt model files (:mod:`cgt.checkpoints`) and the BigGAN-PyTorch
importer (:mod:`cgt.biggan_pytorch`).
"""

from __future__ import annotations

import torch


class CheckpointError(RuntimeError):
    pass


def mismatch_error(title: str, missing, unexpected, shapes) -> CheckpointError:
    """One message naming every missing and unexpected key and every shape mismatch."""
    lines = [title]
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected)):
        if keys:
            lines.append(f"  {label} ({len(keys)}): {', '.join(keys[:8])}"
                         + (" …" if len(keys) > 8 else ""))
    if shapes:
        lines.append("  shape mismatches: " + "; ".join(sorted(shapes)[:6]))
    return CheckpointError("\n".join(lines))


def load_state(module: torch.nn.Module, state: dict, what: str) -> None:
    """Load a state dict, naming every missing or unexpected key and shape mismatch."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        title = f"the {what} checkpoint does not fit the model:"
        classes = getattr(getattr(module, "cfg", None), "num_classes", None)
        for key in ("shared.weight", "embed.parametrizations.weight.original",
                    "blocks.0.0.bn1.gain.weight"):
            if key in state and key in own and state[key].shape[0] != own[key].shape[0]:
                title += (f" it has {state[key].shape[0]} classes, the model {classes} "
                          f"(load it with its own class count, then transfer to new classes)")
                break
        raise mismatch_error(title, missing, unexpected, shapes)
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
