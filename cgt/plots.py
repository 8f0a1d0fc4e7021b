"""Figures and tables the chapters share: labelled contact sheets and image grids, the
forest plot of claims, and tables formatted for reading."""

from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
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


VERDICT_COLOURS = {"supported": "#1a7f37", "contradicted": "#cf222e", "inconclusive": "#6e7781",
                   "untestable": "#bc4c00"}


# What a claims row's estimate measures, by its kind (cgt.claims)
SCALES = {"superiority": "A − B", "equivalence": "A / B", "non-inferiority": "A / B",
          "speed": "speed-up of A (×)"}


def _finite(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def claims_forest(summary: pd.DataFrame, width: float = 10.0):
    """A forest plot of claims rows (``cgt.runs.summary_table``): one row per claim, each
    on its own scale (a difference, a ratio A / B or a speed-up), with the estimate and
    its interval coloured by verdict, the no-effect value as a solid line and the margins
    or target as dashed ones (``lines``); a row with no interval shows its reason
    instead.  Returns the figure (one axes per row)."""
    rows = list(summary.to_dict("records"))
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, 0.62 * len(rows) + 0.5), squeeze=False)
    fig.subplots_adjust(left=0.42, right=0.82, hspace=1.1, top=1 - 0.25 / fig.get_figheight())
    for ax, row in zip(axes[:, 0], rows):
        colour = VERDICT_COLOURS.get(row["verdict"], "black")
        ax.set_yticks([])
        sns.despine(ax=ax, left=True)
        label = textwrap.shorten(f"{row['chapter']}: {row['claim']}", 70, placeholder="…")
        ax.text(-0.02, 0.5, f"{label}\n{SCALES.get(row.get('kind'), '')}", transform=ax.transAxes,
                ha="right", va="center", fontsize=9)
        ax.text(1.02, 0.5, f"{row['verdict']} ({row['seeds']} seeds)", transform=ax.transAxes,
                ha="left", va="center", fontsize=9, color=colour, weight="bold")
        interval = row.get("interval")
        ends = [_finite(v) for v in interval] if isinstance(interval, (list, tuple)) else [None, None]
        estimate = _finite(row.get("estimate"))
        lines = row.get("lines")
        lines = [float(v) for v in lines] if isinstance(lines, (list, tuple)) else []
        if estimate is None or ends == [None, None]:
            ax.set_xticks([])
            sns.despine(ax=ax, left=True, bottom=True)
            why = row.get("reason") or "no interval"
            ax.text(0.0, 0.5, textwrap.shorten(f"no interval: {why}", 62, placeholder="…"),
                    transform=ax.transAxes, va="center", fontsize=8, color=colour, style="italic")
            continue
        known = [v for v in (*ends, estimate, *lines) if v is not None]
        low, high = min(known), max(known)
        pad = 0.08 * (high - low or abs(high) or 1.0)
        ax.set_xlim(low - pad, high + pad)
        left = ends[0] if ends[0] is not None else low - pad
        right = ends[1] if ends[1] is not None else high + pad
        ax.hlines(0, left, right, color=colour, linewidth=3)
        ax.plot([estimate], [0], "o", color=colour, markersize=7)
        for i, value in enumerate(lines):
            ax.axvline(value, color="black", linewidth=1, linestyle="-" if i == 0 else "--")
        ax.set_ylim(-1, 1)
        ax.tick_params(axis="x", labelsize=8)
    return fig


def claims_glance(summary: pd.DataFrame) -> pd.DataFrame:
    """The compact table beside :func:`claims_forest`: per claims row its chapter and
    claim, verdict, seeds, "estimate [interval]" ("open" for an unbounded side, "—"
    without an interval), the p-value after Holm's correction and why a row is
    inconclusive or untestable."""
    def estimate(row) -> str:
        interval, value = row["interval"], _finite(row["estimate"])
        if not isinstance(interval, (list, tuple)) or value is None:
            return "—"
        ends = ", ".join("open" if v is None else f"{v:.3g}" for v in interval)
        return f"{value:.3g} [{ends}]"

    return pd.DataFrame({"claim": summary["chapter"] + ": " + summary["claim"],
                         "verdict": summary["verdict"], "seeds": summary["seeds"],
                         "estimate [interval]": [estimate(r) for r in summary.to_dict("records")],
                         "p (Holm)": summary["adjusted_p"],
                         "why (inconclusive or untestable)": summary["reason"]})


