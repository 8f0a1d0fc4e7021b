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


def _imports() -> dict[str, set[str]]:
    """Every cgt module → the cgt modules it imports anywhere in its source (inside
    functions too: an import moved into a function still ties the two modules; not
    under ``if TYPE_CHECKING``, which never runs)."""
    import ast

    graph = {}
    for file in sorted((ROOT / "cgt").rglob("*.py")):
        parts = file.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else name.rpartition(".")[0]
        found = set()
        tree = ast.parse(file.read_text())
        for block in [n for n in ast.walk(tree) if isinstance(n, ast.If)
                      and getattr(n.test, "id", None) == "TYPE_CHECKING"]:
            block.body = []  # for annotations only: never executed
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("cgt")}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[:len(base) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                if target.startswith("cgt"):
                    found.add(target)
                    found |= {f"{target}.{a.name}" for a in node.names}
        graph[name] = found
    # ``from package import module`` ties a module to that submodule, not to the package
    return {m: {t for t in targets if t in graph and t != m
                and not any(u.startswith(t + ".") and u in graph for u in targets)}
            for m, targets in graph.items()}


# The run layer and everything it builds on; the chapters' experiment modules, the plan,
# the book and the API sit above it.
RUN_LAYER = ("cgt.runs", "cgt.train", "cgt.checkpoints", "cgt.builders", "cgt.methods",
             "cgt.metrics", "cgt.data", "cgt.nn", "cgt.state_dicts", "cgt.atomic", "cgt.paths",
             "cgt.planning", "cgt.machine", "cgt.distributed", "cgt.biggan_pytorch",
             "cgt.pretrain")
ABOVE_IT = ("cgt.experiments", "cgt.plan", "cgt.book", "cgt.api", "cgt.__main__")


def _within(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_run_layer_reaches_no_chapter_module_by_import_or_by_string():
    import ast

    from cgt.builders import FORMER_NAMES

    graph = _imports()
    # a package's ``python -m`` alias of a ``cgt`` sub-command is the command line, above it all
    layer = [m for m in graph if _within(m, RUN_LAYER) and not m.endswith(".__main__")]
    assert "cgt.runs" in layer and "cgt.builders" in layer
    for module in layer:
        reached, todo = set(), [module]
        while todo:  # everything it imports, directly or through other modules
            for target in graph[todo.pop()] - reached:
                reached.add(target)
                todo.append(target)
        upward = sorted(t for t in reached if _within(t, ABOVE_IT))
        assert not upward, f"{module} reaches {upward}"
        path = ROOT / (module.replace(".", "/") + ".py")
        source = path.read_text() if path.exists() else (path.parent / module.rpartition(".")[2]
                                                         / "__init__.py").read_text()
        assert "import_module" not in source, f"{module} imports code named by a string"
        named = {node.value for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)
                 and _within(node.value.partition(":")[0], ABOVE_IT)} - set(FORMER_NAMES)  # refused, never loaded
        assert not named, f"{module} names {sorted(named)}"


def test_no_two_cgt_modules_import_each_other_in_a_cycle():
    graph, seen, done = _imports(), [], set()

    def visit(module):
        if module in done:
            return
        assert module not in seen, " → ".join(seen[seen.index(module):] + [module])
        seen.append(module)
        for target in sorted(graph[module]):
            visit(target)
        seen.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
