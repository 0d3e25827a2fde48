"""The built book as a reader sees it, offline: every chapter, the intro and the glossary opened in
headless Chromium with the network blocked (only file:// loads). MathJax ships inside the book
(sphinx-mathjax-offline, _static/mathjax), so every equation must be typeset with no raw TeX left, and
every local image must load; images from the network (the Colab and run-time badges) may fail, and then
show their alt text. Needs the `playwright` package (requirements.txt) and a Chromium on PATH; it uses
the system's Chromium and never downloads a browser."""
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("ch*.ipynb"))
PAGES = [*(p.stem for p in CHAPTERS), "precision", "intro", "glossary"]
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http://, https://, protocol-relative //
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac\{|\$[^$\s][^$\n]*\$")  # incl. inline $x$
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

pytestmark = pytest.mark.slow


def page_has_math_in_source(stem):
    """A page is expected to show typeset math when its source's prose has a `$` (MyST dollarmath)."""
    notebook = ROOT / "book" / f"{stem}.ipynb"
    if notebook.exists():
        text = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
    else:
        text = (ROOT / "book" / f"{stem}.md").read_text()
    text = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)  # code is not math
    return "$" in text


@pytest.fixture(scope="module")
def html(built_book):
    """The book built once for the session (``conftest.built_book``, the build ``test_notebooks`` checks too)."""
    return built_book / "_build" / "html"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: .venv/bin/pip install -r requirements.txt")
    executable = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    if executable is None:
        pytest.skip("no Chromium on PATH: apt-get install chromium (the rendered-book test uses the system's)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=["--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def offline_page(browser):
    """A page in a fresh context with the network off: every non-file:// request is aborted and recorded."""
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    blocked = []

    def block(route):
        blocked.append((route.request.resource_type, route.request.url))
        route.abort()

    context.route(lambda url: not url.startswith("file:"), block)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page, blocked
    context.close()


def render(page, path):
    """Open `path`, wait for MathJax's typesetting and the fonts, and read what the test checks."""
    page.goto(path.as_uri(), wait_until="load")
    page.evaluate("() => window.MathJax && window.MathJax.startup ? window.MathJax.startup.promise : null")
    page.evaluate("() => document.fonts.ready.then(() => null)")
    return page.evaluate("""async () => {
        const local = [...document.images].filter(i => !/^([a-z][a-z0-9+.-]*:)?\\/\\//i.test(i.getAttribute('src') || ''));
        await Promise.all(local.map(i => { i.loading = 'eager'; return i.decode().catch(() => null); }));
        const main = (document.querySelector('main') || document.body).cloneNode(true);
        main.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
        return {
            mathjax: !!(window.MathJax && window.MathJax.startup),
            containers: document.querySelectorAll('mjx-container').length,
            math: [...document.querySelectorAll('.math')].length,
            untypeset: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container'))
                                                              .map(e => e.textContent.slice(0, 80)),
            errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
            text: main.innerText,
            fonts: [...document.fonts].filter(f => f.status === 'error').map(f => f.family),
            images: [...document.images].map(i => ({src: i.getAttribute('src'), alt: i.getAttribute('alt') || '',
                                                    complete: i.complete, width: i.naturalWidth})),
        };
    }""")


def test_mathjax_is_served_from_the_book_and_no_page_loads_a_script_from_the_network(html):
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists(), "sphinx-mathjax-offline did not copy MathJax"
    for stem in PAGES:
        source = (html / "book" / f"{stem}.html").read_text()
        scripts = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", source)
        remote = [s for s in scripts if REMOTE.match(s)]
        assert not remote, f"{stem}.html loads scripts from the network: {remote}"
        links = [h for h in re.findall(r"<link\b[^>]*\bhref=\"([^\"]+)\"", source) if REMOTE.match(h)]
        assert not links, f"{stem}.html loads stylesheets or fonts from the network: {links}"
        mathjax = [s for s in scripts if "mathjax" in s.lower()]
        if page_has_math_in_source(stem):
            assert mathjax == ["../_static/mathjax/tex-chtml.js"], f"{stem}.html: MathJax from {mathjax}"
        for script in mathjax:
            assert (html / "book" / script).resolve().exists(), script


@pytest.mark.parametrize("stem", PAGES)
def test_page_renders_offline(stem, html, offline_page):
    page, blocked = offline_page
    seen = render(page, html / "book" / f"{stem}.html")
    summary = json.dumps({k: v for k, v in seen.items() if k != "text"}, indent=1)[:3000]

    if page_has_math_in_source(stem):
        assert seen["mathjax"], f"{stem}: MathJax did not load from the book offline\n{summary}"
        assert seen["containers"] > 0, f"{stem}: no equation typeset (no mjx-container)\n{summary}"
    assert not seen["untypeset"], f"{stem}: math left untypeset: {seen['untypeset'][:3]}"
    assert not seen["errors"], f"{stem}: MathJax errors: {seen['errors'][:3]}"
    raw = [seen["text"][max(0, m.start() - 40):m.end() + 40] for m in RAW_TEX.finditer(seen["text"])]
    assert not raw, f"{stem}: raw TeX in the page's text: {raw[:3]}"
    assert not seen["fonts"], f"{stem}: fonts failed to load offline: {seen['fonts']}"

    local = [i for i in seen["images"] if not REMOTE.match(i["src"] or "")]
    broken = [i["src"] for i in local if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"{stem}: local images did not load: {broken}"
    remote = [i for i in seen["images"] if REMOTE.match(i["src"] or "")]
    assert all(i["alt"].strip() for i in remote), f"{stem}: a network image without alt text: {remote}"

    fetched = [(kind, url) for kind, url in blocked if kind != "image"]
    assert not fetched, f"{stem}: the page asked the network for more than images: {fetched}"


LAYOUT = """() => {
    const article = document.querySelector('main article') || document.querySelector('main');
    const right = article.getBoundingClientRect().right;
    const blocks = [...article.querySelectorAll('pre, table, div.cell_output, div.cell_input, img, mjx-container[display]')];
    const wide = blocks.filter(e => e.getBoundingClientRect().width > 0)
        .filter(e => (e.tagName !== 'IMG' && e.scrollWidth > e.clientWidth + 1) || e.getBoundingClientRect().right > right + 1)
        .map(e => `${e.tagName}: ${e.innerText ? e.innerText.slice(0, 60) : e.getAttribute('src')}`);
    const figures = [...article.querySelectorAll('div.cell_output img')].filter(i => i.naturalWidth > 0)
        .map(i => ({src: i.getAttribute('src'), shown: i.getBoundingClientRect().width, natural: i.naturalWidth}));
    const body = parseFloat(getComputedStyle(article.querySelector('p') || article).fontSize);
    return {wide, figures, body, text: article.innerText};
}"""


@pytest.mark.parametrize("stem", PAGES)
def test_at_1280_px_nothing_runs_off_the_page_and_figure_text_is_at_least_the_small_print(stem, html, offline_page):
    """At 1280 x 900 no output, table, code block or figure is wider than the article; figure text is at least
    SMALL_PRINT of the body text's size: a figure's smallest text (``plots.MIN_FONT_PT``, which
    tests/test_plots.py holds every figure to) at the dpi its PNG records, times the scale the page shows it at;
    and the exercise checker's stub output is not on the page."""
    from PIL import Image

    from mmlesson.plots import MIN_FONT_PT

    page, _ = offline_page
    render(page, html / "book" / f"{stem}.html")
    seen = page.evaluate(LAYOUT)
    assert not seen["wide"], f"{stem}: blocks wider than the page at 1280 px: {seen['wide'][:5]}"
    for figure in seen["figures"]:
        dpi = Image.open((html / "book" / figure["src"]).resolve()).info.get("dpi", (72, 72))[0]
        pixels = MIN_FONT_PT * dpi / 72 * figure["shown"] / figure["natural"]
        assert pixels >= SMALL_PRINT * seen["body"], (
            f"{stem}: {figure['src']}: its smallest text shows at {pixels:.1f} px, under the small print "
            f"({SMALL_PRINT * seen['body']:.1f} px)")
    assert "Not yet:" not in seen["text"], f"{stem}: the exercise checker's stub output is on the page"


SMALL_PRINT = 0.7  # of the body text's size: the smallest text a page shows in its own type
