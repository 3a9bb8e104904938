"""Bodies: Cloud's Atlassian Document Format (API v3) and Data Center's wiki markup (API v2).

Exported bodies are the HTML Jira renders (``renderedFields`` / ``renderedBody``, asked for in the same call),
on both flavors. When no rendering came (a webhook payload, an answer without it), ``to_html`` makes HTML from
what there is: ADF walked node by node, or wiki markup escaped as preformatted text (we do not re-implement
Jira's wiki renderer). ``from_text`` builds the ADF document Cloud's v3 API needs for a new comment.
"""

from __future__ import annotations

import html
from typing import Any

_BLOCK_TAGS = {"paragraph": "p", "heading": "h{level}", "blockquote": "blockquote", "bulletList": "ul",
               "orderedList": "ol", "listItem": "li", "codeBlock": "pre", "table": "table", "tableRow": "tr",
               "tableCell": "td", "tableHeader": "th"}
_MARKS = {"strong": "strong", "em": "em", "code": "code", "strike": "s", "underline": "u"}


def _node(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    attrs = node.get("attrs") or {}
    if kind == "text":
        text = html.escape(str(node.get("text") or ""))
        for mark in node.get("marks") or []:
            mtype = mark.get("type") if isinstance(mark, dict) else None
            if mtype == "link":
                href = html.escape(str((mark.get("attrs") or {}).get("href") or ""), quote=True)
                text = f'<a href="{href}">{text}</a>'
            elif mtype in _MARKS:
                text = f"<{_MARKS[mtype]}>{text}</{_MARKS[mtype]}>"
        return text
    if kind == "hardBreak":
        return "<br/>"
    if kind == "rule":
        return "<hr/>"
    if kind == "mention":
        return html.escape(str(attrs.get("text") or "@" + str(attrs.get("id") or "")))
    if kind in ("emoji", "status"):
        return html.escape(str(attrs.get("text") or attrs.get("shortName") or ""))
    inner = "".join(_node(c) for c in node.get("content") or [])
    if kind == "doc":
        return inner
    tag = _BLOCK_TAGS.get(str(kind))
    if tag is None:
        return inner
    tag = tag.format(level=min(max(int(attrs.get("level") or 1), 1), 6))
    return f"<{tag}>{inner}</{tag}>"


def to_html(body: Any) -> str:
    """HTML of an ADF document (dict) or of wiki markup / plain text (str)."""
    if isinstance(body, dict):
        return _node(body)
    if isinstance(body, str) and body:
        return f"<pre>{html.escape(body)}</pre>"
    return ""


def from_text(text: str) -> dict[str, Any]:
    """An ADF document with one paragraph per line block."""
    paragraphs = [p for p in text.split("\n\n")] or [""]
    content = []
    for p in paragraphs:
        parts: list[dict[str, Any]] = []
        for i, line in enumerate(p.split("\n")):
            if i:
                parts.append({"type": "hardBreak"})
            if line:
                parts.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": parts})
    return {"type": "doc", "version": 1, "content": content}
