"""Password and token hashing, IP anonymizing, origin and URL checks."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna
from werkzeug.security import check_password_hash, generate_password_hash

TOKEN_PREFIX = "csv_"


def hash_password(password: str) -> str:
    """Hash a password with scrypt (a memory-hard KDF)."""
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against its hash; False when there is no hash."""
    if not password_hash:
        return False
    return check_password_hash(password_hash, password)


def new_token() -> str:
    """A new API token: 256 random bits, prefixed so it is recognizable in leaks."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 of a token; tokens are long random strings, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(address: str | None) -> IPAddress | None:
    """A client's address, an IPv4-mapped IPv6 address as the IPv4 one; None if it is none."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def anonymize_ip(address: str | None) -> str | None:
    """Zero the host part of an IP address: /24 for IPv4, /48 for IPv6."""
    ip = parse_ip(address)
    if ip is None:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


class UrlError(ValueError):
    """A URL we do not accept; the message says why, in words for the person who sent it."""


#: What no URL we accept contains: a backslash (a slash to browsers, an ordinary character
#: to ``urlsplit``, which then finds another host), whitespace and control characters
#: (browsers drop tab and line breaks, ``urlsplit`` drops them too, so the two might read
#: different URLs out of the same text), and lone surrogates (not text).
_NOT_IN_URL = re.compile(r"[\\\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: What browsers refuse in a host name (besides the above, and what ends the host).
_NOT_IN_HOST = re.compile(r"[<>\[\]^|%]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class WebUrl:
    """An absolute http(s) URL, parsed as a browser parses it (:func:`parse_web_url`).

    ``str()`` writes it out again from these parts, so that what is stored, redirected to
    or linked is the URL that was checked, never the text it was read from.
    """

    scheme: str
    #: ``user[:password]``, or None when there is no ``@``.
    userinfo: str | None
    #: Lower case (ASCII letters; an internationalized host stays in Unicode), an IPv6
    #: address in brackets.
    host: str
    #: None for the scheme's default port.
    port: int | None
    path: str
    query: str | None
    fragment: str | None

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``, as sites' origins are written."""
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"

    def __str__(self) -> str:
        return self._serialize(self.host)

    def ascii(self) -> str:
        """The URL with an internationalized host in its ASCII form (``xn--…``), which
        shows a look-alike host for what it is."""
        return self._serialize(ascii_host(self.host))

    def _serialize(self, host: str) -> str:
        userinfo = "" if self.userinfo is None else f"{self.userinfo}@"
        port = "" if self.port is None else f":{self.port}"
        query = "" if self.query is None else f"?{self.query}"
        fragment = "" if self.fragment is None else f"#{self.fragment}"
        return f"{self.scheme}://{userinfo}{host}{port}{self.path}{query}{fragment}"


def parse_web_url(value: str) -> WebUrl:
    """``value`` as an absolute http(s) URL with a host; UrlError when it is not one, or
    when it holds what browsers and ``urlsplit`` could read differently (a backslash,
    whitespace, a control character)."""
    if _NOT_IN_URL.search(value):
        raise UrlError("Must not contain spaces, backslashes or control characters.")
    try:
        parts = urlsplit(value)
    except ValueError:  # an unbalanced [ or ] in the host
        raise UrlError("Must be a valid http or https URL.") from None
    if parts.scheme not in _DEFAULT_PORTS:  # urlsplit gives the scheme in lower case
        raise UrlError("Must start with http:// or https://.")
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    # The host and port as urlsplit's ``hostname`` and ``port`` find them.
    if hostinfo.startswith("["):  # an IPv6 address (urlsplit checked it)
        host, _, after = hostinfo.partition("]")
        host += "]"
        separator, _, port_text = after.partition(":")
        valid_host = host != "[]" and not separator
    else:
        host, _, port_text = hostinfo.partition(":")
        valid_host = bool(host) and not _NOT_IN_HOST.search(host)
    if not valid_host or (port_text and not (port_text.isascii() and port_text.isdigit())):
        raise UrlError("Must be a valid http or https URL.")
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        raise UrlError("Must be a valid http or https URL.")
    before_fragment, hash_sign, _ = value.partition("#")
    return WebUrl(
        scheme=parts.scheme,
        userinfo=userinfo if at else None,
        host=host.translate(_ASCII_LOWER),
        port=None if port == _DEFAULT_PORTS[parts.scheme] else port,
        path=parts.path,
        query=parts.query if "?" in before_fragment else None,
        fragment=parts.fragment if hash_sign else None,
    )


def web_url(value: str | None) -> WebUrl | None:
    """``value`` parsed by :func:`parse_web_url`, or None when it is not a URL we accept."""
    if not value:
        return None
    try:
        return parse_web_url(value)
    except UrlError:
        return None


def ascii_host(host: str) -> str:
    """A host name with each internationalized label in its ASCII form (``xn--…``)."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:  # not a valid IDNA name: still show its labels in ASCII
        return ".".join(
            label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
            for label in host.split(".")
        )


def origin_of_url(url: str) -> str | None:
    """The origin (``scheme://host[:port]``, lower case, no default port) of an http(s) URL
    (surrounding whitespace ignored), or None when :func:`parse_web_url` refuses it."""
    parsed = web_url(url.strip())
    return parsed.origin if parsed is not None else None


def normalize_origin(value: str) -> str | None:
    """A site origin as configured (no path, query or credentials), normalized; else None."""
    parsed = web_url(value.strip())
    if (
        parsed is None
        or parsed.path not in {"", "/"}
        or parsed.query is not None
        or parsed.fragment is not None
        or parsed.userinfo is not None
    ):
        return None
    return parsed.origin
