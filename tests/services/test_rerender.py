"""Rendering a site's stored comments again when its markup changes (DESIGN §10)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from commentsvc.extensions import db
from commentsvc.markup import Markup, render_markdown
from commentsvc.models import Comment, Moderator, Page
from commentsvc.services import rerender
from commentsvc.services.errors import NotFound
from commentsvc.services.moderation import update_comment
from commentsvc.services.rerender import rerender_comments
from commentsvc.services.sites import get_site, set_markup
from commentsvc.text import render_body

PAGE = "/2025/10/us-china-talks"
OTHER_PAGE = "/other"


def html_of(comment_id: int) -> str:
    comment = db.session.get(Comment, comment_id)
    assert comment is not None
    db.session.refresh(comment)
    return comment.body_html


def versions() -> dict[tuple[int, str], int]:
    db.session.expire_all()
    return {(page.site_id, page.key): page.version for page in db.session.scalars(sa.select(Page))}


def test_a_new_markup_renders_the_sites_comments_again_once(
    context: None, make_comment: Callable[..., int]
) -> None:
    marked = make_comment(body="*hello* https://a.example/")
    plain = make_comment(body="plain words", page=OTHER_PAGE)  # the same HTML in both
    elsewhere = make_comment(body="*blog*", site="blog")
    before = versions()
    news = get_site("news")
    assert news is not None and news.markup == Markup.TEXT

    assert set_markup("news", Markup.MARKDOWN)
    assert get_site("news").markup == Markup.MARKDOWN  # type: ignore[union-attr]
    assert rerender_comments("news") == 1
    assert html_of(marked) == render_markdown("*hello* https://a.example/")
    assert html_of(marked).startswith("<p><em>hello</em> <a href=")
    assert html_of(plain) == render_body("plain words")
    assert html_of(elsewhere) == render_body("*blog*")  # another site's markup
    after = versions()
    blog_id = get_site("blog").id  # type: ignore[union-attr]
    assert after == {**before, (news.id, PAGE): before[(news.id, PAGE)] + 1}
    assert (blog_id, PAGE) in after

    # Again: nothing to do, nothing written, no page bumped.
    assert rerender_comments("news") == 0
    assert versions() == after

    # And back.
    assert not set_markup("news", Markup.MARKDOWN)  # unchanged
    assert set_markup("news", Markup.TEXT)
    assert rerender_comments("news") == 1
    assert html_of(marked) == render_body("*hello* https://a.example/")
    assert versions()[(news.id, PAGE)] == after[(news.id, PAGE)] + 1


def test_every_batch_is_rendered(
    context: None, make_comment: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rerender, "BATCH_SIZE", 2)
    ids = [make_comment(body=f"**{n}**", page=f"/p{n % 2}") for n in range(5)]
    set_markup("news", Markup.MARKDOWN)
    assert rerender_comments("news") == 5
    assert [html_of(i) for i in ids] == [f"<p><strong>{n}</strong></p>" for n in range(5)]
    assert rerender_comments("news") == 0


def test_an_unknown_site_is_not_found(context: None) -> None:
    with pytest.raises(NotFound):
        rerender_comments("nowhere")
    with pytest.raises(NotFound):
        set_markup("nowhere", Markup.MARKDOWN)


def test_an_edit_made_meanwhile_is_kept(
    context: None,
    make_comment: Callable[..., int],
    moderator: Moderator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A moderator edits a comment after the re-render read it, before it stores it: the
    edit's text and HTML stay, not HTML rendered from the text it replaced."""
    comment_id = make_comment(body="*first*")
    set_markup("news", Markup.MARKDOWN)
    real_render = rerender.render

    def render_while_edited(body: str, markup: Markup) -> str:
        if body == "*first*":
            update_comment(moderator, comment_id, None, "**edited**")
        return real_render(body, markup)

    monkeypatch.setattr(rerender, "render", render_while_edited)
    assert rerender_comments("news") == 0
    comment = db.session.get(Comment, comment_id)
    assert comment is not None
    db.session.refresh(comment)
    assert (comment.body, comment.body_html) == ("**edited**", "<p><strong>edited</strong></p>")


def test_a_markup_changed_meanwhile_wins(
    context: None, make_comment: Callable[..., int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The markup changes back while a batch is rendered: the batch is rendered again, in
    the markup the site has now, and nothing is stored in the one it no longer has."""
    comment_id = make_comment(body="*first*")
    set_markup("news", Markup.MARKDOWN)
    real_render = rerender.render
    seen: list[Markup] = []

    def render_while_changed(body: str, markup: Markup) -> str:
        seen.append(markup)
        if len(seen) == 1:
            set_markup("news", Markup.TEXT)
        return real_render(body, markup)

    monkeypatch.setattr(rerender, "render", render_while_changed)
    before = versions()
    assert rerender_comments("news") == 0
    assert seen == [Markup.MARKDOWN, Markup.TEXT]
    assert html_of(comment_id) == render_body("*first*")
    assert versions() == before


def test_readers_get_the_new_html_at_once(app: Flask, make_comment: Callable[..., int]) -> None:
    client = app.test_client()
    make_comment(body="*hello*")
    url = f"/api/v1/sites/news/comments?page={PAGE}"
    first = client.get(url)
    assert first.get_json()["comments"][0]["body_html"] == "<p>*hello*</p>"
    etag = first.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    with app.app_context():
        set_markup("news", Markup.MARKDOWN)
        assert rerender_comments("news") == 1
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert again.get_json()["comments"][0]["body_html"] == "<p><em>hello</em></p>"
