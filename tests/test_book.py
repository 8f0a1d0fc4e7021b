"""The papermill → Jupyter Book pipeline, end to end in the smoke profile."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cgt import book, plan
from cgt.browser import find_browser

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """A smoke build into a temporary home, then a second build that should reuse it."""
    home = tmp_path_factory.mktemp("home")
    # the run records go where nbval's execution of the chapters (book/*.md, collected after
    # this file) finds them: each run is computed once per session, and reused by run key
    runs = Path(os.environ["CGT_RUNS_DIR"])
    shutil.rmtree(runs, ignore_errors=True)
    env = {**os.environ, "CGT_HOME": str(home), "CGT_DATA_CACHE": str(ROOT / "data" / "cache"),
           "CGT_RUNS_DIR": str(runs)}
    command = [sys.executable, "-m", "cgt", "book", "build", "--profile", "smoke"]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    timings_first = json.loads((home / "_build" / "timings-smoke.json").read_text())
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stdout + second.stderr
    timings_second = json.loads((home / "_build" / "timings-smoke.json").read_text())
    return home / "_build", timings_first, timings_second, env


def test_every_chapter_is_executed_then_reused(built_book):
    build, first, second, _ = built_book
    assert first["book/data"]["state"] == "executed"
    assert second["book/data"]["state"] == "cached"
    assert (build / "html" / "book" / "data.html").exists()
    records = list(Path(built_book[3]["CGT_RUNS_DIR"]).glob("*/*.json"))
    chapters = {Path(p).name for p in book.pages(ROOT)[1:]}
    assert {r.parent.name for r in records} == chapters  # every chapter wrote its record


def test_the_plan_lists_exactly_the_runs_that_the_chapters_made(built_book):
    """`cgt plan` runs each experiment module's ``steps``; the chapters call the same
    functions themselves, so a run that a chapter makes and the plan misses fails here.
    The plan may add learning-rate trials: its few-step trials cannot foresee which
    grid edge the tuning rule extends (under capped ISAs it extended one that the
    built chapter did not), so extra planned runs must be tuning trials."""
    made = {(p.parent.name, p.stem) for p in Path(built_book[3]["CGT_RUNS_DIR"]).glob("*/*.json")
            if json.loads(p.read_text()).get("key")}  # the chapters' own records hold no run key
    planned = {tuple(row["run"].split("/")) if "/" in row["run"] else (row["chapter"], row["run"])
               for row in plan.plan("smoke", progress=False)
               if not row["run"].endswith("(outside runs)")}  # samples drawn between runs
    assert made <= planned, sorted(made - planned)[:5]
    assert all(name.startswith("tune-") for _, name in planned - made), sorted(planned - made)[:5]


def test_the_book_shows_papermill_outputs(built_book):
    build = built_book[0]
    page = (build / "html" / "book" / "data.html").read_text()
    assert "profile smoke: tiny variant" in page  # printed after papermill injected it
    assert page.count("<img") >= 6  # contact sheets
    intro = (build / "html" / "book" / "intro.html").read_text()
    assert "Embedded arrays equal the committed checksums" in intro


@pytest.mark.skipif(find_browser() is None,
                    reason="Chromium/chromedriver absent: `apt-get install chromium "
                           "chromium-driver` (.ci/run installs them)")
def test_every_page_opens_cleanly_in_headless_chromium(built_book):
    build, env = built_book[0], built_book[3]
    result = subprocess.run([sys.executable, "-m", "cgt", "book", "check", "--html",
                             str(build / "html"), "--screenshots", str(build / "shots")],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (build / "shots" / "book_data.html.png").stat().st_size > 10_000


def test_the_intro_and_chapters_read_as_a_book(built_book):
    """The claims in one picture and a wrapped table up front; each method chapter opens
    with its summary box; the parameters cells (plumbing) are not on the page."""
    html = built_book[0] / "html" / "book"
    intro = (html / "intro.html").read_text()
    glance = intro.split('id="results-at-a-glance"')[1]  # the section, not the page's contents list
    assert 'class="cgt-claims"' in glance and "<img" in glance
    for chapter in ("bsa", "ctf", "cgantransfer"):
        page = (html / f"{chapter}.html").read_text()
        assert "cgt-summary" in page and "Claims judged:" in page, chapter
        assert page.index("cgt-summary") < page.index('id="claims-checked"'), chapter  # up front
        assert 'os.environ.get("CGT_PROFILE"' not in page and "injected" not in page.lower(), chapter


@pytest.mark.skipif(find_browser() is None,
                    reason="Chromium/chromedriver absent: `apt-get install chromium "
                           "chromium-driver` (.ci/run installs them)")
def test_the_book_check_fails_on_a_claims_table_that_scrolls_sideways(tmp_path):
    from cgt.browser import check_book

    wide = "<td style='white-space:nowrap'>" + "a reason that will not wrap " * 20 + "</td>"
    for name, cell in (("wide", wide), ("wrapped", "<td>" + "a reason that wraps " * 20 + "</td>")):
        site = tmp_path / name
        (site / "book").mkdir(parents=True)
        (site / "index.html").write_text("<html><body>index</body></html>")
        (site / "book" / "intro.html").write_text(
            "<html><body><main><div style='overflow-x:auto;width:600px'>"
            f"<table class='cgt-claims'><tr><td>claim</td>{cell}</tr></table></div></main></body></html>")
        problems = check_book(site, tmp_path / f"{name}-shots")
        assert [p for p in problems if "scrolls sideways" in p] == (
            ["book/intro.html: a table or summary box scrolls sideways at 1280 px: "
             "claim " + ("a reason that will not wrap " * 20).strip()[:74]] if name == "wide" else []), problems
        assert (tmp_path / f"{name}-shots" / "book_intro.html.png").exists()


@pytest.mark.skipif(find_browser() is None,
                    reason="Chromium and chromedriver are not installed "
                           "(apt-get install chromium chromium-driver)")
def test_the_book_check_fails_on_a_formula_that_mathjax_did_not_typeset(tmp_path, monkeypatch):
    from cgt import browser

    shipped = Path(pytest.importorskip("sphinx-mathjax-offline").__file__).parent / "static"
    monkeypatch.setattr(browser, "MATH_WAIT_S", 3.0)
    formulas = {"good": "\\(\\gamma_c\\) and \\[\\beta = \\sum_i w_i\\]",
                "bad": "\\(x^1^2\\)"}  # TeX's "double exponent" error
    for name, script, tex, expected in (
            ("offline", "mathjax/tex-chtml.js", "good", []),
            ("missing", "nowhere/tex-chtml.js", "good",
             ["book/intro.html: 2 formula(s) shown as raw TeX (MathJax did not load)"]),
            ("broken", "mathjax/tex-chtml.js", "bad",
             ["book/intro.html: 1 formula(s) MathJax could not parse"])):
        site = tmp_path / name
        (site / "book").mkdir(parents=True)
        if script.startswith("mathjax"):
            shutil.copytree(shipped / "mathjax", site / "_static" / "mathjax")
        (site / "index.html").write_text("<html><body>index</body></html>")
        spans = "".join(f"<p><span class='math'>{part}</span></p>"
                        for part in formulas[tex].replace(" and ", "|").split("|"))
        (site / "book" / "intro.html").write_text(
            f"<html><head><script defer src='../_static/{script}'></script></head><body><main>"
            f"{spans}</main></body></html>")
        assert browser.check_book(site, tmp_path / f"{name}-shots") == expected, name


def test_a_failing_cell_names_the_chapter_and_keeps_the_notebook(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "broken.md").write_text((ROOT / "book" / "data.md").read_text().split(
        "# Data")[0] + "# Broken\n\n```{code-cell} ipython3\nprint('ran')\n1 / 0\n```\n")
    with pytest.raises(book.ChapterFailed, match="chapter 'book/broken' failed .*ZeroDivisionError"):
        book.execute("book/broken", "smoke", tmp_path / "out", tmp_path, key="k", force=False)
    kept = (tmp_path / "out" / "book" / "broken.ipynb").read_text()
    assert "ran" in kept and "ZeroDivisionError" in kept
    assert not (tmp_path / "out" / "book" / "broken.key").exists()
