"""The console's admin credential: a Bearer token, or a login that sets a signed session cookie.

The token is `FRAMEPRESS_ADMIN_TOKEN`; without it every request that needs the credential is
refused. A session cookie holds a random session id and an expiry, signed with a key derived
from the token (a new token ends every session). A form posted with a session cookie must carry
the session's CSRF token (a hidden field, or the `X-CSRF-Token` header): a page of another site
can make the browser send the cookie, never read the token. A Bearer request is not a browser's
ambient credential and needs no CSRF token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Optional

COOKIE = "framepress_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_S = 12 * 3600


@dataclass(frozen=True)
class Identity:
    via: str                        # "bearer" | "cookie"
    session: Optional[str] = None   # the cookie's session id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Auth:
    def __init__(self, admin_token: Optional[str], *, open_reads: bool = False,
                 session_s: float = SESSION_S) -> None:
        self.token = admin_token or None
        self.open_reads = open_reads
        self.session_s = session_s
        self.key = (hmac.new(self.token.encode(), b"framepress console session", hashlib.sha256)
                    .digest() if self.token else b"")

    @property
    def configured(self) -> bool:
        return self.token is not None

    def check_token(self, supplied: str) -> bool:
        return self.configured and hmac.compare_digest(supplied.encode(), self.token.encode())

    def identify(self, authorization: Optional[str], cookie: Optional[str]) -> Optional[Identity]:
        if not self.configured:
            return None
        if authorization and authorization.lower().startswith("bearer "):
            return Identity("bearer") if self.check_token(authorization[7:].strip()) else None
        session = self.session_of(cookie) if cookie else None
        return Identity("cookie", session) if session else None

    # ---- the session cookie ---------------------------------------------------------------------

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self.key, payload, hashlib.sha256).digest())

    def new_session(self) -> str:
        """A cookie value: base64(JSON {sid, exp}).signature."""
        payload = json.dumps({"sid": secrets.token_urlsafe(16),
                              "exp": int(time.time() + self.session_s)}).encode()
        return f"{_b64(payload)}.{self._sign(payload)}"

    def session_of(self, cookie: str) -> Optional[str]:
        """The session id of a valid, unexpired cookie; None otherwise."""
        try:
            body, sig = cookie.split(".", 1)
            payload = _unb64(body)
        except ValueError:
            return None
        if not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("exp", 0) < time.time():
            return None
        return str(data.get("sid") or "") or None

    # ---- CSRF -----------------------------------------------------------------------------------

    def csrf_token(self, identity: Optional[Identity]) -> str:
        if identity is None or identity.session is None:
            return ""
        return self._sign(b"csrf:" + identity.session.encode())

    def csrf_ok(self, identity: Identity, supplied: Optional[str]) -> bool:
        if identity.via == "bearer":
            return True
        return bool(supplied) and hmac.compare_digest(supplied, self.csrf_token(identity))


__all__ = ["Auth", "Identity", "COOKIE", "CSRF_FIELD", "CSRF_HEADER"]
