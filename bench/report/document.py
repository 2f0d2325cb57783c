"""A tiny document model, rendered to both Markdown and self-contained HTML.

A report is a list of :class:`Block` (headings, paragraphs, tables, lists, findings,
preformatted text, figures). :func:`to_markdown` links figures by path; :func:`to_html`
embeds them as base64 PNG with inline CSS and no external reference, so the file opens
offline. Inline text may use three Markdown marks, `` `code` ``, ``**bold**`` and links
to a heading of the report, ``[text](#anchor)`` (:func:`link`); HTML renders all three.

Both documents open with a one-line table of contents of the second-level headings.
In HTML every table scrolls inside its own box with its first column fixed (``position:
sticky``) and numbers right-aligned, and figures are at most as wide as the text column,
so nothing widens the page.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "anchor", "link", "to_html", "to_markdown"]


@dataclass(frozen=True)
class Block:
    """One block of a report.

    Parameters
    ----------
    kind
        ``h1``, ``h2``, ``h3``, ``p``, ``table``, ``pre``, ``ul``, ``findings`` (a lead
        sentence over a highlighted list) or ``figure``.
    text
        Heading or paragraph text, preformatted text, a figure's title, or the lead
        sentence of findings.
    rows, header, align
        A table's rows, header and per-column alignment (``"l"`` or ``"r"``).
    items
        A list's items.
    image, link
        A figure's PNG file (embedded in HTML) and its relative path (linked in Markdown).
    """

    kind: str
    text: str = ""
    rows: tuple[tuple[str, ...], ...] = ()
    header: tuple[str, ...] = ()
    align: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    image: Path | None = None
    link: str = ""


def anchor(heading: str) -> str:
    """The anchor of a heading as GitHub makes it: lower case, punctuation dropped, ``-``.

    ``"Results: cdp-realistic-small (100,310 records)"`` gives
    ``"results-cdp-realistic-small-100310-records"``.
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def link(text: str, heading: str) -> str:
    """An inline link to a heading of the report: ``[text](#anchor)``."""
    return f"[{text}](#{anchor(heading)})"


def _toc(blocks: list[Block]) -> list[str]:
    """Every second-level heading, in order: one line of contents under the title.

    Third-level headings are many (one per dataset and table); they are reached from
    the section they belong to, so the contents stay on the first screen's top line.
    """
    return [b.text for b in blocks if b.kind == "h2"]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(b: Block) -> str:
    lines = ["| " + " | ".join(map(_md_cell, b.header)) + " |"]
    lines.append("|" + "|".join("---:" if a == "r" else ":---" for a in b.align) + "|")
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
    return "\n".join(lines)


def _md_block(b: Block) -> str | None:
    if b.kind in ("h1", "h2", "h3"):
        return "#" * int(b.kind[1]) + " " + b.text
    if b.kind in ("p", "findings", "ul"):
        items = "\n".join(f"- {item}" for item in b.items)
        return "\n\n".join(part for part in (b.text, items) if part)
    if b.kind == "pre":
        return "```text\n" + b.text + "\n```"
    if b.kind == "table":
        return _md_table(b)
    if b.kind == "figure":
        return f"![{b.text}]({b.link})"
    return None


