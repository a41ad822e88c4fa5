"""One self-contained HTML file: the payload embedded as inert data, the page's CSS and JS inline.

The payload is model output, i.e. untrusted text. It is embedded inside
``<script type="application/json">`` (never executed) with ``<``, ``>`` and ``&`` written as
JSON ``u003c`` / ``u003e`` / ``u0026`` unicode escapes, so no completion can close the element
(``</script>``) or open a comment; the page renders every string with ``textContent`` only. A
Content-Security-Policy with a per-file nonce lets only the page's own script run and forbids
every network request, so the file also works offline and from disk.

Large payloads (above :data:`COMPRESS_OVER_BYTES`) are embedded gzip-compressed and base64-encoded
(``<script type="application/octet-stream">``) and inflated in the browser with
``DecompressionStream`` (Chromium 80+, Firefox 113+, Safari 16.4+).
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import secrets
from importlib import resources
from typing import Any

from verimath.view.load import clean

#: payloads larger than this (bytes of JSON) are embedded gzip + base64 by default
COMPRESS_OVER_BYTES = 2_000_000

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
            "\u2029": "\\u2029"}


def embed_json(obj: Any) -> str:
    """``obj`` as compact JSON that is safe inside a ``<script>`` element.

    NaN / infinity become null; ``<``, ``>``, ``&`` (and U+2028/9) are written as JSON unicode
    escapes, which JSON.parse reads back as the same characters. Only strings can contain those
    characters in JSON, so the escaping never changes structure.
    """
    text = json.dumps(clean(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, esc in _ESCAPES.items():
        text = text.replace(ch, esc)
    return text


def asset(name: str) -> str:
    """The text of ``verimath/view/assets/<name>`` (shipped as package data)."""
    return resources.files("verimath.view").joinpath("assets", name).read_text(encoding="utf-8")


def render_page(payload: dict[str, Any], title: str, *,
                compress: bool | None = None) -> str:
    """The whole HTML document of a report.

    Args:
        payload: the JSON-ready report data (see :mod:`verimath.view.load`).
        title: the page title (escaped here).
        compress: embed gzip + base64; None decides by size (:data:`COMPRESS_OVER_BYTES`).

    Returns:
        The document as a string (UTF-8 when written).
    """
    data = embed_json(payload)
    if compress is None:
        compress = len(data) > COMPRESS_OVER_BYTES
    if compress:
        blob = base64.b64encode(gzip.compress(data.encode("utf-8"), compresslevel=6, mtime=0))
        block = ('<script type="application/octet-stream" id="vm-data-gz">'
                 + blob.decode("ascii") + "</script>")
    else:
        block = f'<script type="application/json" id="vm-data">{data}</script>'
    nonce = secrets.token_urlsafe(16)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return "".join([
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f'<style nonce="{nonce}">{asset("report.css")}</style></head>\n',
        '<body><div id="app"><p class="muted">loading the report&hellip;</p></div>\n',
        block, "\n",
        f'<script nonce="{nonce}">{asset("report.js")}</script>\n</body></html>\n',
    ])
