"""Make the GX Data Docs site work offline and without broken links (post-processing, idempotent).

GX 1.24 renders its pages with Bootstrap, Font Awesome, bootstrap-table, jQuery and
Vega loaded from CDNs, a logo from S3, and an index whose table of validation results
is filled in by JavaScript. Offline (a trading floor, an air-gapped cluster) the pages
show unstyled and the index shows an empty table. After every build this module
rewrites each page of the site:

- removes every ``<link>`` and ``<script>`` that loads from http(s) and every inline
  script (they drive the CDN libraries), and links ``static/styles/dap-offline.css``
  (a small stylesheet written here) plus GX's own local stylesheets;
- renders the index's validation-results table as static HTML from the data GX
  embeds in the page, one link per result;
- points the remote logo at GX's bundled ``static/images/logo-long-vector.svg``;
- turns links to local pages that do not exist into plain text (``href`` dropped) and drops
  ``<link>`` tags to local files that do not exist (GX's favicon path on result pages).
"""

from __future__ import annotations

import ast
import html
import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

OFFLINE_CSS = "static/styles/dap-offline.css"
MARKER = "<!-- dap-offline -->"
CSS = """/* Written by tasks.quality.docs_offline: the Data Docs styles without a CDN. */
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
.container-fluid,.container{padding:1rem 1.5rem}
.row{display:flex;flex-wrap:wrap;gap:1rem}.col-12,.col-md-12{flex:1 1 100%}
.col-md-2,.col-lg-2{flex:0 0 16rem}.col-md-10,.col-lg-10,.col-md-9,.col-md-8{flex:1 1 0;min-width:0}
nav,.navbar{background:#fff;border-bottom:1px solid #ddd;padding:.5rem 1rem;display:flex;align-items:center;gap:1rem}
.card{background:#fff;border:1px solid #ddd;border-radius:4px;margin-bottom:1rem}
.card-header{background:#f3f3f3;border-bottom:1px solid #ddd;padding:.5rem .75rem;font-weight:600}
.card-body{padding:.75rem}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.5rem 0;background:#fff}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.text-success{color:#1e7e34}.text-danger{color:#c82333}.text-warning{color:#b8860b}
.badge{display:inline-block;padding:.1rem .4rem;border-radius:3px;background:#e9ecef;font-size:.8rem}
.badge-success{background:#d4edda}.badge-danger{background:#f8d7da}.badge-warning{background:#fff3cd}
.fa-check-circle::before{content:"\\2714";color:#1e7e34}.fa-times::before,.fa-times-circle::before{content:"\\2718";color:#c82333}
.fas,.far,.fa{font-style:normal}
.collapse{display:block}.d-none{display:none}.sticky{position:sticky;top:0}
pre,code{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px;white-space:pre-wrap}
a{color:#0b5394}img.ge-logo,.navbar-brand img{height:28px}
.dap-offline-note{font-size:.8rem;color:#666;margin:.5rem 1.5rem}
"""

_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*/?>\s*", re.IGNORECASE)
_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*", re.IGNORECASE)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>.*?</script>\s*", re.IGNORECASE | re.DOTALL)
_REMOTE_LOGO = re.compile(r"src=\"https://great-expectations-web-assets[^\"]*\"")
_TABLE = re.compile(r"<table\s+id=\"(?P<id>[^\"]+)\"[^>]*data-toggle=\"table\"\s*>\s*</table>", re.DOTALL)
_TABLE_DATA = re.compile(
    r"columns:\s*(?P<columns>\[.*?\]),\s*data:\s*(?P<data>\[.*?\]),\s*toolbar:", re.DOTALL
)
_ANCHOR = re.compile(r"<a\b(?P<attrs>[^>]*?)\bhref=\"(?P<href>[^\"]*)\"(?P<rest>[^>]*)>", re.IGNORECASE)
_LINK_TAG = re.compile(r"<link\b[^>]*\bhref=\"(?P<href>[^\"]*)\"[^>]*/?>\s*", re.IGNORECASE)
_LOCAL_REF = re.compile(r"\b(?:href|src)=\"(?P<ref>[^\"]*)\"", re.IGNORECASE)


