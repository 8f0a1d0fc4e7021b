"""Open every rendered page in headless Chromium and look for what a reader would see broken.

Used by ``make check-book``.  A page fails on an image that did not load, an
error or traceback output, a table or summary box (``cgt-claims``, ``cgt-table``:
every DataFrame a chapter shows, ``cgt-summary``) wider than its column at a 1280-px
window, a formula left as raw TeX (MathJax did not load: the book ships its own copy so
that it reads offline) or that MathJax could not parse, or (for chapter pages) no figure
at all.  A full-page screenshot of each page is saved for a human look.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--no-first-run",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

PAGE_PROBE = """
const images = Array.from(document.querySelectorAll('article img, main img'));
return {
  images: images.length,
  broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  errors: Array.from(document.querySelectorAll('.output.traceback, .output.error'))
               .map(e => e.innerText.slice(0, 300)),
  notebook: document.querySelector('.cell_output, .cell') !== null,
  height: document.documentElement.scrollHeight,
  // tables and summary boxes that are wider than the column they sit in: the reader
  // would get a horizontal scroll bar (or a cut) instead of the whole row
  scrolled: Array.from(document.querySelectorAll('.cgt-claims, .cgt-table, .cgt-summary')).filter(el => {
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      const overflow = getComputedStyle(node).overflowX;
      if (node.scrollWidth > node.clientWidth + 1 && overflow !== 'visible') return true;
    }
    return false;
  }).map(el => (el.innerText || '').replace(/\\s+/g, ' ').slice(0, 80)),
  title: document.title,
};
"""

# Sphinx wraps every formula in a `.math` element; MathJax typesets it into an
# `mjx-container` inside, asynchronously, after the page has loaded
MATH_PROBE = """
const formulas = Array.from(document.querySelectorAll('.math'));
return [formulas.length, formulas.filter(e => e.querySelector('mjx-container')).length,
        document.querySelectorAll('mjx-merror').length];
"""
MATH_WAIT_S = 10.0


def formula_problems(driver) -> tuple[int, int]:
    """(formulas still raw TeX after MathJax had its time, formulas MathJax could not
    parse) on the open page."""
    deadline = time.monotonic() + MATH_WAIT_S
    while True:
        total, typeset, errors = driver.execute_script(MATH_PROBE)
        if typeset == total or time.monotonic() > deadline:
            return total - typeset, errors
        time.sleep(0.25)


def find_browser() -> tuple[str, str] | None:
    """Paths of (chromium, chromedriver) if both are installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def check_book(html: Path, screenshots: Path, index_page: str = "book/intro.html") -> list[str]:
    """Return a list of problems (empty when every page looks right)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        return ["Chromium is not installed: `apt-get install chromium chromium-driver`"]
    if not (html / "index.html").exists():
        return [f"no rendered book at {html}: run `make book` first"]
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    screenshots.mkdir(parents=True, exist_ok=True)
    problems = []
    pages = sorted(p for p in html.rglob("*.html")
                   if p.name not in {"genindex.html", "search.html"} and "_static" not in p.parts
                   and "_sources" not in p.parts)
    driver = webdriver.Chrome(options=options, service=Service(found[1]))
    try:
        for page in pages:
            name = str(page.relative_to(html))
            driver.get(page.resolve().as_uri())
            if driver.current_url.split("#")[0] != page.resolve().as_uri():
                continue  # a redirect (index.html): its target is checked on its own
            raw, broken_tex = formula_problems(driver)  # typeset first: it changes the layout
            if raw:
                problems.append(f"{name}: {raw} formula(s) shown as raw TeX (MathJax did not load)")
            if broken_tex:
                problems.append(f"{name}: {broken_tex} formula(s) MathJax could not parse")
            facts = driver.execute_script(PAGE_PROBE)
            for src in facts["broken"]:
                problems.append(f"{name}: broken image {src}")
            for text in facts["errors"]:
                problems.append(f"{name}: error output: {text}")
            for text in facts["scrolled"]:
                problems.append(f"{name}: a table or summary box scrolls sideways at "
                                f"1280 px: {text}")
            is_chapter = facts["notebook"] and name != index_page
            if is_chapter and facts["images"] == 0:
                problems.append(f"{name}: a chapter page without any figure")
            driver.set_window_size(1280, min(max(facts["height"], 900), 16000))
            driver.save_screenshot(str(screenshots / (name.replace("/", "_") + ".png")))
            print(f"checked {name}: {facts['images']} image(s), "
                  f"{len(facts['broken'])} broken, {len(facts['errors'])} error output(s)")
    finally:
        driver.quit()
    return problems
