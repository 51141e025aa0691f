"""What a snapshot may say about where its data came from: URLs without secrets.

``source.url`` reaches every browser that reads a snapshot.  A configured URL may carry
credentials (``http://user:password@host/...``, ``?apikey=...``), so the published URL is:

- the feed's (or fallback's) ``public_url`` when one is configured, else
- the configured URL without userinfo, without a fragment, and without every query
  parameter whose name looks like a credential (``CREDENTIAL_WORDS`` anywhere in the name,
  case-insensitive: ``apikey``, ``api_key``, ``token``, ``access_token``, ``secret``,
  ``password``, ``passwd``, ``pwd``, ``auth``, ``signature``, ``sig``, ``key``, ``session``,
  ``credential``...) -- the parameter is removed, name and value.

``portal-feeds status`` (for the admin) is not affected.  ``redact_url`` is applied at
publishing time, so data fetched before this rule, or recovered from an old snapshot, is
published redacted too.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["CREDENTIAL_WORDS", "looks_secret", "redact_url"]

CREDENTIAL_WORDS = (
    "key", "token", "secret", "pass", "pwd", "auth", "sig", "session", "credential", "cred",
    "private", "jwt", "bearer", "cookie", "otp", "code_verifier",
)
_SECRET = re.compile("|".join(re.escape(w) for w in CREDENTIAL_WORDS), re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """Whether a query parameter's name suggests a credential."""
    return bool(_SECRET.search(name))


def redact_url(url: str) -> str:
    """``url`` without userinfo, fragment and credential-looking query parameters."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{port}" if port is not None else "")
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not looks_secret(k)]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
