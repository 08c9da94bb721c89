"""A self-contained HTML page: inline CSS, PNG figures embedded as base64 ``data:`` URIs.

The page needs no network, no JavaScript and no file beside it: it can be mailed, archived or
opened from a read-only folder years later and still show everything.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import numbers
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.25em 0.9em 0.25em 0.4em; border-bottom: 1px solid #eee; vertical-align: top; }
th { color: #555; font-weight: 600; white-space: nowrap; }
td.num { font-family: Menlo, Consolas, monospace; text-align: right; }
.tables { display: flex; flex-wrap: wrap; gap: 2.5em; }
figure { margin: 1em 0 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; image-rendering: auto; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.4em; max-width: 60em; }
footer { color: #888; font-size: 0.8em; margin-top: 3em; }
"""


@dataclass
class Section:
    """One figure of the report: an anchor id, a heading, a caption and the PNG bytes."""

    id: str
    title: str
    caption: str
    png: bytes


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes (ValueError if they are not a PNG)."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("report figures must be PNG images.")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def format_value(value) -> str:
    """A table cell: numbers to 6 significant digits, sequences joined, None as '—'."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        return f"{v:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) if value else "()"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    return str(value)


def _table(rows, caption: str) -> str:
    body = []
    for key, value in rows:
        numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
        cls = ' class="num"' if numeric else ""
        body.append(f"<tr><th>{html.escape(str(key))}</th><td{cls}>{html.escape(format_value(value))}</td></tr>")
    return f'<table><caption style="text-align:left;font-weight:600;padding-bottom:0.3em">{html.escape(caption)}</caption>\n' \
           + "\n".join(body) + "\n</table>"


def render_html(title: str, sections, *, subtitle: str = "", settings=None, metrics=None) -> str:
    """The whole page. ``settings`` and ``metrics`` are dicts or (key, value) pairs shown as
    tables; ``sections`` are :class:`Section` figures, in order."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f'<p class="sub">{html.escape(subtitle)}</p>')
    tables = []
    if metrics:
        tables.append(_table(metrics.items() if isinstance(metrics, dict) else metrics, "Metrics"))
    if settings:
        tables.append(_table(settings.items() if isinstance(settings, dict) else settings, "Settings"))
    if tables:
        parts.append('<section id="tables"><div class="tables">' + "\n".join(tables) + "</div></section>")
    if sections:
        parts.append("<nav><p>" + " · ".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>'
                                            for s in sections) + "</p></nav>")
    for s in sections:
        parts.append(
            f'<section id="{html.escape(s.id)}">\n<h2>{html.escape(s.title)}</h2>\n<figure>'
            f'<img src="{data_uri(s.png)}" alt="{html.escape(s.title)}">'
            f"<figcaption>{html.escape(s.caption)}</figcaption></figure>\n</section>"
        )
    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts += [f"<footer>Made by aekit on {html.escape(stamp)}. Self-contained: the figures are embedded in this file.</footer>",
              "</body>", "</html>"]
    return "\n".join(parts) + "\n"
