"""Who may look and who may act: the ``--token`` check on every request, and the CSRF token
that every action form carries.

The token is accepted from an ``Authorization: Bearer`` header, from the cookie set after a
``?token=`` login, or from that ``?token=`` itself (then the dashboard sets the cookie and
redirects to the same page without it, so the token leaves the address bar and history).
The CSRF token is an HMAC of a random secret made per process: a page of another site can
neither read it nor forge it, and a restart invalidates the old forms."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "tinyq_dashboard_token"

# The pages run only the dashboard's own script and style sheet: an argument that slipped
# through escaping still could not run a script. No framing (clickjacking of the actions).
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class TokenGate:
    """ASGI middleware: with a token, every HTTP request must carry it; adds the headers."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = self.check(request)
        if response is not None:
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def check(self, request: Request) -> Response | None:
        """None when the request may go on; else the response to send instead."""
        token = self.token
        if token is None:
            return None
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and same(header[7:].strip(), token):
            return None
        if same(request.cookies.get(COOKIE), token) and "token" not in request.query_params:
            return None
        if same(request.query_params.get("token"), token):
            query = urlencode([(k, v) for k, v in request.query_params.multi_items()
                               if k != "token"])
            target = request.url.path + (f"?{query}" if query else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https",
                                path=request.scope.get("root_path") or "/")
            return response
        return PlainTextResponse(
            "This dashboard needs its token: open it with ?token=TOKEN once, or send an "
            "Authorization: Bearer TOKEN header.", status_code=401)


class Csrf:
    """The token every action form carries, tied to this process's secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    @property
    def token(self) -> str:
        return hmac.new(self._secret, b"tinyq dashboard actions", hashlib.sha256).hexdigest()

    def valid(self, given: object) -> bool:
        return isinstance(given, str) and same(given, self.token)
