"""A tiny document model, rendered to both Markdown and self-contained HTML.

A report is a list of :class:`Block` (headings, paragraphs, tables, lists, preformatted
text, figures). :func:`to_markdown` links figures by path; :func:`to_html` embeds them
as base64 PNG with inline CSS and no external reference, so the file opens offline.
Inline text may use two Markdown marks, `` `code` `` and ``**bold**``; HTML renders both.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "to_html", "to_markdown"]


@dataclass(frozen=True)
class Block:
    """One block of a report.

    Parameters
    ----------
    kind
        ``h1``, ``h2``, ``h3``, ``p``, ``table``, ``pre``, ``ul`` or ``figure``.
    text
        Heading or paragraph text, preformatted text, or a figure's title.
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


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(b: Block) -> str:
    lines = ["| " + " | ".join(map(_md_cell, b.header)) + " |"]
    lines.append("|" + "|".join("---:" if a == "r" else ":---" for a in b.align) + "|")
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    """The blocks as Markdown (figures linked, not embedded)."""
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "pre":
            out.append("```text\n" + b.text + "\n```")
        elif b.kind == "ul":
            out.append("\n".join(f"- {item}" for item in b.items))
        elif b.kind == "table":
            out.append(_md_table(b))
        elif b.kind == "figure":
            out.append(f"![{b.text}]({b.link})")
        out.append("")
    return "\n".join(out)


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline_html(text: str) -> str:
    """Escape text, then render the two inline marks the report uses: `code`, **bold**."""
    esc = html.escape(text, quote=False)
    esc = _CODE.sub(r"<code>\1</code>", esc)
    return _BOLD.sub(r"<strong>\1</strong>", esc)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; }
th { background: #f4f4f4; white-space: nowrap; }
td:first-child { white-space: nowrap; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f2f2f2; padding: 0 .2rem; border-radius: 3px; font-size: .9em; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .85rem; }
figure { margin: 1rem 0 .4rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.status-ok { color: #1a7f37; } .status-error { color: #cf222e; font-weight: 600; }
.status-timeout { color: #9a6700; font-weight: 600; } .status-skipped { color: #777; }
"""


def _html_table(b: Block) -> str:
    """A table; cells of a ``status`` column are coloured by their status."""
    cls = [' class="r"' if a == "r" else "" for a in b.align]
    head = "".join(f"<th{c}>{_inline_html(h)}</th>" for c, h in zip(cls, b.header, strict=True))
    rows = []
    for row in b.rows:
        cells = []
        for c, h, v in zip(cls, b.header, row, strict=True):
            inner = _inline_html(v)
            if h == "status":
                inner = f'<span class="status-{html.escape(v)}">{inner}</span>'
            cells.append(f"<td{c}>{inner}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html_block(b: Block) -> str | None:
    if b.kind in ("h1", "h2", "h3"):
        return f"<{b.kind}>{_inline_html(b.text)}</{b.kind}>"
    if b.kind == "p":
        return f"<p>{_inline_html(b.text)}</p>"
    if b.kind == "pre":
        return f"<pre>{html.escape(b.text)}</pre>"
    if b.kind == "ul":
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>"
    if b.kind == "table":
        return _html_table(b)
    if b.kind == "figure" and b.image is not None:
        data = base64.b64encode(b.image.read_bytes()).decode("ascii")
        return (
            f'<figure><img alt="{html.escape(b.text)}" src="data:image/png;base64,{data}"></figure>'
        )
    return None


def to_html(blocks: list[Block], title: str) -> str:
    """The blocks as one self-contained HTML page (figures embedded, CSS inline)."""
    body = [text for text in map(_html_block, blocks) if text is not None]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
