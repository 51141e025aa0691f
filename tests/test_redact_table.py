"""redact_url: every query value whose name suggests a secret is removed (issue 18 item 5).

One table: a parameter name, and whether it must go.  The published ``source.url`` reaches
every browser that reads a snapshot, so when in doubt a parameter is removed.
"""

from __future__ import annotations

import pytest

from feeds.redact import looks_secret, redact_url

SECRET = [
    # passwords, however spelt
    "pw", "PW", "pwd", "Pwd", "p", "P", "pass", "passwd", "password", "Password", "passphrase",
    "user_pw", "userPw", "db-pwd", "psw", "pswd", "pin", "mypw",
    # secrets and tokens
    "secret", "client_secret", "clientSecret", "token", "access_token", "id_token", "refresh-token",
    "oauth_token", "csrf", "nonce_secret",
    # keys
    "key", "apikey", "api_key", "api-key", "X-Api-Key", "appKey", "k", "subscription-key",
    # signatures
    "sig", "signature", "sig_v4", "X-Amz-Signature", "hmac", "signed",
    # authentication
    "auth", "authorization", "auth_token", "authkey", "X-Auth", "basic_auth",
    # sessions, credentials and the rest
    "session", "sessionid", "PHPSESSID", "sid", "jwt", "bearer", "credential", "creds", "otp",
    "code_verifier", "private_key", "cookie",
]

PUBLIC = [
    "b", "lat", "lon", "latitude", "longitude", "current", "daily", "timezone", "forecast_days",
    "altitude", "page", "lang", "format", "q", "type", "id", "v", "units", "hourly", "models",
]


@pytest.mark.parametrize("name", SECRET)
def test_secret_looking_parameter_is_removed(name: str) -> None:
    assert looks_secret(name)
    url = f"https://host.example/x?b=10&{name}=S3cr3tValue&lat=21.03"
    public = redact_url(url)
    assert "S3cr3tValue" not in public
    assert public == "https://host.example/x?b=10&lat=21.03"


@pytest.mark.parametrize("name", PUBLIC)
def test_ordinary_parameter_is_kept(name: str) -> None:
    assert not looks_secret(name)
    assert redact_url(f"https://host.example/x?{name}=1") == f"https://host.example/x?{name}=1"


@pytest.mark.parametrize(
    ("url", "public"),
    [
        # the value goes with its name, wherever it stands and however often
        ("https://h/x?p=a&pw=b&pwd=c&b=10", "https://h/x?b=10"),
        ("https://h/x?PW=a&b=10&P=b", "https://h/x?b=10"),
        # a parameter without a value, and one with an empty value
        ("https://h/x?pw&b=10", "https://h/x?b=10"),
        ("https://h/x?pw=&b=10", "https://h/x?b=10"),
        # userinfo and fragment, as before
        ("http://u:pw@h:8080/x?p=1#pw=2", "http://h:8080/x"),
    ],
)
def test_redact_table(url: str, public: str) -> None:
    assert redact_url(url) == public
