"""The course's website (`make book`): built from the stored outputs, self-contained, read in headless Chromium.

The site is the one `make book` wrote to build/book/html, rebuilt first when a chapter or a book source is
newer than it. The browser checks visit every page through a local server with every request that would
leave the machine blocked, and save screenshots into build/book-screenshots/.
"""
import functools
import http.server
import importlib.util
import json
import re
import shutil
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
OUT = ROOT / "build" / "book"
SITE = OUT / "html"
SCREENSHOTS = ROOT / "build" / "book-screenshots"
NOTEBOOKS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
STEMS = [nb.stem for nb in NOTEBOOKS]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# the flags this machine's closed network needs: no background connections, no updates, no sync
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load("book_build", BOOK / "build.py")
sys.path.insert(0, str(BOOK / "_ext"))
import plain_docstrings  # noqa: E402
import run_chapter  # noqa: E402


def _newest_source():
    sources = [p for p in BOOK.rglob("*") if p.is_file() and "__pycache__" not in p.parts] + NOTEBOOKS
    sources += list((ROOT / "ebmlib").rglob("*.py"))
    return max(p.stat().st_mtime for p in sources)


@pytest.fixture(scope="session")
def site():
    """The built site's html folder, rebuilt when a source is newer than its index page."""
    index = SITE / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source():
        build.build(OUT)
    return SITE


def image_outputs(notebook):
    """How many figures (image outputs) the notebook's stored outputs hold."""
    cells = json.loads(notebook.read_text())["cells"]
    return sum(any(k.startswith("image/") for k in out.get("data", {}))
               for cell in cells for out in cell.get("outputs", []))


# ---- the built files -------------------------------------------------------------------------------------

def test_index_and_one_page_per_chapter(site):
    index = (site / "index.html").read_text()
    for stem in STEMS:
        assert (site / "chapters" / f"{stem}.html").exists(), f"no page for chapter {stem}"
        assert f'href="chapters/{stem}.html"' in index, f"the landing page does not link chapter {stem}"
    text = re.sub(r"<[^>]+>", "", index)  # code is highlighted word by word
    assert "make setup" in text and "make test" in text, "the landing page must give the two commands"


def test_no_page_loads_anything_from_another_machine(site):
    assert build.external_references(site) == []


def test_the_offline_check_finds_remote_scripts_styles_fonts_and_images(tmp_path):
    (tmp_path / "page.html").write_text(
        '<link rel="stylesheet" href="https://cdn.example.org/a.css"><script src="//cdn.example.org/b.js"></script>'
        '<img src="http://example.org/c.png"><a href="https://example.org/">a plain link is fine</a>'
        '<link rel="next" href="https://example.org/next.html">')
    (tmp_path / "s.css").write_text("@import 'https://fonts.example.org/f.css'; a { background: url(local.png) }")
    (tmp_path / "s.js").write_text('const font = "https://fonts.example.org/f.woff2";')
    found = build.external_references(tmp_path)
    assert sorted(found) == sorted([
        "page.html: https://cdn.example.org/a.css", "page.html: //cdn.example.org/b.js",
        "page.html: http://example.org/c.png", "s.css: https://fonts.example.org/f.css",
        "s.js: https://fonts.example.org/f.woff2"])


def test_math_renderer_is_in_the_site(site):
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert list((site / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))


def test_every_chapter_page_has_the_run_box(site):
    for stem in STEMS:
        page = re.sub(r"<[^>]+>", "", (site / "chapters" / f"{stem}.html").read_text())
        assert "Run this chapter" in page and "make lab" in page, f"{stem}: no run box"
        assert f"chapters/{stem}.ipynb" in page, f"{stem}: the run box does not name the chapter's file"


def test_run_box_commands_name_the_notebook():
    lines = run_chapter.run_commands("chapters/05_ddls.ipynb").splitlines()
    assert [line.split("#")[0].strip() for line in lines] == ["make setup", "make lab", "EBMLIB_SMOKE=1 make lab"]
    assert "chapters/05_ddls.ipynb" in lines[1]


def test_api_reference_documents_every_public_module_with_signatures(site):
    modules = build.public_modules()
    assert {"ebmlib.samplers", "ebmlib.mcmc", "ebmlib.recipes.table1"} <= set(modules)
    assert not [m for m in modules if any(part.startswith("_") for part in m.split("."))]
    for module in modules:
        assert (site / "api" / f"{module}.html").exists(), f"no API page for {module}"
    samplers = (site / "api" / "ebmlib.samplers.html").read_text()
    assert 'id="ebmlib.samplers.sample"' in samplers
    assert re.search(r'id="ebmlib\.samplers\.sample".*?<em class="sig-param">', samplers, re.S), "no signature"
    mcmc = (site / "api" / "ebmlib.mcmc.html").read_text()
    assert 'id="ebmlib.mcmc.langevin"' in mcmc and 'id="ebmlib.mcmc.LangevinDivergence"' in mcmc


