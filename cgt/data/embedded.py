"""Build the embedded datasets from the pinned registry sources.

``cgt data build [--tiny] [--size 32]`` writes one ``.npz`` per dataset
under the data cache, plus ``manifest.json`` with counts and the sha256 of every
built array.  The expected checksums are committed in ``data/manifest.json``; a
build that differs (another Pillow, say) stops with a message.  A file lock
makes concurrent builds (two chapters at once) safe, and every file is written
to a temporary name and renamed, so a killed build never leaves a half file.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import pickle
import struct
import time
from pathlib import Path

import numpy as np
from filelock import FileLock
from PIL import Image, ImageDraw, ImageFont

from .. import atomic, paths
from .sources import deb_root, wheel_member

DATASETS = ("fashion_mnist", "animal_shape", "lfw", "digits", "hanzi", "emoji")

FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
# Label order checked by eye on a contact sheet of the built arrays (see the Data chapter).
ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog",
                  "elephant", "giraffe", "horse", "sheep", "zebra"]
ANIMAL_TEST_PER_CLASS = 200  # last 200 images of each class form the test split

# (package, file inside it, face index in a collection or None, split)
HANZI_FACES = [
    ("fonts-noto-cjk", "usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "SC", "train"),
    ("fonts-noto-cjk", "usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", "SC", "train"),
    ("fonts-noto-cjk", "usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", "SC", "train"),
    ("fonts-noto-cjk", "usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc", "SC", "test"),
    ("fonts-arphic-ukai", "usr/share/fonts/truetype/arphic/ukai.ttc", None, "train"),
    ("fonts-arphic-uming", "usr/share/fonts/truetype/arphic/uming.ttc", None, "train"),
    ("fonts-arphic-gkai00mp", "usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf", None, "train"),
    ("fonts-arphic-gbsn00lp", "usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf", None, "train"),
    ("fonts-wqy-zenhei", "usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", None, "train"),
    ("fonts-wqy-microhei", "usr/share/fonts/truetype/wqy/wqy-microhei.ttc", None, "test"),
    ("fonts-lxgw-wenkai", "usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Light.ttf", None, "train"),
    ("fonts-lxgw-wenkai", "usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf", None, "train"),
    ("fonts-lxgw-wenkai", "usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Bold.ttf", None, "test"),
    ("fonts-smiley-sans", "usr/share/fonts/truetype/smiley-sans/SmileySans-Oblique.ttf", None, "train"),
    ("fonts-hanazono", "usr/share/fonts/truetype/hanazono/HanaMinA.ttf", None, "train"),
]
TINY_HANZI_CLASSES = 200
TINY_PER_CLASS = {"fashion_mnist": (100, 20), "animal_shape": (100, 20)}  # train, test
EMOJI_DESIGNS = ("noto", "emojione")
TINY_EMOJI_PER_GROUP = 12


def gb2312_level1() -> list[str]:
    """The 3,755 level-1 GB2312 characters, rows 16-55 (bytes 0xB0A1-0xD7F9), in code order."""
    chars = []
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                chars.append(bytes([high, low]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize of uint8 NHWC images with Pillow (pinned, so results are stable)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((len(images), size, size, images.shape[3]), np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        resized = np.asarray(pil.resize((size, size), Image.Resampling.BICUBIC))
        out[i] = resized.reshape(size, size, -1)
    return out


# --------------------------------------------------------------------------- readers

def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    ndim = raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def build_fashion_mnist(size: int, tiny: bool) -> dict:
    root = deb_root("dataset-fashion-mnist") / "usr/share/datasets/fashion-mnist"
    arrays = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        images = _read_idx(root / f"{stem}-images-idx3-ubyte.gz")[..., None]
        labels = _read_idx(root / f"{stem}-labels-idx1-ubyte.gz").astype(np.int64)
        if tiny:
            keep = _first_per_class(labels, TINY_PER_CLASS["fashion_mnist"][split == "test"])
            images, labels = images[keep], labels[keep]
        arrays[f"{split}_images"] = resize(images, size)
        arrays[f"{split}_labels"] = labels
    return {"arrays": arrays, "classes": FASHION_CLASSES}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: the wheel's pickles are data, never code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def load_numpy_pickle(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        return _NumpyOnlyUnpickler(io.BytesIO(handle.read())).load()


def build_animal_shape(size: int, tiny: bool) -> dict:
    folder = "animal_shape_mnist/data/Animal Shape/"
    data = load_numpy_pickle(wheel_member("animal-shape-mnist", folder + "animal_data_version_3.gz"))
    labels = load_numpy_pickle(wheel_member("animal-shape-mnist", folder + "animal_label_version_3.gz"))
    images = np.asarray(data, np.uint8).reshape(-1, 28, 28, 1)
    labels = np.asarray(labels, np.int64).reshape(-1)
    test = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        test[np.flatnonzero(labels == c)[-ANIMAL_TEST_PER_CLASS:]] = True
    arrays = {}
    for split, mask in (("train", ~test), ("test", test)):
        x, y = images[mask], labels[mask]
        if tiny:
            keep = _first_per_class(y, TINY_PER_CLASS["animal_shape"][split == "test"])
            x, y = x[keep], y[keep]
        arrays[f"{split}_images"] = resize(x, size)
        arrays[f"{split}_labels"] = y
    return {"arrays": arrays, "classes": ANIMAL_CLASSES}


def build_lfw(size: int, tiny: bool) -> dict:
    """The scikit-image LFW subset: 100 aligned faces, then 100 background crops.

    It has no held-out split: BSA's protocol compares samples with the whole target set.
    """
    raw = np.load(wheel_member("scikit-image", "skimage/data/lfw_subset.npy"))
    images = np.clip(np.round(raw * 255), 0, 255).astype(np.uint8)[..., None]
    labels = np.repeat(np.arange(2, dtype=np.int64), 100)
    empty = np.zeros((0, size, size, 1), np.uint8)
    return {"arrays": {"train_images": resize(images, size), "train_labels": labels,
                       "test_images": empty, "test_labels": np.zeros(0, np.int64)},
            "classes": ["face", "background"]}


def build_digits(size: int, tiny: bool) -> dict:
    """The 1,797 real 8x8 handwritten digits, kept at their own 8x8 resolution.

    Grey levels 0-16 are scaled to 0-255.  A seeded, stratified fifth is the test split.
    """
    with gzip.open(wheel_member("scikit-learn", "sklearn/datasets/data/digits.csv.gz"), "rt") as f:
        rows = np.array([[float(v) for v in row] for row in csv.reader(f)])
    images = np.round(rows[:, :64] * 255 / 16).astype(np.uint8).reshape(-1, 8, 8, 1)
    labels = rows[:, 64].astype(np.int64)
    rng = np.random.default_rng(0)
    test = np.zeros(len(labels), bool)
    for c in range(10):
        members = np.flatnonzero(labels == c)
        test[rng.choice(members, len(members) // 5, replace=False)] = True
    return {"arrays": {"train_images": images[~test], "train_labels": labels[~test],
                       "test_images": images[test], "test_labels": labels[test]},
            "classes": [str(d) for d in range(10)]}


def _open_face(package: str, file: str, face: str | None, size: int) -> ImageFont.FreeTypeFont:
    path = deb_root(package) / file
    if face is None:
        return ImageFont.truetype(str(path), size)
    for index in range(16):
        font = ImageFont.truetype(str(path), size, index=index)
        if font.getname()[0].endswith(" " + face):
            return font
    raise RuntimeError(f"no '{face}' face in {path}")


def render_glyph(font: ImageFont.FreeTypeFont, char: str, canvas: int, size: int) -> np.ndarray:
    """Black glyph on white, centred by its ink box, drawn large and reduced to ``size``."""
    image = Image.new("L", (canvas, canvas), 255)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    x = (canvas - (right - left)) / 2 - left
    y = (canvas - (bottom - top)) / 2 - top
    draw.text((x, y), char, font=font, fill=0)
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS))


def build_hanzi(size: int, tiny: bool) -> dict:
    """GB2312 level-1 characters, one class each, rendered in 15 typefaces.

    Twelve faces form the training split and three the test split.  These are
    typefaces, not handwriting.
    """
    chars = gb2312_level1()
    if tiny:
        chars = chars[:TINY_HANZI_CLASSES]
    canvas = 4 * size
    arrays = {}
    for split in ("train", "test"):
        faces = [f for f in HANZI_FACES if f[3] == split]
        images = np.empty((len(faces) * len(chars), size, size, 1), np.uint8)
        labels = np.tile(np.arange(len(chars), dtype=np.int64), len(faces))
        for j, (package, file, face, _) in enumerate(faces):
            font = _open_face(package, file, face, int(canvas * 0.8))
            for i, char in enumerate(chars):
                images[j * len(chars) + i, ..., 0] = render_glyph(font, char, canvas, size)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels
    return {"arrays": arrays, "classes": chars,
            "faces": {s: [Path(f[1]).name + (f" {f[2]}" if f[2] else "")
                          for f in HANZI_FACES if f[3] == s] for s in ("train", "test")}}


def _emoji_table() -> list[tuple[str, str, str, str]]:
    """(sequence, group, subgroup, name) of the fully-qualified non-flag emoji without skin tones."""
    path = deb_root("unicode-data") / "usr/share/unicode/emoji/emoji-test.txt"
    rows, group, subgroup = [], "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#") and "; fully-qualified" in line:
            codes = [int(c, 16) for c in line.split(";")[0].split()]
            if group == "Flags" or any(0x1F3FB <= c <= 0x1F3FF for c in codes):
                continue
            name = line.split("#", 1)[1].split(" ", 3)[-1].strip()
            rows.append(("".join(map(chr, codes)), group, subgroup, name))
    return rows


def _on_white(rgba: Image.Image, size: int) -> np.ndarray:
    rgba = rgba.convert("RGBA")
    box = rgba.getbbox()
    if box is None:
        return None
    rgba = rgba.crop(box)
    side = max(rgba.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    square.paste(rgba, ((side - rgba.size[0]) // 2, (side - rgba.size[1]) // 2))
    white = Image.new("RGBA", square.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, square).convert("RGB")
    return np.asarray(flat.resize((size, size), Image.Resampling.LANCZOS))


def build_emoji(size: int, tiny: bool) -> dict:
    """Colour emoji in two designs: Noto Color Emoji (train) and EmojiOne (test).

    Labels are the Unicode emoji groups; ``subgroups`` keeps the finer subgroup
    (the "face-*" subgroups are the emoji faces BSA's chapter adapts to).
    """
    table = _emoji_table()
    groups = sorted({row[1] for row in table})
    font = ImageFont.truetype(str(deb_root("fonts-noto-color-emoji")
                                  / "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"), 109)
    png_dir = (deb_root("ruby-gemojione")
               / "usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png")
    if tiny:  # the faces BSA needs, plus the first dozen of every group
        firsts = {g: [row for row in table if row[1] == g][:TINY_EMOJI_PER_GROUP] for g in groups}
        keep = {row[0] for rows in firsts.values() for row in rows}
        table = [row for row in table if row[2].startswith("face-") or row[0] in keep]
    arrays, meta = {}, {}
    for split, design in (("train", "noto"), ("test", "emojione")):
        images, labels, subgroups, names = [], [], [], []
        for seq, group, subgroup, name in table:
            if design == "noto":
                canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
                ImageDraw.Draw(canvas).text((10, 10), seq, font=font, embedded_color=True)
                pixels = _on_white(canvas, size)
            else:
                png = _emojione_file(png_dir, seq)
                pixels = _on_white(Image.open(png), size) if png else None
            if pixels is None:
                continue
            images.append(pixels)
            labels.append(groups.index(group))
            subgroups.append(subgroup)
            names.append(name)
        arrays[f"{split}_images"] = np.stack(images)
        arrays[f"{split}_labels"] = np.array(labels, np.int64)
        meta[split] = {"subgroups": subgroups, "names": names, "design": design}
    return {"arrays": arrays, "classes": groups, "emoji": meta}


def _emojione_file(folder: Path, seq: str) -> Path | None:
    codes = [f"{ord(c):04X}" for c in seq]
    for variant in (codes, [c for c in codes if c != "FE0F"]):
        path = folder / ("-".join(variant) + ".png")
        if path.exists():
            return path
    return None


BUILDERS = {"fashion_mnist": build_fashion_mnist, "animal_shape": build_animal_shape,
            "lfw": build_lfw, "digits": build_digits, "hanzi": build_hanzi,
            "emoji": build_emoji}


def _first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:k] for c in np.unique(labels)]))


# --------------------------------------------------------------------------- cache

def variant_name(size: int, tiny: bool) -> str:
    return f"{'tiny-' if tiny else ''}size{size}"


def variant_dir(size: int, tiny: bool, cache: Path | None = None) -> Path:
    return (cache or paths.data_cache()) / variant_name(size, tiny)


def array_sha256(array: np.ndarray) -> str:
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def expected_manifest() -> dict:
    """Committed checksums of the built arrays (``data/manifest.json``), if shipped."""
    root = paths.repo_root()
    file = (root / "data" / "manifest.json") if root else None
    if file is None or not file.exists():
        return {}
    return json.loads(file.read_text())


def write_expected_manifest(size: int = 32) -> Path:
    """Commit-ready checksums of the full and tiny variants (both built at ``size``)."""
    out = {}
    for tiny in (False, True):
        built = json.loads((variant_dir(size, tiny) / "manifest.json").read_text())
        out[variant_name(size, tiny)] = {
            name: {k: v for k, v in entry.items() if k != "seconds"}
            for name, entry in sorted(built.items())}
    target = paths.repo_root() / "data" / "manifest.json"
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return target


def smallest_classes(arrays: dict) -> dict[str, int]:
    """Images in the smallest class of each split: what a per-class demand is checked
    against without the arrays (the committed manifest keeps it)."""
    return {k: int(np.bincount(v).min()) for k, v in arrays.items()
            if k.endswith("_labels") and len(v)}


class ChecksumMismatch(RuntimeError):
    pass


def _write_npz(path: Path, built: dict) -> None:
    extra = {k: v for k, v in built.items() if k != "arrays"}
    with atomic.replacing(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **built["arrays"], meta=np.array(json.dumps(extra)))


def build(names=DATASETS, size: int = 32, tiny: bool = False, verify: bool = True,
          progress: bool = True) -> dict:
    """Build (or reuse) the named datasets; return the variant's manifest."""
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise KeyError(f"unknown dataset(s) {unknown}; valid: {', '.join(DATASETS)}")
    folder = variant_dir(size, tiny)
    folder.mkdir(parents=True, exist_ok=True)
    expected = expected_manifest().get(variant_name(size, tiny), {}) if verify else {}
    with FileLock(str(folder / ".lock")):
        manifest_file = folder / "manifest.json"
        manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
        for name in names:
            target = folder / f"{name}.npz"
            if target.exists() and name in manifest:
                continue
            start = time.perf_counter()
            built = BUILDERS[name](size, tiny)
            entry = {
                "classes": len(built["classes"]),
                "counts": {k: int(len(v)) for k, v in built["arrays"].items() if k.endswith("_labels")},
                "smallest_class": smallest_classes(built["arrays"]),
                "sha256": {k: array_sha256(v) for k, v in built["arrays"].items()},
                "seconds": round(time.perf_counter() - start, 2),
            }
            want = expected.get(name, {}).get("sha256")
            if want and want != entry["sha256"] and not os.environ.get("CGT_DATA_ALLOW_MISMATCH"):
                bad = [k for k in want if want[k] != entry["sha256"].get(k)]
                raise ChecksumMismatch(
                    f"built {name} arrays {bad} differ from data/manifest.json. The usual cause "
                    f"is another Pillow or source version than pyproject.toml pins. Set "
                    f"CGT_DATA_ALLOW_MISMATCH=1 to accept them anyway.")
            _write_npz(target, built)
            manifest[name] = entry
            if progress:
                print(f"built {variant_name(size, tiny)}/{name}: {entry['counts']} "
                      f"in {entry['seconds']} s", flush=True)
            atomic.write_json(manifest_file, manifest)
    return manifest


def main(argv=None, prog: str = "cgt data") -> None:
    """``cgt data build [--tiny] [--size N] [names…]``: build the embedded datasets."""
    parser = argparse.ArgumentParser(prog=prog, description="Build the embedded datasets from "
                                     "their pinned sources.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fetch the pinned sources and build the arrays")
    b.add_argument("names", nargs="*", default=list(DATASETS),
                   help=f"datasets to build (default: all of {', '.join(DATASETS)})")
    b.add_argument("--size", type=int, default=32, help="image resolution (default 32)")
    b.add_argument("--tiny", action="store_true", help="the small variant the tests use")
    b.add_argument("--no-verify", action="store_true",
                   help="do not compare with the checksums in data/manifest.json")
    m = sub.add_parser("manifest", help="write data/manifest.json from the built variants "
                       "(after a deliberate change of sources or recipe)")
    m.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    if args.command == "manifest":
        write_expected_manifest(args.size)
        return
    start = time.perf_counter()
    manifest = build(args.names, size=args.size, tiny=args.tiny, verify=not args.no_verify)
    folder = variant_dir(args.size, args.tiny)
    size_mb = sum(f.stat().st_size for f in folder.glob("*.npz")) / 1e6
    print(json.dumps({n: manifest[n]["counts"] for n in args.names}))
    print(f"data ready in {folder} ({size_mb:.1f} MB) after {time.perf_counter() - start:.1f} s")
