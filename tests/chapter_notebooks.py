"""pytest plugin: every chapter of the book runs under nbval in the smoke profile.

Chapters are MyST text notebooks, which carry no outputs.  The outputs that nbval
checks (cells tagged ``nbval-check-output``: dataset sizes, class lists, …) are
kept in ``tests/expected/<chapter>.json`` and put into a generated ``.ipynb``
under ``_build/nbval`` before nbval runs it.  After a deliberate change, record
them again with::

    .venv/bin/python tests/chapter_notebooks.py --record [chapter ...]

(all chapters, or only the named ones, e.g. ``bsa``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "tests" / "expected"
GENERATED = ROOT / "_build" / "nbval"
CHECK_TAG = "nbval-check-output"


def is_chapter(path: Path) -> bool:
    if path.suffix != ".md" or path.parent != ROOT / "book":
        return False
    head = path.read_text(encoding="utf-8")[:600]
    return head.startswith("---") and "jupytext:" in head


def checked_cells(notebook) -> list:
    return [c for c in notebook.cells
            if c.cell_type == "code" and CHECK_TAG in c.metadata.get("tags", [])]


def with_expected_outputs(source: Path) -> Path:
    """The chapter as .ipynb with the recorded outputs in its checked cells."""
    notebook = jupytext.read(source)
    cells = checked_cells(notebook)
    recorded = json.loads((EXPECTED / f"{source.stem}.json").read_text()) \
        if (EXPECTED / f"{source.stem}.json").exists() else []
    if len(recorded) != len(cells):
        raise RuntimeError(
            f"{source.name} has {len(cells)} cells tagged {CHECK_TAG} but "
            f"tests/expected/{source.stem}.json records {len(recorded)}; run "
            f"`.venv/bin/python tests/chapter_notebooks.py --record` after checking the change")
    for cell, entry in zip(cells, recorded):
        if entry["source"] != cell.source:
            raise RuntimeError(f"a checked cell of {source.name} changed since its outputs were "
                               f"recorded; record them again (see tests/chapter_notebooks.py)")
        cell.outputs = [nbformat.from_dict(o) for o in entry["outputs"]]
        cell.execution_count = entry["execution_count"]
    GENERATED.mkdir(parents=True, exist_ok=True)
    target = GENERATED / f"{source.stem}.ipynb"
    nbformat.write(notebook, target)
    return target


def pytest_configure(config):
    os.environ["CGT_PROFILE"] = "smoke"
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("CGT_RUNS_DIR", str(ROOT / "_build" / "runs-nbval"))


def pytest_collect_file(file_path, parent):
    if is_chapter(Path(file_path)):
        from nbval.plugin import IPyNbFile

        return IPyNbFile.from_parent(parent, path=with_expected_outputs(Path(file_path)))
    return None


def record(only=()) -> None:
    """Execute every chapter (smoke) and store the outputs of its checked cells."""
    import papermill

    os.environ["CGT_PROFILE"] = "smoke"
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("CGT_RUNS_DIR", str(ROOT / "_build" / "runs-nbval"))
    EXPECTED.mkdir(exist_ok=True)
    for source in sorted((ROOT / "book").glob("*.md")):
        if not is_chapter(source) or (only and source.stem not in only):
            continue
        executed = papermill.execute_notebook(jupytext.read(source), None,
                                              parameters={"profile": "smoke"},
                                              kernel_name="python3", cwd=str(source.parent),
                                              progress_bar=False)
        entries = [{"source": c.source, "execution_count": c.execution_count, "outputs": c.outputs}
                   for c in checked_cells(executed)]
        (EXPECTED / f"{source.stem}.json").write_text(json.dumps(entries, indent=1) + "\n")
        print(f"recorded {len(entries)} checked cell(s) of {source.name}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--record"]:
        raise SystemExit(__doc__)
    record(sys.argv[2:])
