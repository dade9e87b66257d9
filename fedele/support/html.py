"""User HTML in support: sanitised with nh3 before it is stored, converted to text for search and
plain-text e-mail, and built from plain text for messages that arrive without HTML."""

from __future__ import annotations

import html as html_module
import re

import nh3

ALLOWED_TAGS = frozenset(
    {
        "p",
        "br",
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ul",
        "ol",
        "li",
        "blockquote",
        "pre",
        "code",
        "img",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "h1",
        "h2",
        "h3",
        "h4",
        "hr",
        "div",
        "span",
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
# Tags whose content is dropped together with the tag (not kept as text).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "title", "head", "noscript", "template", "iframe"})
URL_SCHEMES = frozenset({"http", "https", "mailto", "cid", "tel"})
IMAGE_SCHEMES = ("cid:", "https:")


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # Remote http: images track the reader and data: images carry anything: only cid: and https:.
    if tag == "img" and attribute == "src":
        return value if value.strip().lower().startswith(IMAGE_SCHEMES) else None
    if tag == "a" and attribute == "href" and value.strip().lower().startswith("cid:"):
        return None
    return value


def sanitise_html(html: str) -> str:
    """Keep only the allow-listed tags and attributes; links get rel="noopener noreferrer"."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


_BLOCK_BREAK = re.compile(r"(?i)<\s*(br|/p|/div|/h[1-6]|/li|/tr|/blockquote|/pre|hr|/table)\b[^>]*>")
_LIST_ITEM = re.compile(r"(?i)<\s*li\b[^>]*>")
_CELL = re.compile(r"(?i)</\s*t[dh]\s*>")
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML fragment: line breaks for blocks, "- " for list items."""
    if not html:
        return ""
    cleaned = nh3.clean(html, tags=set(ALLOWED_TAGS), clean_content_tags=set(DROPPED_WITH_CONTENT))
    cleaned = _LIST_ITEM.sub("- ", cleaned)
    cleaned = _CELL.sub(" ", cleaned)
    cleaned = _BLOCK_BREAK.sub("\n", cleaned)
    text = html_module.unescape(_TAG.sub("", cleaned))
    text = text.replace("\xa0", " ")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def text_to_html(text: str) -> str:
    """Escaped paragraphs (blank-line separated) with <br> for single line breaks."""
    if not text or not text.strip():
        return ""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    paragraphs = [block for block in re.split(r"\n\s*\n", normalised) if block.strip()]
    return "".join(
        "<p>" + "<br>".join(html_module.escape(line) for line in block.strip().split("\n")) + "</p>"
        for block in paragraphs
    )