def is_local(ref: str) -> bool:
    """A reference to a file of the site (not a fragment, data: URI, mail or web address)."""
    return bool(ref) and not re.match(r"^(#|[a-z][a-z0-9+.-]*:)", ref, re.IGNORECASE)


def resolves(page: Path, ref: str) -> bool:
    target = ref.split("#", 1)[0].split("?", 1)[0]
    return not target or (page.parent / target).resolve().is_file()


def _static_table(columns: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """The index table as HTML; cells hold GX's own HTML snippets, the link opens the result."""
    head = "".join(f"<th>{html.escape(str(c.get('title', c['field'])))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(f"<td>{row.get(c['field'], '')}</td>" for c in columns)
        link = row.get("_table_row_link_path")
        opener = f'<td><a href="{html.escape(str(link))}">open</a></td>' if link else "<td></td>"
        body.append(f"<tr>{cells}{opener}</tr>")
    return f'<table class="dap-static-table"><tr>{head}<th>result</th></tr>{"".join(body)}</table>'


def _render_tables(text: str) -> str:
    """Fill each JavaScript-driven table from the data in its script (GX writes Python literals)."""
    found = _TABLE_DATA.search(text)
    if not found:
        return text
    try:
        columns = ast.literal_eval(found.group("columns"))
        rows = ast.literal_eval(found.group("data"))
    except (ValueError, SyntaxError) as exc:
        log.warning("Data Docs index table not rendered statically: %s", exc)
        return text
    return _TABLE.sub(lambda _: _static_table(columns, rows), text, count=1)


def _drop_dead_links(text: str, page: Path) -> str:
    def fix(match: re.Match[str]) -> str:
        href = match.group("href")
        if is_local(href) and not resolves(page, href):
            kept = (match.group("attrs") + match.group("rest")).strip()
            return f'<a {kept} title="not rendered">' if kept else '<a title="not rendered">'
        return match.group(0)

    def drop(match: re.Match[str]) -> str:  # GX links the favicon one level too shallow on result pages
        href = match.group("href")
        return "" if is_local(href) and not resolves(page, href) else match.group(0)

    return _LINK_TAG.sub(drop, _ANCHOR.sub(fix, text))


def offline_page(text: str, page: Path, site: Path) -> str:
    """One page rewritten for offline use (see the module docstring)."""
    if MARKER in text:
        return text
    up = os.path.relpath(site, page.parent).replace(os.sep, "/")
    prefix = "" if up == "." else up + "/"
    text = _render_tables(text)
    text = _REMOTE_LINK.sub("", text)
    text = _REMOTE_SCRIPT.sub("", text)
    text = _INLINE_SCRIPT.sub("", text)
    text = _REMOTE_LOGO.sub(f'src="{prefix}static/images/logo-long-vector.svg"', text)
    local_css = [
        f"{prefix}static/styles/{name}"
        for name in ("data_docs_default_styles.css",)
        if (site / "static" / "styles" / name).is_file()
    ]
    links = "".join(
        f'<link rel="stylesheet" href="{href}">' for href in [f"{prefix}{OFFLINE_CSS}", *local_css]
    )
    text = text.replace("</head>", f"{MARKER}{links}</head>", 1)
    return _drop_dead_links(text, page)


def make_offline(site: Path) -> int:
    """Rewrite every page of the site in place; returns how many changed."""
    if not site.is_dir():
        return 0
    css = site / OFFLINE_CSS
    css.parent.mkdir(parents=True, exist_ok=True)
    if not css.is_file() or css.read_text() != CSS:
        css.write_text(CSS)
    changed = 0
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = offline_page(text, page, site)
        if new != text:
            tmp = page.with_name(f".{page.name}.tmp")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(page)
            changed += 1
    return changed


def broken_references(site: Path) -> list[str]:
    """``page: ref`` for every local href/src that does not resolve and every remote stylesheet or script."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        rel = page.relative_to(site)
        problems += [f"{rel}: remote {m.group(0)[:80]}" for m in _REMOTE_LINK.finditer(text)]
        problems += [f"{rel}: remote {m.group(0)[:80]}" for m in _REMOTE_SCRIPT.finditer(text)]
        for m in _LOCAL_REF.finditer(text):
            ref = html.unescape(m.group("ref"))
            if is_local(ref) and not resolves(page, ref):
                problems.append(f"{rel}: {ref}")
    return problems