def to_markdown(blocks: list[Block]) -> str:
    """The blocks as Markdown (figures linked, not embedded), contents after the title."""
    out: list[str] = []
    toc = _toc(blocks)
    for i, b in enumerate(blocks):
        if i == 1 and toc:
            out += ["Contents: " + " · ".join(link(text, text) for text in toc), ""]
        text = _md_block(b)
        if text is not None:
            out += [text, ""]
    return "\n".join(out)


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((#[\w-]+)\)")


def _inline_html(text: str) -> str:
    """Escape text, then render the inline marks: `code`, **bold**, [text](#anchor)."""
    esc = html.escape(text, quote=False)
    esc = _CODE.sub(r"<code>\1</code>", esc)
    esc = _LINK.sub(r'<a href="\2">\1</a>', esc)
    return _BOLD.sub(r"<strong>\1</strong>", esc)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
a { color: #0b5cad; }
nav.toc { background: #f8f8f8; border: 1px solid #e4e4e4; padding: .3rem .8rem;
          margin: .8rem 0; font-size: .9rem; }
nav.toc ul { display: inline; margin: 0; padding: 0; }
nav.toc li { display: inline; margin-left: .9rem; }
.findings { background: #f3f8ff; border-left: 4px solid #0b5cad; padding: .1rem 1rem;
            margin: .6rem 0 1rem; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: .6rem 0 1.2rem;
              border: 1px solid #ddd; }
table { border-collapse: separate; border-spacing: 0; font-size: .9rem; }
th, td { border-right: 1px solid #ddd; border-bottom: 1px solid #ddd;
         padding: .25rem .55rem; white-space: nowrap; background: #fff; }
th { background: #f4f4f4; }
th:first-child, td:first-child { position: sticky; left: 0; z-index: 1;
                                 border-right: 2px solid #bbb; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f2f2f2; padding: 0 .2rem; border-radius: 3px; font-size: .9em; }
pre { background: #f6f6f6; padding: .6rem; font-size: .85rem; white-space: pre-wrap;
      overflow-wrap: anywhere; }
p, li { overflow-wrap: anywhere; }
figure { margin: 1rem 0 .4rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
.status-ok { color: #1a7f37; } .status-error { color: #cf222e; font-weight: 600; }
.status-timeout { color: #9a6700; font-weight: 600; } .status-skipped { color: #777; }
.flag { color: #cf222e; font-weight: 600; }
"""


def _html_cell(header: str, value: str) -> str:
    """A cell's content; ``status`` cells are coloured, ``flag`` cells stand out."""
    inner = _inline_html(value)
    if header == "status":
        return f'<span class="status-{html.escape(value)}">{inner}</span>'
    if header == "flag" and value:
        return f'<span class="flag">{inner}</span>'
    return inner


def _html_table(b: Block) -> str:
    """A table in its own scrolling box (the page never scrolls sideways for it)."""
    cls = [' class="r"' if a == "r" else "" for a in b.align]
    head = "".join(f"<th{c}>{_inline_html(h)}</th>" for c, h in zip(cls, b.header, strict=True))
    rows = [
        "<tr>"
        + "".join(
            f"<td{c}>{_html_cell(h, v)}</td>" for c, h, v in zip(cls, b.header, row, strict=True)
        )
        + "</tr>"
        for row in b.rows
    ]
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _html_list(items: tuple[str, ...]) -> str:
    return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in items) + "</ul>"


def _html_figure(b: Block) -> str | None:
    if b.image is None:
        return None
    data = base64.b64encode(b.image.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(b.text)}" src="data:image/png;base64,{data}"></figure>'


def _html_findings(b: Block) -> str:
    lead = f"<p>{_inline_html(b.text)}</p>" if b.text else ""
    return f'<div class="findings">{lead}{_html_list(b.items)}</div>'


#: How each kind of block is written in HTML (headings below h1 carry their anchor).
_HTML: dict[str, Callable[[Block], str | None]] = {
    "h1": lambda b: f"<h1>{_inline_html(b.text)}</h1>",
    "h2": lambda b: f'<h2 id="{anchor(b.text)}">{_inline_html(b.text)}</h2>',
    "h3": lambda b: f'<h3 id="{anchor(b.text)}">{_inline_html(b.text)}</h3>',
    "p": lambda b: f"<p>{_inline_html(b.text)}</p>",
    "pre": lambda b: f"<pre>{html.escape(b.text)}</pre>",
    "ul": lambda b: _html_list(b.items),
    "findings": _html_findings,
    "table": _html_table,
    "figure": _html_figure,
}


def _html_block(b: Block) -> str | None:
    render = _HTML.get(b.kind)
    return render(b) if render is not None else None


def _html_toc(blocks: list[Block]) -> str:
    """The contents: one line of links to the second-level headings."""
    items = "".join(
        f'<li><a href="#{anchor(text)}">{_inline_html(text)}</a></li>' for text in _toc(blocks)
    )
    return f'<nav class="toc"><strong>Contents</strong><ul>{items}</ul></nav>' if items else ""


def to_html(blocks: list[Block], title: str) -> str:
    """The blocks as one self-contained HTML page (figures embedded, CSS inline)."""
    body = [text for text in map(_html_block, blocks) if text is not None]
    toc = _html_toc(blocks)
    if toc and body:
        body.insert(1, toc)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
