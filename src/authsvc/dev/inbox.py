"""The dev outbox as a page a person reads: ``GET /dev/outbox`` with ``Accept: text/html``.

Newest first, grouped by recipient (the most recently written-to first); each message shows
its subject, body, the code in large type and its links, clickable. Everything from a
message is HTML-escaped; only http(s) URLs become links. No script, no external asset.
"""

from __future__ import annotations

import re
from html import escape

from authsvc.dev.outbox import OutboxMessage

_URL = re.compile(r"https?://[^\s<>\"']+")

_STYLE = """
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #57606a; --bg: #f6f8fa;
  --card: #fff; --line: #d0d7de; --accent: #0a58ca; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9aa4ae; --bg: #0d1117;
  --card: #161b22; --line: #30363d; --accent: #6ea8fe; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
header, main { max-width: 56rem; margin: 0 auto; padding: 1rem; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1.5rem; }
h1 { font-size: 1.5rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; word-break: break-all; }
a { color: var(--accent); }
.muted { color: var(--muted); }
article { background: var(--card); border: 1px solid var(--line); border-radius: .5rem;
  padding: .75rem 1rem; margin: .5rem 0; }
article h3 { font-size: 1rem; margin: 0; }
.meta { font-size: .85rem; color: var(--muted); margin: 0 0 .5rem; }
.code { font: 700 2rem/1.2 ui-monospace, "SFMono-Regular", Menlo, monospace;
  letter-spacing: .2em; margin: .25rem 0; user-select: all; }
.body { white-space: pre-wrap; overflow-wrap: anywhere; margin: .25rem 0; }
.link { overflow-wrap: anywhere; }
"""


def _linkify(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;)")
        out.append(escape(text[last : match.start()]))
        out.append(f'<a href="{escape(url)}">{escape(url)}</a>')
        last = match.start() + len(url)
    out.append(escape(text[last:]))
    return "".join(out)


def _message(message: OutboxMessage) -> str:
    sent = message.sent_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [
        f'<article data-kind="{escape(message.kind)}">',
        f"<h3>{escape(message.subject)}</h3>",
        f'<p class="meta"><time datetime="{message.sent_at.isoformat()}">{sent}</time>'
        f" · {escape(message.kind)}</p>",
    ]
    if message.code:
        parts.append(f'<p class="code" aria-label="Code">{escape(message.code)}</p>')
    parts.append(f'<p class="body">{_linkify(message.body)}</p>')
    if message.link and _URL.fullmatch(message.link) and message.link not in message.body:
        link = escape(message.link)
        parts.append(f'<p class="link"><a href="{link}">{link}</a></p>')
    parts.append("</article>")
    return "".join(parts)


def render(messages: list[OutboxMessage], *, to: str | None, kind: str | None) -> str:
    """``messages`` come newest first; groups keep that order by their newest message."""
    groups: dict[str, list[OutboxMessage]] = {}
    for message in messages:
        groups.setdefault(message.to, []).append(message)
    filters = " ".join(
        f"{name}={escape(value)}" for name, value in (("to", to), ("kind", kind)) if value
    )
    sections = [
        f'<section aria-labelledby="to-{i}"><h2 id="to-{i}">{escape(address)}</h2>'
        + "".join(_message(m) for m in items)
        + "</section>"
        for i, (address, items) in enumerate(groups.items())
    ]
    count = len(messages)
    summary = f"{count} message{'s' if count != 1 else ''}" + (f" ({filters})" if filters else "")
    empty = (
        '<p class="muted">Nothing yet. Sign up, resend a code, reset a password or invite'
        " someone, then reload this page.</p>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Dev outbox · authsvc</title><style>{_STYLE}</style></head><body>"
        "<header><h1>Dev outbox</h1>"
        f'<p class="muted">{summary}, newest first · <a href="">Reload</a>'
        ' · <a href="/dev/spa/">Example app</a> · <a href="/docs">API docs</a></p></header>'
        f"<main>{''.join(sections) or empty}</main></body></html>"
    )


def wants_html(accept: str | None) -> bool:
    """True when the client prefers text/html to JSON (a browser does; curl, httpx and
    fetch() send */* or application/json, and keep getting JSON)."""
    if not accept:
        return False
    quality: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    html = quality.get("text/html", 0.0)
    json_q = max(quality.get("application/json", 0.0), quality.get("application/*", 0.0))
    return html > 0 and html >= json_q
