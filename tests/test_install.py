"""A non-editable install: the wheel carries every sub-package, the shipped models and the
feature network, and its commands run outside a checkout."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import setuptools

ROOT = Path(__file__).resolve().parent.parent


def _isolation() -> list[str]:
    # the build needs setuptools>=68 (pyproject.toml); build in this environment when it has it
    major = int(setuptools.__version__.split(".")[0])
    return ["--no-build-isolation"] if major >= 68 else []


def test_a_wheel_installed_outside_the_checkout_samples_a_shipped_source(tmp_path):
    tree = tmp_path / "tree"  # built from a copy: setuptools writes build/ into its source
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        tree.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "cgt", tree / "cgt", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data" / "models", tree / "data" / "models")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--disable-pip-version-check", *_isolation(), "-w", str(tmp_path / "dist"),
                    str(tree)], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("cgt-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "cgt").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names  # no sub-package left out
    shipped = {f"cgt/models/{p.name}" for p in (ROOT / "data" / "models").iterdir()}
    assert shipped <= names and "cgt/models/feature_net.pt" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--disable-pip-version-check", "--target", str(site), str(wheel)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CGT_")}
    env.update(PYTHONPATH=str(site), CGT_HOME=str(tmp_path / "home"))
    for command in ([sys.executable, "-m", "cgt"], [str(site / "bin" / "cgt")]):  # one program
        done = subprocess.run([*command, "sample", "fashion8", "-n", "4", "--out", "x.png",
                               "--force"], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "x.png").stat().st_size > 0
        (tmp_path / "x.png").unlink()
    located = subprocess.run([sys.executable, "-c", "import cgt; print(cgt.__file__)"],
                             cwd=tmp_path, env=env, capture_output=True, text=True).stdout
    assert located.startswith(str(site))  # the installed copy ran, not the checkout
