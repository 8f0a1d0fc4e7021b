"""The papermill → Jupyter Book pipeline behind ``make book``.

``cgt book build --profile quick``:

1. reads ``_toc.yml``; every page whose MyST text carries a jupytext header is a
   chapter notebook;
2. executes each chapter with papermill (``profile`` injected) into
   ``_build/executed/<profile>/``, skipping chapters whose source, parameters,
   ``cgt`` code and data manifest are unchanged since their last successful run;
   the introduction runs last because it summarises the chapters' run records;
3. stages the executed notebooks with the book's config and renders them with
   Jupyter Book 1.x (execution off, Sphinx warnings as errors) into ``_build/html``;
4. prints per-chapter timings.

A failing cell stops the build with the chapter's name and papermill's error;
the partly executed notebook stays in the executed folder for inspection.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from . import paths
from .profiles import PROFILES, check_profile

CONFIG_FILES = ("_config.yml", "_toc.yml", "book/references.bib")


class ChapterFailed(RuntimeError):
    pass


def root() -> Path:
    found = paths.repo_root()
    if found is None:
        raise RuntimeError("cgt.book works in a source checkout (it needs _toc.yml and book/)")
    return found


def pages(top: Path | None = None) -> list[str]:
    """Page names of the table of contents, root first (e.g. ``book/intro``)."""
    top = top or root()
    toc = yaml.safe_load((top / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                found.append(entry["file"])
            walk(entry.get("sections"))
            for part in entry.get("parts", []):
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [p.removesuffix(".md") for p in found]


def is_notebook(source: Path) -> bool:
    head = source.read_text(encoding="utf-8")[:600]
    return head.startswith("---") and "jupytext:" in head


def code_fingerprint(top: Path) -> str:
    """Hash of everything besides a chapter's own text that changes its results."""
    digest = hashlib.sha256()
    files = (sorted((top / "cgt").rglob("*.py")) + sorted((top / "data" / "models").glob("*.json"))
             + [top / "pyproject.toml", top / "data" / "manifest.json"])
    for file in files:
        if file.exists():
            digest.update(str(file.relative_to(top)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def records_fingerprint(profile: str) -> str:
    digest = hashlib.sha256()
    for file in sorted(paths.runs_dir(profile).glob("*/*.json")):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def execute(page: str, profile: str, out_dir: Path, top: Path, key: str, force: bool) -> str:
    """Run one chapter with papermill unless its cached execution matches ``key``."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = top / f"{page}.md"
    target = out_dir / f"{page}.ipynb"
    stamp = target.with_suffix(".key")
    if not force and target.exists() and stamp.exists() and stamp.read_text() == key:
        return "cached"
    target.parent.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    notebook = jupytext.read(source)
    try:
        papermill.execute_notebook(notebook, str(target), parameters={"profile": profile},
                                   kernel_name="python3", cwd=str(source.parent),
                                   progress_bar=False, log_output=False)
    except PapermillExecutionError as error:
        raise ChapterFailed(
            f"chapter '{page}' failed in cell {error.exec_count} ({error.ename}: "
            f"{error.evalue}).\nThe partly executed notebook is kept at {target}") from None
    stamp.write_text(key)
    return "executed"


def hide_parameters(source: Path, target: Path) -> None:
    """Copy an executed notebook, its parameters cells (the chapter's default profile and
    papermill's injected one) tagged ``remove-cell``: plumbing, not reading."""
    notebook = json.loads(source.read_text())
    for cell in notebook["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False))


def stage(profile: str, executed: Path, top: Path) -> Path:
    """A source tree for Jupyter Book: config + executed notebooks + plain pages."""
    staging = paths.build_dir() / "stage" / profile
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in CONFIG_FILES:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(top / name, staging / name)
    for page in pages(top):
        source = top / f"{page}.md"
        if is_notebook(source):
            if not (executed / f"{page}.ipynb").exists():
                raise ChapterFailed(f"chapter '{page}' has no {profile} execution to render yet: "
                                    f"build once without --only (make book PROFILE={profile})")
            hide_parameters(executed / f"{page}.ipynb", staging / f"{page}.ipynb")
        else:
            shutil.copy2(source, staging / f"{page}.md")
    assets = [a for a in (top / "book").rglob("*") if a.suffix in {".png", ".svg", ".jpg", ".css"}]
    sources = list((top / "cgt").rglob("*.py"))  # what the chapters' literalinclude shows
    for asset in assets + sources:
        if asset.is_file():
            (staging / asset.relative_to(top)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(asset, staging / asset.relative_to(top))
    return staging


def render(staging: Path, top: Path) -> Path:
    """Jupyter Book 1.x HTML build; Sphinx warnings are errors."""
    html = paths.build_dir() / "html"
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(staging), "--path-output", str(staging), "-W", "-n",
           "--keep-going", "--quiet"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ChapterFailed(f"jupyter-book build failed:\n{result.stdout[-4000:]}\n"
                            f"{result.stderr[-4000:]}")
    shutil.rmtree(html, ignore_errors=True)
    shutil.copytree(staging / "_build" / "html", html)
    return html


def build(profile: str, force: bool = False, only: list[str] | None = None) -> dict:
    top = root()
    profile = check_profile(profile)
    executed = paths.build_dir() / "executed" / profile
    os.environ["CGT_PROFILE"] = profile
    os.environ["CGT_RUNS_DIR"] = str(paths.runs_dir(profile))
    os.environ["TQDM_DISABLE"] = "1"  # progress bars are for people, not for the rendered page
    code = code_fingerprint(top)
    names = pages(top)
    notebooks = [p for p in names if is_notebook(top / f"{p}.md")]
    # The root page summarises the chapters, so it runs after them.
    order = [p for p in notebooks if p != names[0]] + [p for p in notebooks if p == names[0]]
    timings = {}
    for page in order:
        if only and page not in only and Path(page).name not in only:
            continue
        text = (top / f"{page}.md").read_bytes()
        parts = [text, profile.encode(), code.encode()]
        if page == names[0]:
            parts.append(records_fingerprint(profile).encode())
        key = hashlib.sha256(b"\0".join(parts)).hexdigest()
        start = time.perf_counter()
        state = execute(page, profile, executed, top, key, force)
        timings[page] = {"state": state, "seconds": round(time.perf_counter() - start, 1)}
        print(f"[{profile}] {page}: {state} in {timings[page]['seconds']} s", flush=True)
    start = time.perf_counter()
    html = render(stage(profile, executed, top), top)
    timings["(render)"] = {"state": "rendered", "seconds": round(time.perf_counter() - start, 1)}
    (paths.build_dir() / f"timings-{profile}.json").write_text(json.dumps(timings, indent=1))
    print(f"\nper-chapter timings ({profile}):")
    for page, t in timings.items():
        print(f"  {page:<28} {t['state']:<9} {t['seconds']:>8.1f} s")
    print(f"book: {html / 'index.html'}")
    return timings


def main(argv=None, prog: str = "cgt book") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute the chapters and render the book")
    b.add_argument("--profile", default=os.environ.get("PROFILE", "quick"), choices=PROFILES)
    b.add_argument("--force", action="store_true", help="re-execute even unchanged chapters")
    b.add_argument("--only", nargs="*", help="execute only these chapters (others from cache)")
    c = sub.add_parser("check", help="open every rendered page in headless Chromium")
    c.add_argument("--html", default=str(paths.build_dir() / "html"))
    c.add_argument("--screenshots", default=str(paths.build_dir() / "screenshots"))
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.profile, args.force, args.only)
    else:
        from .browser import check_book
        problems = check_book(Path(args.html), Path(args.screenshots))
        if problems:
            raise ChapterFailed("book check failed:\n" + "\n".join(problems))


if __name__ == "__main__":  # the former entry point: say where it went instead of doing nothing
    raise SystemExit("error: the book's command is now `cgt book …` (or `python -m cgt book …`)")