def readable_table(table: pd.DataFrame, css_class: str = "cgt-table", wide: str | None = None):
    """``table`` styled for reading (a pandas ``Styler``): no index, missing values as
    "—", numbers to 3 significant digits, long text wrapped in its cell instead of cut
    or scrolled, the column ``wide`` (long prose) given the room; ``css_class`` marks it
    for the book's check (``cgt.browser``)."""
    def number(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    def cell(value) -> str:
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join("—" if v is None else number(v) for v in value) + "]"
        return number(value)

    named = any(name is not None for name in table.index.names)
    if named or not pd.api.types.is_integer_dtype(table.index):  # labels: shown as a column
        table = table.reset_index().rename(columns={} if named else {"index": ""})
    # "anywhere", not "break-word": only it lets a long token (a run name, a column name)
    # break when the table lays out its columns, so that the table fits its page
    wrap = [("white-space", "normal"), ("overflow-wrap", "anywhere"), ("vertical-align", "top"),
            ("text-align", "left"), ("padding", "2px 6px")]
    return (table.style.hide(axis="index").format(cell, na_rep="—")
            .set_table_attributes(f'class="{css_class}"')
            .set_table_styles([{"selector": "", "props": [("width", "100%"), ("font-size", "0.85em"),
                                                          ("border-collapse", "collapse")]},
                               {"selector": "td, th", "props": wrap}])
            .set_table_styles({wide: [{"selector": "td", "props": [("width", "45%")]}]}
                              if wide in table.columns else {}, overwrite=False))


def worked_and_failed(claim_rows: list[dict]) -> tuple[dict, dict]:
    """What was easy and what was hard at this scale, from the rows' arm ``checks``:
    {check: [arms that passed it in every row it gated]} and {check: {arm: rows it left
    untestable}} (the check failing most often first)."""
    held, failed = {}, {}
    for row in claim_rows:
        for c in row.get("checks") or []:
            if c["holds"]:
                held.setdefault(c["check"], set()).add(c["arm"])
            else:
                counts = failed.setdefault(c["check"], {})
                counts[c["arm"]] = counts.get(c["arm"], 0) + 1
    worked = {check: sorted(arms - set(failed.get(check, {}))) for check, arms in held.items()}
    worked = {check: arms for check, arms in worked.items() if arms}
    failed = {check: dict(sorted(arms.items(), key=lambda item: (-item[1], item[0])))
              for check, arms in sorted(failed.items(), key=lambda item: -sum(item[1].values()))}
    return worked, failed


def _why(row: dict) -> str:
    """A row's reason in a few words: the arms' checks that failed, else its reason cut short."""
    failing = [f"{c['arm']} {c['check']}" for c in row.get("checks") or [] if not c["holds"]]
    if failing:
        return "failed: " + ", ".join(failing)
    return textwrap.shorten(row.get("reason") or "", 100, placeholder="…")


def _checks_lines(claim_rows: list[dict]) -> list[str]:
    worked, failed = worked_and_failed(claim_rows)
    lines = []
    if worked:
        lines += ["**What worked** (in every row it gated): " + "; ".join(
            f"{check}: {', '.join(arms)}" for check, arms in worked.items()) + ".", ""]
    if failed:
        lines += ["**What did not** (rows it left untestable): " + "; ".join(
            f"{check}: " + ", ".join(f"{arm} ({n})" for arm, n in arms.items())
            for check, arms in failed.items()) + ".", ""]
    return lines


def chapter_summary(claim_rows: list[dict], records: list[dict], chapter: str,
                    scope: str = "") -> str:
    """The box that opens a method chapter, as MyST Markdown (for ``myst_nb.glue``): the
    paper's claims judged here with their verdicts and seeds, which checks of the arms
    held and which failed (:func:`worked_and_failed`), the runs and wall time behind them
    on which devices, the ``scope`` those verdicts have (the chapter's scale against the
    paper's), and what a reader should take from them."""
    rows = [r for r in claim_rows if r.get("kind") != "exact"]
    mine = [r for r in records if r.get("chapter") == chapter]
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICT_COLOURS}
    seeds = sorted({r["seeds"] for r in rows})
    minutes = sum(r.get("wall_time_s") or 0.0 for r in mine) / 60
    devices = ", ".join(sorted({str(r.get("device")) for r in mine})) or "—"
    if not rows:
        verdicts, take = "no claim judged in this build", "Nothing is decided here yet."
    else:
        verdicts = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        decided = counts["supported"] + counts["contradicted"]
        take = (f"{decided} of {len(rows)} claims decided at this scale; "
                + ("the untestable ones say which arm did not work, so they speak about this "
                   "miniature, not the paper." if counts["untestable"] else
                   "an inconclusive row needs more seeds (its seeds-needed figure says how many)."
                   if counts["inconclusive"] else "every claim was decided."))
    lines = [f"- **{r['verdict']}**: {r['claim']}" + (f" ({why})" if (why := _why(r)) else "")
             for r in rows]
    seed_text = "—" if not seeds else f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    return "\n".join([
        ":::{admonition} In short",
        ":class: cgt-summary",
        f"**Claims judged:** {len(rows)} ({verdicts}); paired seeds per claim: {seed_text}.",
        "",
        *lines,
        "",
        *_checks_lines(rows),
        f"**Compute:** {len(mine)} run{'' if len(mine) == 1 else 's'}, {minutes:.1f} wall minutes on {devices}.",
        "",
        *([f"**Scope:** {scope}", ""] if scope else []),
        f"**Take away:** {take}",
        ":::",
    ])


def readable_tables() -> None:
    """From here on, show every DataFrame this notebook displays as
    :func:`readable_table` (no-op outside IPython)."""
    from IPython import get_ipython  # an optional dependency: the book's, not the library's

    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(
            pd.DataFrame, lambda table: readable_table(table).to_html())
