"""The HTML view of `ner predict --format html` on hand-made predictions: entities, shading, review marks,
escaping, nothing loaded from outside the page, and (where Chromium is installed) the page as a real
browser parses and renders it."""
import re
import shutil
import subprocess

import pytest

from ner.api import Entity, TaggedText
from ner.html_view import PALETTE, render_html
from tests.helpers import PNG_MAGIC

TEXT = "<script>alert('x')</script> Smith & Co in London"


def tagged(review: bool) -> TaggedText:
    entities = (Entity("Smith & Co", "org", 28, 38, 1.0, False), Entity("London", "geo", 42, 48, 0.5, review))
    assert [TEXT[e.start:e.end] for e in entities] == [e.text for e in entities]
    return TaggedText(TEXT, (), entities)


def test_entities_are_highlighted_by_type_and_shaded_by_confidence():
    page = render_html([tagged(review=False)], entity_types=("geo", "org"), threshold=0.0)
    assert ('<span class="entity" style="background: rgba(86, 180, 233, 1.00)" title="org, confidence 1.00">'
            'Smith &amp; Co<span class="type">org</span></span>') in page
    assert ('<span class="entity" style="background: rgba(230, 159, 0, 0.57)" title="geo, confidence 0.50">'
            'London<span class="type">geo</span></span>') in page  # 0.15 + 0.85 · 0.5
    assert PALETTE[:2] == ("230, 159, 0", "86, 180, 233")
    assert "no review threshold" in page


def test_low_confidence_entities_are_dashed_with_a_tooltip():
    page = render_html([tagged(review=True)], entity_types=("geo", "org"), threshold=0.8)
    assert ('<span class="entity review" style="background: rgba(230, 159, 0, 0.57)" '
            'title="geo, confidence 0.50 (below the review threshold)">London<span class="type">geo?</span></span>'
            ) in page
    assert ".entity.review { border: 2px dashed #c00; }" in page and "dashed: confidence below 0.8" in page
    assert page.count('<span class="entity review" style=') == 1  # the legend's has no style


def test_text_is_escaped_and_the_page_loads_nothing():
    page = render_html([tagged(review=False)], entity_types=("geo", "org"), threshold=0.0)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; " in page
    assert "<script" not in page and "Smith & Co" not in page
    assert not re.search(r"\b(src|href)=|url\(|@import|https?:", page)
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium (Debian: apt-get install chromium)")
def test_headless_chromium_parses_the_page_as_written_and_renders_it(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(render_html([tagged(review=True)], entity_types=("geo", "org"), threshold=0.8), encoding="utf-8")
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu"]
    dom = subprocess.run(browser + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert "<script" not in dom and "&lt;script&gt;alert('x')&lt;/script&gt; " in dom  # text, not an element
    assert dom.count('<span class="entity review" style=') == 1 and dom.count('<span class="type">') == 2
    png = tmp_path / "page.png"
    subprocess.run(browser + ["--window-size=800,400", f"--screenshot={png}", page.as_uri()], capture_output=True,
                   timeout=120, check=True)
    assert png.read_bytes().startswith(PNG_MAGIC)
