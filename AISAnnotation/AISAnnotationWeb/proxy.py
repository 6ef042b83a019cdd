"""The reverse proxy at ``/app``: every HTTP request and the websocket of a page go to its user's own app.

Identity comes from the server's session on every request (the ``ais_token`` cookie, HttpOnly,
SameSite=Strict, path ``/app``): no cookie or an expired/revoked token gives the login form (HTTP)
or a refused handshake (websocket); a websocket from another site's page (``Origin``) is refused;
an open websocket is closed once its session ends. Paths carry no user: ``/app/…`` always reaches
the caller's own process, which only answers the proxy's per-process secret.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any, Optional
from urllib.parse import urlsplit

from .launcher import SECRET_HEADER, UserApp, UserApps
from .sessions import LoginSockets

COOKIE = "ais_token"
START_TIMEOUT = 120.0
#: Seconds between checks that an open websocket's session is still valid (logout, expiry, disabled).
SESSION_CHECK = 20.0
#: Request headers not forwarded to the app (hop-by-hop, and the user's credentials: the app never sees them).
DROP_REQUEST = {"host", "connection", "keep-alive", "upgrade", "te", "trailer", "transfer-encoding", "cookie",
                "authorization", "accept-encoding", "content-length", "proxy-authorization", SECRET_HEADER.lower()}
DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "set-cookie"}

LOGIN_FORM = """<!doctype html><title>AIS annotation: log in</title><h3>AIS annotation</h3><!--msg-->
<form method="post" action="{action}"><input name="user" placeholder="user"> <input name="password"
type="password" placeholder="password"> <button>Log in</button></form>"""


def proxy_app(ctx: Any, apps: UserApps) -> Any:
    """Starlette app: ``/`` and ``/{path}`` (HTTP), ``/ws`` (websocket), ``/login``, ``/logout``."""
    import aiohttp
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    client: dict[str, aiohttp.ClientSession] = {}
    sockets = LoginSockets()  # the open websockets of each login: its logout closes them

    def session() -> aiohttp.ClientSession:
        if "s" not in client or client["s"].closed:
            client["s"] = aiohttp.ClientSession(auto_decompress=False,
                                                timeout=aiohttp.ClientTimeout(total=300, sock_connect=10))
        return client["s"]

    def login_form(request: HTTPConnection, msg: str = "", status: int = 401) -> HTMLResponse:
        action = request.scope.get("root_path", "") + "/login"
        body = LOGIN_FORM.format(action=html.escape(action)).replace("<!--msg-->", f"<p>{html.escape(msg)}</p>"
                                                                    if msg else "")
        return HTMLResponse(body, status)

    def token_of(conn: HTTPConnection) -> str:
        auth = conn.headers.get("authorization", "")
        return (conn.query_params.get("token") or (auth[7:].strip() if auth.lower().startswith("bearer ") else "")
                or conn.cookies.get(COOKIE, ""))

    async def identify(token: str) -> Any:
        return await run_in_threadpool(ctx.accounts.identify, token)  # AuthError when unknown/expired/revoked

    async def user_app(account: Any, token: str) -> Optional[UserApp]:
        app = apps.start(account.user, account.role, token)  # main thread: the child dies with the server
        loop = asyncio.get_running_loop()
        end = loop.time() + START_TIMEOUT
        while not apps.ready(app):
            if loop.time() > end:
                return None
            await asyncio.sleep(0.2)
        return app

    def with_cookie(resp: Response, request: Request, token: str) -> Response:
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=request.scope.get("root_path") or "/",
                        secure=request.url.scheme == "https")
        return resp

    async def forward(request: Request) -> Response:
        token = token_of(request)
        if not token:
            return login_form(request)
        try:
            account = await identify(token)
        except Exception as exc:  # AuthError: unknown, expired, revoked or disabled
            return login_form(request, str(exc), getattr(exc, "status", 401))
        root = request.scope.get("root_path", "")
        if "token" in request.query_params:  # keep the token out of the address bar, history and Referer
            return with_cookie(RedirectResponse(f"{root}/", status_code=303), request, token)
        app = await user_app(account, token)
        if app is None:
            return HTMLResponse(f"the browser app of {html.escape(account.user)} did not start", 503)
        path = request.url.path[len(root):] if request.url.path.startswith(root) else request.url.path
        url = f"http://127.0.0.1:{app.port}{path or '/'}" + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
        headers[SECRET_HEADER] = app.secret
        body = await request.body()
        try:
            async with session().request(request.method, url, headers=headers, data=body or None,
                                         allow_redirects=False) as r:
                content = await r.read()
                out = [(k, v) for k, v in r.headers.items() if k.lower() not in DROP_RESPONSE]
                status = r.status
        except aiohttp.ClientError as exc:
            return HTMLResponse(f"the browser app of {html.escape(account.user)} is unreachable ({exc})", 502)
        resp = Response(content, status)
        for k, v in out:
            if k.lower() == "location" and v.startswith("/"):
                v = root + v
            resp.headers.append(k, v)
        return resp

    async def websocket(ws: WebSocket) -> None:
        token = token_of(ws)
        origin = ws.headers.get("origin")
        if origin and urlsplit(origin).netloc != ws.headers.get("host"):
            await ws.close(code=1008)  # cross-site websocket: refused before the handshake completes
            return
        try:
            account = await identify(token) if token else None
        except Exception:  # AuthError
            account = None
        app = await user_app(account, token) if account is not None else None
        if app is None:
            await ws.close(code=1008)
            return
        try:
            back = await session().ws_connect(f"http://127.0.0.1:{app.port}/ws", headers={SECRET_HEADER: app.secret},
                                              max_msg_size=0, compress=0, autoping=True, heartbeat=None)
        except aiohttp.ClientError:
            await ws.close(code=1011)
            return
        await ws.accept()
        ended = sockets.opened(token)

        async def up() -> None:  # browser → app
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                if msg.get("bytes") is not None:
                    await back.send_bytes(msg["bytes"])
                elif msg.get("text") is not None:
                    await back.send_str(msg["text"])

        async def down() -> None:  # app → browser
            async for msg in back:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await ws.send_text(msg.data)
                else:
                    return

        async def watch() -> None:  # the session ends (logout, expiry, account disabled): so does the page
            while True:
                await asyncio.sleep(SESSION_CHECK)
                try:
                    await identify(token)
                except Exception:  # AuthError
                    return

        tasks = [asyncio.ensure_future(t()) for t in (up, down, watch)] + [asyncio.ensure_future(ended.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except WebSocketDisconnect:
            pass
        finally:
            sockets.closed(token, ended)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await back.close()
            try:
                await ws.close()
            except (RuntimeError, WebSocketDisconnect):  # already closed by the browser
                pass

    async def login(request: Request) -> Response:
        form = await request.form()
        try:
            token, _expires, _account = await run_in_threadpool(ctx.accounts.login, str(form.get("user", "")),
                                                                str(form.get("password", "")))
        except Exception as exc:  # AuthError: wrong password, disabled account
            return login_form(request, str(exc))
        return with_cookie(RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=303), request,
                           token)

    async def logout(request: Request) -> Response:
        """This login only: its token is revoked and its pages' websockets closed; the user's app process stops
        only when none of the user's other logins (other PCs, other browsers) is still valid."""
        token = request.cookies.get(COOKIE, "")
        if token:
            try:
                account = await identify(token)
            except Exception:  # AuthError: already logged out
                account = None
            await run_in_threadpool(ctx.accounts.revoke, token)
            sockets.end(token)
            if account is not None:
                await run_in_threadpool(apps.end_session, account.user, token, ctx.accounts.live)
        resp = login_form(request, "Logged out.", 200)
        resp.delete_cookie(COOKIE, path=request.scope.get("root_path") or "/")
        return resp

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/logout", logout, methods=["GET", "POST"]),
                            WebSocketRoute("/ws", websocket), Route("/{path:path}", forward, methods=methods)])
    app.state.user_apps = apps
    return app
