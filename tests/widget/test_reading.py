"""The widget's reading aids (DESIGN §10) as its sources write them: the highlight of a
permalinked comment moves only for readers who welcome motion, and the thread's order and the
preview go through the API the server offers."""

from __future__ import annotations

import re
from importlib import resources

from commentsvc.widget import readable_sources


def test_the_highlight_animates_only_without_reduced_motion() -> None:
    _, css = readable_sources()
    outside = re.sub(
        r"@media \(prefers-reduced-motion:no-preference\)\{[^{}]*\{[^{}]*\}\}", "", css
    )
    assert "animation" in css
    assert "animation:" not in outside


def test_the_widget_asks_for_its_order_and_previews() -> None:
    script, _ = readable_sources()
    assert '"/comments?sort=" + this.sort' in script
    markdown = resources.files("commentsvc.widget").joinpath("static", "markdown.js")
    assert '"/preview"' in markdown.read_text("utf-8")
    assert 'addEventListener("hashchange"' in script
