"""Project-level promises: pins in step, README commands, chapter notebook conventions."""

import re
import subprocess
import tomllib
from pathlib import Path

import jupytext
import nbformat
import yaml

from cgt import book

ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements):
    return {re.split(r"[=<>]", r)[0].lower(): r for r in requirements if "==" in r}


def test_environment_yml_pins_what_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + sum(project["optional-dependencies"].values(), []))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    have = _pins(pip)
    assert have == wanted
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11" and ">=3.11,<3.12" == project["requires-python"]


def test_readme_shows_exactly_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^make [a-z-]+.*$", readme, re.M)
    assert commands[:2] == ["make book", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^book:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_no_notebook_json_is_tracked_under_book():
    tracked = subprocess.run(["git", "ls-files", "book"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert tracked and not [f for f in tracked if f.endswith(".ipynb")]


def test_any_paired_ipynb_on_disk_matches_its_text_and_has_no_outputs():
    for text in (ROOT / "book").glob("*.md"):
        paired = text.with_suffix(".ipynb")
        if not paired.exists():
            continue
        source = [c.source for c in jupytext.read(text).cells]
        notebook = nbformat.read(paired, as_version=4)
        assert [c.source for c in notebook.cells] == source, f"{paired.name} drifted"
        assert not any(c.get("outputs") for c in notebook.cells), f"{paired.name} has outputs"


def test_every_chapter_has_one_parameters_cell_defaulting_to_quick():
    chapters = [p for p in book.pages(ROOT) if book.is_notebook(ROOT / f"{p}.md")]
    assert "book/data" in chapters and chapters[0] == "book/intro"
    for page in chapters:
        notebook = jupytext.read(ROOT / f"{page}.md")
        cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, page
        assert 'profile = os.environ.get("CGT_PROFILE", "quick")' in cells[0].source, page


def test_chapters_define_no_functions_or_classes_of_their_own():
    for text in (ROOT / "book").glob("*.md"):
        for cell in jupytext.read(text).cells:
            if cell.cell_type == "code":
                assert not re.search(r"^\s*(def|class) ", cell.source, re.M), text.name


def test_config_excludes_build_folders_and_renders_without_execution():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert {"_build", ".venv", ".pytest_cache"} <= set(config["exclude_patterns"])
