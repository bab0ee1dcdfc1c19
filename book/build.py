"""Build the course as a static website from the chapters' stored outputs (nothing is re-executed).

    python book/build.py [--out build/book]

The Sphinx sources are staged in OUT/src (this folder's pages, the chapters' notebooks copied as they
are, and an API page listing every public module of ebmlib), the site is written to OUT/html, and the
build fails when any page, stylesheet or script would fetch something from another machine.
"""
import argparse
import pkgutil
import re
import shutil
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
CHAPTERS = ROOT / "chapters"
# the book's own sources, copied into the staging folder beside the chapters
PAGES = ("conf.py", "index.md", "_ext", "_static", "_templates")


def chapter_notebooks(chapters=CHAPTERS):
    """The chapters' notebooks in reading order (NN_name.ipynb)."""
    notebooks = sorted(chapters.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no chapter notebooks (NN_name.ipynb) in {chapters}: is this the repository root?")
    return notebooks


def public_modules():
    """ebmlib and its public modules (no leading underscore, no __main__), recipes included, sorted."""
    import ebmlib

    names = ["ebmlib"]
    for info in pkgutil.walk_packages(ebmlib.__path__, prefix="ebmlib."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def api_page(modules):
    """The API reference page: one generated page per module, through autosummary."""
    listing = "\n".join(f"   {name}" for name in modules)
    return (
        "# API reference\n\n"
        "Generated from `ebmlib`'s docstrings: every public module, with its functions and classes and their "
        "signatures. The package's own page documents the names it re-exports for the chapters "
        "(`ebmlib.sample`, `ebmlib.langevin`, `ebmlib.calibrate`, `ebmlib.smoke`, ...).\n\n"
        "```{eval-rst}\n.. autosummary::\n   :toctree: api\n\n" + listing + "\n```\n"
    )


def stage(src):
    """Lay out the Sphinx source folder: the book's pages, the chapters' notebooks, the API page."""
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in PAGES:
        path = BOOK / name
        if path.is_dir():
            shutil.copytree(path, src / name)
        else:
            shutil.copy2(path, src / name)
    (src / "chapters").mkdir()
    for notebook in chapter_notebooks():
        shutil.copy2(notebook, src / "chapters" / notebook.name)
    (src / "api.md").write_text(api_page(public_modules()))


class _ResourceLinks(HTMLParser):
    """Collects the addresses a page loads by itself: scripts, stylesheets, icons, images, frames, media."""

    LOADING = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"), ("source", "src"),
               ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data"), ("img", "srcset")}
    FETCHED_LINKS = ("stylesheet", "icon", "preload", "prefetch", "manifest")

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and not any(kind in (attrs.get("rel") or "") for kind in self.FETCHED_LINKS):
            return  # a link to another page (next, search), not something the browser fetches
        for name, value in attrs.items():
            if (tag, name) in self.LOADING and value:
                self.urls.append(value)
        style = attrs.get("style") or ""
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", style)


_CSS_URL = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"])([^'\")\s]+)")
_REMOTE = re.compile(r"^(?:https?:)?//", re.IGNORECASE)
# a script that builds a remote address for a font, a stylesheet or a script at run time
_JS_FETCH = re.compile(r"['\"]https?://[^'\"]*\.(?:woff2?|ttf|otf|css|js)['\"]", re.IGNORECASE)
# remote addresses in scripts that no browser the site is read with ever loads
_NEVER_LOADED = {
    # MathJax's speech engine fetches this XPath polyfill only where document.evaluate is missing (old
    # Internet Explorer); the browser test sees every request, and none leaves the machine
    "wicked-good-xpath",
}


def external_references(html_dir):
    """Every place in the built site that would load something from another machine, as 'file: address'.

    Looks at the addresses HTML pages load (scripts, stylesheets, images, frames), at ``url()`` and
    ``@import`` in stylesheets, and at literal font, stylesheet and script addresses in scripts.
    """
    html_dir = Path(html_dir)
    found = []
    for path in sorted(html_dir.rglob("*")):
        if path.suffix not in (".html", ".css", ".js") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".html":
            parser = _ResourceLinks()
            parser.feed(text)
            urls = parser.urls + re.findall(r"@import\s+['\"]([^'\"]+)", text)
        elif path.suffix == ".css":
            urls = _CSS_URL.findall(text)
        else:
            urls = [m.strip("'\"") for m in _JS_FETCH.findall(text)]
            urls = [url for url in urls if not any(name in url for name in _NEVER_LOADED)]
        found += [f"{path.relative_to(html_dir)}: {url}" for url in urls if _REMOTE.match(url.strip())]
    return found


def _split_warnings(text):
    """Sphinx's warnings as (from the library's docstrings, from the book's own pages)."""
    warnings = [line for line in text.splitlines() if re.search(r"(WARNING|ERROR|CRITICAL|SEVERE):", line)]
    in_docstrings = [line for line in warnings if "docstring of " in line]
    return in_docstrings, [line for line in warnings if "docstring of " not in line]


def build(out, quiet=True):
    """Stage the sources and build the site into ``out``/html; returns the html folder.

    A warning about a chapter or a page of the book fails the build (math or a link that does not
    render); one about a docstring of ebmlib is reported and the docstring is shown as it parses.
    """
    from sphinx.cmd.build import build_main

    sys.path.insert(0, str(ROOT))  # document the ebmlib of this checkout, not an installed one
    out = Path(out).resolve()
    src, html, log = out / "src", out / "html", out / "warnings.txt"
    stage(src)
    # -E: read every page afresh, so that a change to the book's extensions reaches every page
    args = ["-b", "html", "-E", "-d", str(out / "doctrees"), "-w", str(log), "-q" if quiet else "-v",
            str(src), str(html)]
    status = build_main(args)
    in_docstrings, in_pages = _split_warnings(log.read_text() if log.exists() else "")
    if in_docstrings:
        print(f"book: note: {len(in_docstrings)} warnings about ebmlib's docstrings (above); "
              "those docstrings are shown as they parse", file=sys.stderr)
    if status != 0 or in_pages:
        raise RuntimeError(f"sphinx-build failed on {src}:\n  " + "\n  ".join(in_pages or ["see the errors above"]))
    remote = external_references(html)
    if remote:
        raise RuntimeError("the site would load from other machines (it must work offline):\n  " + "\n  ".join(remote))
    return html


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "book"), help="output folder (default build/book)")
    parser.add_argument("--verbose", action="store_true", help="show Sphinx's progress")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        html = build(args.out, quiet=not args.verbose)
    except (RuntimeError, FileNotFoundError) as err:
        print(f"book: error: {err}", file=sys.stderr)
        return 1
    pages = len(list(html.rglob("*.html")))
    print(f"book: {pages} pages in {html} ({time.perf_counter() - start:.0f} s); open {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
