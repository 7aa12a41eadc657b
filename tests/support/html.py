"""An HTML tree just rich enough to assert on a page's structure, and readers of panel pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

from werkzeug.test import TestResponse

VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr"}
)


@dataclass
class Element:
    """One HTML element: its tag, attributes and children (elements and text)."""

    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def _strings(self) -> str:
        return "".join(c if isinstance(c, str) else c._strings() for c in self.children)

    @property
    def text(self) -> str:
        """The text content, whitespace collapsed."""
        return " ".join(self._strings().split())

    @property
    def classes(self) -> list[str]:
        """The class attribute as a list."""
        return self.attrs.get("class", "").split()

    def iter(self) -> Iterator[Element]:
        """Every descendant element, in document order."""
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(
        self, tag: str | None = None, cls: str | None = None, **attrs: str
    ) -> list[Element]:
        """Descendants by tag, class and attributes (``data_id`` means ``data-id``)."""
        wanted = {name.rstrip("_").replace("_", "-"): value for name, value in attrs.items()}
        return [
            element
            for element in self.iter()
            if (tag is None or element.tag == tag)
            and (cls is None or cls in element.classes)
            and all(element.attrs.get(name) == value for name, value in wanted.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element:
        """The first descendant ``find_all`` would return; there must be one."""
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag} class={cls!r} {attrs}> in the page"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID_ELEMENTS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def html(response: TestResponse) -> Element:
    """The response body as an element tree."""
    assert response.mimetype == "text/html", response.mimetype
    builder = _TreeBuilder()
    builder.feed(response.get_data(as_text=True))
    builder.close()
    return builder.root


def flashes(response: TestResponse) -> list[tuple[str, str]]:
    """(category, message) of every flash message on a page."""
    return [
        (
            next(c.removeprefix("flash-") for c in box.classes if c.startswith("flash-")),
            box.find("span", cls="flash-message").text,
        )
        for box in html(response).find_all("div", cls="flash")
    ]


def shown_ids(response: TestResponse) -> list[int]:
    """Ids of the comments a queue page shows, in order."""
    return [int(item.attrs["data-id"]) for item in html(response).find_all("article", "comment")]


def tab_counts(response: TestResponse) -> dict[str, int]:
    """The count each status tab of a queue page shows."""
    tabs = html(response).find("nav", cls="status-tabs")
    return {
        tab.attrs["data-status"]: int(tab.find("span", cls="count").text)
        for tab in tabs.find_all("a")
    }
