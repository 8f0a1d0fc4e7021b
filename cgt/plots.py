"""Figures the chapters share: labelled contact sheets and image grids."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

sns.set_theme(context="notebook", style="white")


def use_cjk_font() -> None:
    """Let matplotlib fall back to a CJK face (from the data cache) for Hanzi labels."""
    from matplotlib import font_manager

    from .data.sources import deb_root

    path = deb_root("fonts-wqy-microhei") / "usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    # Fallback works between the families listed in font.family, not within sans-serif.
    if name not in plt.rcParams["font.family"]:
        plt.rcParams["font.family"] = ["DejaVu Sans", name]


def image_grid(images: np.ndarray, columns: int, pad: int = 1, fill: int = 255) -> np.ndarray:
    """Tile uint8 N×H×W×C images into one array, ``columns`` per row (blank cells filled)."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad, c), fill, np.uint8)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        grid[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = image
    return grid


def contact_sheet(dataset, per_class: int = 8, classes=None, seed: int = 0, ax=None,
                  title: str | None = None):
    """One row of ``per_class`` random images per class, the class name on the left."""
    from .data import class_index

    index = range(len(dataset.classes)) if classes is None else class_index(dataset, classes)
    rng = np.random.default_rng(seed)
    rows, names = [], []
    for c in index:
        members = np.flatnonzero(dataset.labels == c)
        if len(members) == 0:
            continue
        pick = rng.choice(members, min(per_class, len(members)), replace=False)
        row = dataset.images[pick]
        if len(row) < per_class:
            blank = np.full((per_class - len(row),) + row.shape[1:], 255, np.uint8)
            row = np.concatenate([row, blank])
        rows.append(row)
        names.append(dataset.classes[c])
    if any(not n.isascii() for n in names):
        use_cjk_font()
    grid = image_grid(np.concatenate(rows), per_class)
    height = dataset.images.shape[1] + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(per_class * 0.55 + 1.5, len(rows) * 0.55 + 0.4))
    ax.imshow(grid[..., 0] if grid.shape[2] == 1 else grid, cmap="gray", vmin=0, vmax=255)
    ax.set_yticks([height * i + height / 2 - 1 for i in range(len(rows))], names)
    ax.set_xticks([])
    ax.tick_params(length=0)
    sns.despine(ax=ax, left=True, bottom=True)
    if title:
        ax.set_title(title, loc="left")
    return ax


def generator_sheet(generator, classes=None, per_class: int = 8, seed: int = 0, ax=None,
                    title: str | None = None):
    """A contact sheet of ``per_class`` samples of each of ``classes`` (generator indices),
    labelled with the generator's class names."""
    from .data import ImageSet
    from .metrics import generate

    classes = list(range(generator.cfg.num_classes)) if classes is None else list(classes)
    images, labels = generate(generator, per_class * len(classes), classes=classes, seed=seed)
    names = list(generator.cfg.class_names) or [str(c) for c in range(generator.cfg.num_classes)]
    samples = ImageSet(images, labels, names, name="samples")
    return contact_sheet(samples, per_class, classes=[names[c] for c in classes], ax=ax,
                         title=title)


def score_heatmaps(scores, vmax: float | None = None):
    """Heat maps of learned similarity scores: one panel per layer (columns) and BN
    parameter (rows); in each, new classes down and old classes across."""
    layers = sorted(scores["layer"].unique())
    kinds = list(dict.fromkeys(scores["parameter"]))
    vmax = vmax or float(scores["score"].abs().max())
    fig, axes = plt.subplots(len(kinds), len(layers), squeeze=False,
                             figsize=(1.9 * len(layers) + 1.2, 1.0 + 1.1 * len(kinds)
                                      * max(1, scores["new class"].nunique() / 2)))
    for r, kind in enumerate(kinds):
        for c, layer in enumerate(layers):
            panel = scores[(scores.layer == layer) & (scores.parameter == kind)]
            matrix = panel.pivot(index="new class", columns="old class", values="score")
            matrix = matrix.loc[list(dict.fromkeys(panel["new class"])),
                                list(dict.fromkeys(panel["old class"]))]
            sns.heatmap(matrix, ax=axes[r, c], cmap="vlag", center=0, vmin=-vmax, vmax=vmax,
                        cbar=c == len(layers) - 1, xticklabels=r == len(kinds) - 1,
                        yticklabels=c == 0)
            axes[r, c].set(title=f"layer {layer}, {kind}" , xlabel="", ylabel="")
    fig.tight_layout()
    return fig
