"""What a reader sees on a page, and what must never be in it.

`visible_text(html)` keeps the text a browser shows: not scripts, styles or the head, not what is
`hidden`, not the inside of a closed <details> (its <summary> shows), of a <select> only the chosen
option, and not link text that is a web address (a URL shown as a link is allowed to look like one).
`raw_data(text)` names what would make a page read as a developer console: snake_case identifiers,
JSON literals, numbers with 5 or more decimals, SQL, web addresses written out instead of linked.
"""

import re
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param"}
NOT_SHOWN = {"script", "style", "head", "title", "template", "noscript"}

RAW_DATA = {
    "snake_case identifier": re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b"),
    "JSON literal": re.compile(r'\[\s*\]|\{\s*\}|\[\s*["{\[]|\{\s*"\w+"\s*:'),
    # a number standing alone (not a DOI's or a version's digits)
    "number with 5 or more decimals": re.compile(r"(?<![\w./-])-?\d+\.\d{5,}(?![\w./-])"),
    "SQL": re.compile(
        r"(?i)\bselect\s+(?:distinct\s+)?[\w.*]+(?:\s*,\s*[\w.*()]+)*\s+from\s"
        r"|\bcreate\s+(?:table|view|virtual|index)\b|\bjson_each\(|\bgroup_concat\("),
    "web address written out": re.compile(r"\bhttps?://"),
}


class _Visible(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open = []  # [tag, hidden, attributes]
        self.text = []
        self.links = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag in VOID:
            return
        hidden = bool(
            tag in NOT_SHOWN
            or "hidden" in attributes
            or "display:none" in (attributes.get("style") or "").replace(" ", "")
            or (tag == "option" and "selected" not in attributes)
            or (self.open and self.open[-1][0] == "details" and "open" not in self.open[-1][2] and tag != "summary")
            or (self.open and self.open[-1][1])
        )
        self.open.append([tag, hidden, attributes])

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                del self.open[index:]
                return

    def handle_data(self, data):
        if self.open and (self.open[-1][1] or (self.open[-1][0] == "details" and "open" not in self.open[-1][2])):
            return
        if self.open and self.open[-1][0] == "a" and re.match(r"\s*https?://", data):
            return
        self.text.append(data)


def visible_text(html):
    """The page's visible text, whitespace collapsed, and every link's href."""
    parser = _Visible()
    parser.feed(html)
    return " ".join(" ".join(parser.text).split()), parser.links


def raw_data(text):
    """{what: [examples]} for each kind of raw data found in the text."""
    found = {}
    for name, pattern in RAW_DATA.items():
        hits = sorted({match.group(0) for match in pattern.finditer(text)})
        if hits:
            found[name] = hits[:5]
    return found
