"""Small HTML builders for the report: every text that reaches the page is escaped here."""
from __future__ import annotations

import html

from .._text import printable

__all__ = ["esc", "table", "figure", "section", "page", "fmt"]

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d1d1d;
background:#fafafa}
header{background:#20242a;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px;font-size:24px}header p{margin:0;color:#c9d1d9}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 32px;
z-index:2;font-size:14px}nav a{margin-right:14px;color:#0b5cad;text-decoration:none}
main{padding:8px 32px 48px;max-width:1320px}
section{background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:6px 22px 18px;
margin:18px 0}
h2{border-bottom:2px solid #eee;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:14px}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:10px 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:13px}
.note{color:#555;font-size:14px}.warn{background:#fff6e0;border-left:4px solid #f0a000;
padding:6px 12px}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
.thumb{width:136px;font-size:12px;word-break:break-all;color:#333}
.thumb img{width:128px;height:128px;object-fit:contain;background:#111;display:block;
border:3px solid #ccc}.thumb.wrong img{border-color:#d00000}.thumb.right img{border-color:#2a8a2a}
.cm td{min-width:90px}.kv th,.kv td{text-align:left}.muted{color:#888}
"""


def esc(value) -> str:
    """HTML-escape any value for text or attribute use, each line
    :func:`~ffeat._text.printable` first: a file name with bytes that are not UTF-8,
    control, bidirectional or zero-width characters is shown escaped, and the page
    is always valid UTF-8."""
    text = "\n".join(printable(line) for line in str(value).split("\n"))
    return html.escape(text, quote=True)


def fmt(value, digits: int = 4) -> str:
    """A number for a table cell; ``n/a`` for None or NaN."""
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(header: list[str] | None, rows: list[list], cls: str = "") -> str:
    """A table (no header row for ``None``); cells are escaped, numbers formatted
    with :func:`fmt`."""
    if header is None:
        body = "".join(f"<tr><th>{esc(k)}</th>" + "".join(f"<td>{esc(fmt(c))}</td>"
                                                          for c in row) + "</tr>"
                       for k, *row in rows)
        return f'<table class="kv {esc(cls)}"><tbody>{body}</tbody></table>'
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    cls_attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(src: str, alt: str, caption: str = "") -> str:
    """An image with a caption; ``src`` is a path relative to the report."""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{esc(src)}" alt="{esc(alt)}">{cap}</figure>'


def section(ident: str, title: str, body: str) -> str:
    """A titled section that the navigation links to by ``ident``."""
    return f'<section id="{esc(ident)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole document from ``(id, title, body)`` sections."""
    nav = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t, _ in sections)
    body = "".join(section(*s) for s in sections)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n")
