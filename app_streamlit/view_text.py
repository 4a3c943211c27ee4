"""Text from the data (names, e-mails, reasons) shown through Markdown elements, literally.

Streamlit renders `st.subheader`/`st.caption` as Markdown (HTML is never rendered without
`unsafe_allow_html`, but `*`, `_`, `[`, `<` … would still be interpreted). CommonMark prints any
backslash-escaped ASCII punctuation as the character itself, so escaping all of it shows a name
such as `<script>alert(1)</script>` or `*Bob*` exactly as stored.
"""

from __future__ import annotations

import string

_PUNCTUATION = frozenset(string.punctuation)


def markdown_text(text: str) -> str:
    """`text` escaped so Markdown shows it verbatim (newlines become spaces)."""
    flat = " ".join(text.split())
    return "".join("\\" + ch if ch in _PUNCTUATION else ch for ch in flat)