def test_search_index_holds_every_chapter(site):
    index = (site / "searchindex.js").read_text()
    for stem in STEMS:
        assert f'"chapters/{stem}"' in index, f"chapter {stem} is not in the search index"


@pytest.mark.parametrize("line, expected", [
    ("|d(a) - d(b)| / ||a - b||", r"\|d(a) - d(b)\| / \|\|a - b\|\|"),
    ("images (B, *in_shape) in [-1, 1]", r"images (B, \*in_shape) in [-1, 1]"),
    ("its *energies* and **strong** words", "its *energies* and **strong** words"),
    ("over C*S*S values, 4 * width", r"over C\*S\*S values, 4 \* width"),
    ("``x | y`` and ``(*shape)`` stay literal", "``x | y`` and ``(*shape)`` stay literal"),
])
def test_docstring_bars_and_lone_stars_are_escaped(line, expected):
    assert plain_docstrings.escape_docstring_line(line) == expected


# ---- in the browser ----------------------------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(folder):
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread; yields the base address."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# text nodes outside code, scripts and typeset math: what is left of TeX there was not typeset
_PAGE_FACTS = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await document.fonts.ready;  // the fonts typesetting asked for
  const main = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const rawTex = [];
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    if (!parent || parent.closest('pre, code, script, style, mjx-container, .highlight, .cell_output')) continue;
    const text = node.textContent;
    if (/\$\$|\\begin\{|\\[A-Za-z]{2,}|\$[^$\s][^$]*\$/.test(text)) rawTex.push(text.trim().slice(0, 120));
  }
  const images = Array.from(document.images);
  const figures = Array.from(main.querySelectorAll('.cell_output img'));
  const headings = Array.from(main.querySelectorAll('h2')).map(h => h.textContent.replace(/#$/, '').trim());
  const summary = Array.from(main.querySelectorAll('section')).find(s => /^Summary/.test(
      (s.querySelector(':scope > h2') || {textContent: ''}).textContent));
  const nav = Array.from(document.querySelectorAll(
      '.prev-next-area a, nav.bd-docs-nav a, .bd-toc a, main .toctree-wrapper a')).map(a => a.href);
  return {
    rawTex, headings, nav,
    mathTypeset: main.querySelectorAll('mjx-container').length,
    brokenImages: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    figures: figures.length,
    summaryText: summary ? summary.innerText.length : 0,
    prev: Array.from(document.querySelectorAll('.prev-next-area a.left-prev')).map(a => a.href),
    next: Array.from(document.querySelectorAll('.prev-next-area a.right-next')).map(a => a.href),
  };
}
"""


def _site_pages(site):
    """Every HTML page of the site (not the theme's template fragments in _static)."""
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if "_static" not in p.parts)


def _screenshot_section(page, section, until, path, max_height=1600):
    """Save the page from the top of ``section`` to the bottom of the first ``until`` inside it (CSS selectors);
    False when the page has no such section or element."""
    box = page.evaluate("""([section, until]) => {
        const s = document.querySelector(section), u = s && s.querySelector(until);
        if (!u) return null;
        return {top: s.getBoundingClientRect().top + window.scrollY, bottom: u.getBoundingClientRect().bottom
                + window.scrollY, width: document.documentElement.clientWidth}; }""", [section, until])
    if box is None:
        return False
    height = min(box["bottom"] - box["top"] + 20, max_height)
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": max(box["top"] - 10, 0), "width": box["width"], "height": height})
    return True


@pytest.fixture(scope="module")
def browsed(site):
    """Visit every page in headless Chromium; per page: console errors, blocked requests and the page's facts."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium to run the browser checks")
    from playwright.sync_api import sync_playwright

    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    report = {"screenshots": {}}
    with serve(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        outside = []

        def keep_local(route):
            if route.request.url.startswith(base) or route.request.url.startswith("data:"):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", keep_local)
        pages = _site_pages(site)
        for name in pages:
            page = context.new_page()
            errors = []
            page.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda err, errors=errors: errors.append(str(err)))
            page.goto(base + name, wait_until="load")
            facts = page.evaluate(_PAGE_FACTS)
            facts["console_errors"], facts["outside"] = errors, list(outside)
            outside.clear()
            stem = Path(name).stem
            if name.startswith("chapters/"):
                page.evaluate("window.scrollTo(0, 0)")
                shot = SCREENSHOTS / f"{stem}.png"
                page.screenshot(path=str(shot))
                report["screenshots"][stem] = shot
                facts["last_figure_width"] = page.evaluate(
                    "() => { const f = Array.from(document.querySelectorAll('main .cell_output img')).pop(); "
                    "if (!f) return 0; f.scrollIntoView(); return f.complete ? f.naturalWidth : 0; }")
            if stem == "05_ddls":  # the section's text and its first output, the table
                report["table1"] = _screenshot_section(page, "section#table-1", ".cell_output",
                                                       SCREENSHOTS / "05_ddls_table1.png")
            if stem == "09_ddls_cifar10":  # the section's text and its first figure, the chain strips
                report["chains"] = _screenshot_section(page, "section[id^='chains-in-latent-space']",
                                                       ".cell_output img", SCREENSHOTS / "09_ddls_chains.png")
            report[name] = facts
            page.close()
        report["search"] = _search(context, base)
        browser.close()
        report["nav"] = _fetch_all({href.partition("#")[0] for name in pages for href in report[name]["nav"]})
    print(f"\nbook screenshots: {SCREENSHOTS}")
    return report


def _search(context, base):
    """The titles the site's own search lists for a word every chapter on Langevin dynamics uses."""
    page = context.new_page()
    page.goto(base + "search.html?q=Langevin", wait_until="load")
    page.wait_for_selector("#search-results ul li", timeout=20_000)
    hits = page.evaluate("() => Array.from(document.querySelectorAll('#search-results ul li a')).map(a => a.href)")
    page.close()
    return hits


def _fetch_all(urls):
    """{url: (HTTP status, text)} for pages of the local site (an error status is kept, not raised)."""
    answers = {}
    for url in sorted(urls):
        try:
            with urllib.request.urlopen(url) as response:
                answers[url] = (response.status, response.read().decode())
        except urllib.error.HTTPError as err:
            answers[url] = (err.code, "")
    return answers


def test_every_page_loads_without_errors_or_remote_requests(browsed, site):
    for name in _site_pages(site):
        facts = browsed[name]
        assert facts["console_errors"] == [], f"{name}: console errors {facts['console_errors']}"
        assert facts["outside"] == [], f"{name}: requests that would leave the machine {facts['outside']}"
        assert facts["brokenImages"] == [], f"{name}: images that did not load {facts['brokenImages']}"
        assert facts["rawTex"] == [], f"{name}: TeX left untypeset {facts['rawTex']}"


@pytest.mark.parametrize("stem", STEMS)
def test_chapter_page_as_a_reader_sees_it(browsed, stem):
    facts = browsed[f"chapters/{stem}.html"]
    assert facts["mathTypeset"] > 0, f"{stem}: no typeset math"
    expected = image_outputs(ROOT / "chapters" / f"{stem}.ipynb")
    assert facts["figures"] == expected, f"{stem}: {facts['figures']} figures on the page, {expected} stored"
    assert facts["last_figure_width"] > 0, f"{stem}: the last figure did not load"
    assert "Summary" in facts["headings"] and facts["summaryText"] > 100, f"{stem}: no summary {facts['headings']}"
    assert len(facts["prev"]) == 1 and len(facts["next"]) == 1, f"{stem}: no previous/next links"
    assert (SCREENSHOTS / f"{stem}.png").stat().st_size > 10_000


def test_navigation_links_resolve(browsed, site):
    answers = browsed["nav"]
    assert len(answers) >= len(STEMS) + 2, "too few navigation links: is the sidebar there?"
    for name in _site_pages(site):
        for href in browsed[name]["nav"]:
            url, _, fragment = href.partition("#")
            status, text = answers[url]
            assert status == 200, f"{name}: {href} answered {status}"
            if fragment:
                assert f'id="{urllib.parse.unquote(fragment)}"' in text, f"{name}: {href} has no such anchor"


def test_chapters_are_chained_in_order(browsed):
    for before, after in zip(STEMS, STEMS[1:]):
        assert browsed[f"chapters/{before}.html"]["next"][0].endswith(f"chapters/{after}.html")
        assert browsed[f"chapters/{after}.html"]["prev"][0].endswith(f"chapters/{before}.html")


def test_search_finds_chapters_offline(browsed):
    hits = [urllib.parse.urlsplit(url).path for url in browsed["search"]]
    assert any(path.endswith("chapters/01_energy_models_langevin.html") for path in hits), hits


def test_screenshots_of_table1_and_the_chain_strip(browsed):
    assert browsed["table1"], "chapter 05 has no section 'Table 1' (section#table-1)"
    assert browsed["chains"], "chapter 09 has no figure in its section 'Chains in latent space'"
    for name in ("05_ddls_table1.png", "09_ddls_chains.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
