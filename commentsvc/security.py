"""Password and token hashing, IP anonymizing, origin and URL checks."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

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


def origin_of_url(url: str) -> str | None:
    """The origin (``scheme://host[:port]``, lower case, no default port) of an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = 80 if parts.scheme == "http" else 443
    if port is None or port == default_port:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def normalize_origin(value: str) -> str | None:
    """A site origin as configured (no path, query or credentials), normalized; else None."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.path not in {"", "/"} or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return origin_of_url(value)
