"""Mail transport: SMTP URLs, header safety, and sending to a real SMTP server."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from commentsvc.config import load_config
from commentsvc.mail import (
    Mailer,
    PermanentMailError,
    SmtpServer,
    TemporaryMailError,
    header_text,
    parse_mail_from,
    parse_smtp_url,
)
from commentsvc.settings import ConfigError
from tests.support.server import free_port
from tests.support.smtp import SmtpServer as RealSmtpServer


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("smtp://mail.example.com", SmtpServer("mail.example.com", 25, "plain")),
        ("smtp://mail.example.com:2525", SmtpServer("mail.example.com", 2525, "plain")),
        (
            "smtp+starttls://me%40example.com:p%3Ass%2Fw@mail.example.com",
            SmtpServer("mail.example.com", 587, "starttls", "me@example.com", "p:ss/w"),
        ),
        ("smtps://u:p@mail.example.com", SmtpServer("mail.example.com", 465, "tls", "u", "p")),
    ],
)
def test_smtp_urls(url: str, server: SmtpServer) -> None:
    assert parse_smtp_url(url) == server


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp://", "mail.example.com", "smtp://h:port"]
)
def test_bad_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"SMTP URL|port"):
        parse_smtp_url(url)


def test_an_error_never_shows_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        parse_smtp_url("smtpx://user:secret-pw@mail.example.com")
    assert "secret-pw" not in str(caught.value)
    assert "user:***@mail.example.com" in str(caught.value)


def test_mail_needs_the_public_url(tmp_path: object) -> None:
    environ = {
        "COMMENTSVC_ENV_FILE": "/dev/null",
        "COMMENTSVC_ENV": "development",
        "COMMENTSVC_SMTP_URL": "smtp://127.0.0.1:2525",
    }
    with pytest.raises(ConfigError, match="COMMENTSVC_PUBLIC_URL is not"):
        load_config(str(tmp_path), environ)
    config = load_config(
        str(tmp_path), {**environ, "COMMENTSVC_PUBLIC_URL": "https://comments.example.com/"}
    )
    assert config["PUBLIC_URL"] == "https://comments.example.com"
    assert config["MAIL_FROM"] == "commentsvc@comments.example.com"


@pytest.mark.parametrize("value", ["a@b.example\r\nBcc: x@evil.example", "two <a@b> , c@d"])
def test_mail_from_must_be_one_address_on_one_line(value: str) -> None:
    with pytest.raises(ValueError):
        parse_mail_from(value)


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("Ada\r\nBcc: evil@example.com", "Ada Bcc: evil@example.com"),
        ("a\nb\rc\x00d\x1be\u2028f\u0085g", "a b c d e f g"),
        ("  lots   of\tspace ", "lots of space"),
        ("x" * 300, "x" * 199 + "…"),
    ],
)
def test_header_text_is_one_line(value: str, safe: str) -> None:
    assert header_text(value) == safe


def message(to: str = "mod@example.com") -> EmailMessage:
    built = EmailMessage()
    built["From"] = "comments@example.test"
    built["To"] = to
    built["Subject"] = "Hello"
    built.set_content("Body")
    return built


def test_a_mailer_sends_over_one_connection(smtp_server: RealSmtpServer) -> None:
    mailer = Mailer(parse_smtp_url(smtp_server.url))
    for number in range(3):
        mailer.send(message(f"mod{number}@example.com"))
    received = smtp_server.wait_for(3)
    assert [mail.recipients for mail in received] == [
        ["mod0@example.com"],
        ["mod1@example.com"],
        ["mod2@example.com"],
    ]
    mailer.close()


def test_refusals_are_permanent_or_temporary(smtp_server: RealSmtpServer) -> None:
    mailer = Mailer(parse_smtp_url(smtp_server.url))
    smtp_server.refuse_next("451 4.3.0 try again later", "550 5.1.1 no such user")
    with pytest.raises(TemporaryMailError) as temporary:
        mailer.send(message())
    assert temporary.value.code == 451
    with pytest.raises(PermanentMailError, match=r"550 5\.1\.1 no such user"):
        mailer.send(message())
    mailer.send(message())  # the connection is still good
    assert len(smtp_server.wait_for(1)) == 1
    mailer.close()


def test_an_unreachable_server_is_a_temporary_failure() -> None:
    mailer = Mailer(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"))
    with pytest.raises(TemporaryMailError, match="cannot send"):
        mailer.send(message())


def test_a_server_that_went_away_is_reconnected(smtp_server: RealSmtpServer) -> None:
    mailer = Mailer(parse_smtp_url(smtp_server.url))
    mailer.send(message())
    # The server closes idle connections; the mailer's next send opens a new one.
    mailer._local.smtp.close()
    mailer.send(message())
    assert len(smtp_server.wait_for(2)) == 2
    mailer.close()
