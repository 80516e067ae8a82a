"""The GX Data Docs site works offline: no CDN stylesheet or script, every local link resolves."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from tasks.quality.docs_offline import OFFLINE_CSS, broken_references, offline_page
from tasks.quality.gx_runner import GxRunner
from tasks.quality.specs import ExpectationSpec, SuiteSpec

pytestmark = pytest.mark.integration

SUITE = SuiteSpec(
    name="prices",
    description="two checks",
    expectations=(
        ExpectationSpec("prices.not_null", "expect_column_values_to_not_be_null", {"column": "price"}),
        ExpectationSpec(
            "prices.in_limits",
            "expect_column_values_to_be_between",
            {"column": "price", "min_value": -500, "max_value": 4000},
            severity="warn",
        ),
    ),
)


class Refs(HTMLParser):
    """Every stylesheet, script, image and anchor reference of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("href", "src"):
            if values.get(key):
                self.refs.append((tag, values[key] or ""))


def crawl(site: Path) -> list[str]:
    """Problems found by following every reference of every page, as a browser offline would."""
    problems = []
    for page in site.rglob("*.html"):
        parser = Refs()
        parser.feed(page.read_text())
        for tag, ref in parser.refs:
            remote = re.match(r"https?://", ref)
            if remote and tag in ("link", "script", "img"):
                problems.append(f"{page.name}: remote {tag} {ref}")
            elif not remote and not ref.startswith(("#", "data:", "mailto:")):
                target = (page.parent / ref.split("#")[0].split("?")[0]).resolve()
                if not target.is_file():
                    problems.append(f"{page.relative_to(site)}: dead {tag} {ref}")
    return problems


def test_data_docs_build_offline_without_dead_links(tmp_path: Path) -> None:
    runner = GxRunner(tmp_path / "gx")
    frame = pd.DataFrame({"price": [10.0, 5000.0, 30.0]})
    for day in ("2026-03-28", "2026-03-29"):
        runner.run(SUITE, frame, run_key="prices.DE_LU", data_day=day)
    index = runner.publish_docs()
    site = runner.docs_site
    assert index == (site / "index.html").as_uri()
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert "expectations/prices/DE_LU.html" in pages  # the suite page the index links to
    assert len([p for p in pages if p.startswith("validations/")]) == 2
    assert crawl(site) == []
    assert broken_references(site) == []
    assert (site / OFFLINE_CSS).is_file()
    # The index's result table is static HTML now (GX fills it with JavaScript from a CDN).
    text = (site / "index.html").read_text()
    links = re.findall(r'<a href="(validations/[^"]+\.html)">open</a>', text)
    assert len(links) == 2
    assert all((site / link).is_file() for link in links)
    # A second build (another process, another day) keeps the site clean.
    runner.run(SUITE, frame, run_key="prices.DE_LU", data_day="2026-03-30")
    runner.publish_docs()
    assert crawl(site) == []
    assert len(re.findall(r">open</a>", (site / "index.html").read_text())) == 3


def test_offline_page_rewrites_a_gx_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    page = site / "validations" / "x" / "result.html"
    page.parent.mkdir(parents=True)
    (site / "index.html").write_text("")
    (site / OFFLINE_CSS).parent.mkdir(parents=True)
    (site / OFFLINE_CSS).write_text("")
    text = (
        '<html><head><link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/b.css">'
        '<script src="https://code.jquery.com/jquery.js"></script><link rel="icon" href="../static/favicon.ico">'
        "</head><body><a href='#'>top</a><a href=\"../../index.html\">home</a>"
        '<a class="x" href="../../expectations/gone.html">suite</a><script>$(document).ready()</script></body></html>'
    )
    out = offline_page(text, page, site)
    assert "https://" not in out
    assert "<script" not in out
    assert "favicon" not in out
    assert '<a href="../../index.html">home</a>' in out
    assert '<a class="x" title="not rendered">suite</a>' in out
    assert f'href="../../{OFFLINE_CSS}"' in out
    assert offline_page(out, page, site) == out
