"""What a snapshot may say about where its data came from: URLs without secrets.

``source.url`` reaches every browser that reads a snapshot.  A configured URL may carry
credentials (``http://user:password@host/...``, ``?apikey=...``), so the published URL is:

- the feed's (or fallback's) ``public_url`` when one is configured, else
- the configured URL without userinfo, without a fragment, and without every query
  parameter whose name looks like a credential (``CREDENTIAL_WORDS`` anywhere in the name,
  case-insensitive: ``apikey``, ``api_key``, ``token``, ``access_token``, ``secret``,
  ``password``, ``passwd``, ``pwd``, ``auth``, ``signature``, ``sig``, ``key``, ``session``,
  ``credential``, ``pw``, ``hmac``...) -- the parameter is removed, name and value; and every
  parameter one of whose words (split at ``_``, ``-``, ``.`` and camelCase) is one of
  ``SECRET_WORDS``, too short to be looked for inside a name (``p``, ``pin``, ``k``, ``sid``).

``portal-feeds status`` (for the admin) is not affected.  ``redact_url`` is applied at
publishing time, so data fetched before this rule, or recovered from an old snapshot, is
published redacted too.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["CREDENTIAL_WORDS", "SECRET_WORDS", "looks_secret", "redact_url"]

#: Looked for anywhere in a parameter's name, case-insensitively.
CREDENTIAL_WORDS = (
    "key", "token", "secret", "pass", "pwd", "pw", "psw", "auth", "sig", "session", "sessid",
    "credential", "cred", "private", "jwt", "bearer", "cookie", "otp", "code_verifier", "csrf",
    "hmac",
)
#: Whole words of a name only (``p=``, ``user_pin=``): inside a name they mean nothing.
SECRET_WORDS = frozenset({"p", "pin", "k", "sid"})
_SECRET = re.compile("|".join(re.escape(w) for w in CREDENTIAL_WORDS), re.IGNORECASE)
#: Word boundaries of a name: separators, and a lower-case letter followed by a capital.
_WORDS = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def looks_secret(name: str) -> bool:
    """Whether a query parameter's name suggests a credential."""
    if _SECRET.search(name):
        return True
    return any(w.lower() in SECRET_WORDS for w in _WORDS.split(name))


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
