"""RBAC: roles and permissions as data, require_permission on HTTP and WebSocket routes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import jwt
import pytest
import socketio
from fastapi import APIRouter, Depends, FastAPI, WebSocket
from starlette.types import Message

from tests.fixtures.app import signup
from tests.fixtures.database import empty_tables
from tests.modules.quiz.helpers import NS, Client, live_server, signup_and_quiz
from townhall.core.auth import rbac
from townhall.core.auth.rbac import Grants, grant_role, load_grants, register_role
from townhall.core.auth.service import AuthService, ClientInfo
from townhall.core.auth.socket_auth import authorize_socketio
from townhall.core.config import Settings
from townhall.core.deps import AdminPrincipal, Principal, require_permission
from townhall.core.platform import Platform, build_platform

ROLE = "test_inspector"


def _guarded_router() -> APIRouter:
    router = APIRouter(prefix="/_rbac")

    @router.get("/inspect")
    async def inspect(
        principal: Annotated[Principal, Depends(require_permission("widget.inspect"))],
    ) -> dict[str, str]:
        return {"user": str(principal.id)}

    @router.get("/district/{n}")
    async def district(
        n: int, principal: Annotated[Principal, Depends(_district_guard)]
    ) -> dict[str, int]:
        return {"district": n}

    @router.get("/admin")
    async def admin_only(principal: AdminPrincipal) -> dict[str, bool]:
        return {"admin": principal.is_admin}

    @router.websocket("/ws")
    async def ws(
        websocket: WebSocket,
        principal: Annotated[Principal, Depends(require_permission("widget.inspect"))],
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user": str(principal.id)})
        await websocket.close()

    return router


async def _district_guard(
    n: int, principal: Annotated[Principal, Depends(require_permission("account.use"))]
) -> Principal:
    """A scoped check the way apps write them: the scope comes from the path."""
    await require_permission("widget.inspect", scope=f"district:{n}")(principal)
    return principal


@pytest.fixture(autouse=True)
def inspector_role() -> Iterator[None]:
    register_role(ROLE, "Inspects widgets in a district", ["widget.inspect"])
    yield
    rbac.BUILTIN_ROLES.pop(ROLE, None)


@pytest.fixture
def guarded(app: FastAPI) -> FastAPI:
    app.include_router(_guarded_router())
    return app


async def grant(platform: Platform, user_id: str, role: str, scope: str = "") -> None:
    async with platform.db.session() as session:
        await grant_role(session, uuid.UUID(user_id), role, scope)


async def user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    me: dict[str, Any] = (await client.get("/api/v1/auth/me", headers=headers)).json()
    return str(me["id"])


class TestHttpRoutes:
    async def test_plain_user_is_403_naming_the_permission(
        self, guarded: FastAPI, client: httpx.AsyncClient
    ) -> None:
        tokens = await signup(client, "plain@example.com")
        response = await client.get("/_rbac/inspect", headers=tokens["headers"])
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert "widget.inspect" in response.json()["detail"]
        admin = await client.get("/_rbac/admin", headers=tokens["headers"])
        assert admin.status_code == 403

    async def test_signed_out_is_401(self, guarded: FastAPI, client: httpx.AsyncClient) -> None:
        assert (await client.get("/_rbac/inspect")).status_code == 401

    async def test_admin_is_allowed_everything(
        self, guarded: FastAPI, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        tokens = await signup(client, "boss@example.com")
        await grant(platform, await user_id(client, tokens["headers"]), "admin")
        assert (await client.get("/_rbac/inspect", headers=tokens["headers"])).status_code == 200
        assert (await client.get("/_rbac/district/9", headers=tokens["headers"])).status_code == 200
        admin = await client.get("/_rbac/admin", headers=tokens["headers"])
        assert admin.json() == {"admin": True}
        me = await client.get("/api/v1/auth/me", headers=tokens["headers"])
        assert me.json()["roles"] == ["admin", "user"]

    async def test_role_granted_everywhere(
        self, guarded: FastAPI, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        tokens = await signup(client, "insp@example.com")
        uid = await user_id(client, tokens["headers"])
        assert (await client.get("/_rbac/inspect", headers=tokens["headers"])).status_code == 403
        await grant(platform, uid, ROLE)
        assert (await client.get("/_rbac/inspect", headers=tokens["headers"])).status_code == 200
        assert (await client.get("/_rbac/district/4", headers=tokens["headers"])).status_code == 200

    async def test_scoped_grant_only_opens_its_scope(
        self, guarded: FastAPI, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        tokens = await signup(client, "local@example.com")
        await grant(platform, await user_id(client, tokens["headers"]), ROLE, "district:1")
        own = await client.get("/_rbac/district/1", headers=tokens["headers"])
        assert own.status_code == 200
        other = await client.get("/_rbac/district/2", headers=tokens["headers"])
        assert other.status_code == 403
        # An unscoped check needs an unscoped grant.
        anywhere = await client.get("/_rbac/inspect", headers=tokens["headers"])
        assert anywhere.status_code == 403


async def websocket_call(app: FastAPI, path: str, query: str = "") -> list[Message]:
    """Drive one WebSocket handshake through the ASGI app in this event loop."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "websocket.accept":
            return
        if message["type"] == "websocket.close" or (
            message["type"] == "websocket.http.response.body" and not message.get("more_body")
        ):
            await inbox.put({"type": "websocket.disconnect", "code": 1000})

    await asyncio.wait_for(app(scope, inbox.get, send), 10)
    return sent


class TestWebSocketRoutes:
    async def test_same_dependency_guards_websocket_connect(
        self, guarded: FastAPI, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        allowed = await signup(client, "ws-ok@example.com")
        uid = await user_id(client, allowed["headers"])
        await grant(platform, uid, ROLE)
        sent = await websocket_call(guarded, "/_rbac/ws", f"token={allowed['access_token']}")
        assert [m["type"] for m in sent] == [
            "websocket.accept",
            "websocket.send",
            "websocket.close",
        ]
        assert uid in sent[1]["text"]

        denied = await signup(client, "ws-no@example.com")
        for query, status in (
            (f"token={denied['access_token']}", 403),
            ("", 401),
            ("token=x", 401),
        ):
            sent = await websocket_call(guarded, "/_rbac/ws", query)
            # Refused during the handshake with the problem+json answer; never accepted.
            assert sent[0]["type"] == "websocket.http.response.start", sent
            assert sent[0]["status"] == status
            assert all(m["type"] != "websocket.accept" for m in sent)


class TestGrants:
    def test_allows_by_permission_scope_and_wildcard(self) -> None:
        grants = Grants(
            frozenset({("user", ""), (ROLE, "district:1")}),
            {"account.use": frozenset({""}), "widget.inspect": frozenset({"district:1"})},
        )
        assert grants.allows("account.use")
        assert grants.allows("account.use", "anything")
        assert grants.allows("widget.inspect", "district:1")
        assert not grants.allows("widget.inspect", "district:2")
        assert not grants.allows("widget.inspect")
        assert not grants.allows("other.thing")
        assert grants.has_role(ROLE, "district:1")
        assert not grants.has_role(ROLE, "district:2")
        assert grants.scopes_of("widget.inspect") == {"district:1"}
        admin = Grants(frozenset({("admin", "")}), {"*": frozenset({""})})
        assert admin.allows("anything.at.all", "any:scope")

    async def test_roles_are_rows_written_idempotently(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        tokens = await signup(client, "rows@example.com")
        uid = uuid.UUID(await user_id(client, tokens["headers"]))
        async with platform.db.session() as session:
            await rbac.sync_roles(session)
            await rbac.sync_roles(session)
            await grant_role(session, uid, ROLE, "district:3")
            await grant_role(session, uid, ROLE, "district:3")
            grants = await load_grants(session, uid)
        assert grants.roles == {("user", ""), (ROLE, "district:3")}
        assert grants.permissions["widget.inspect"] == {"district:3"}
        async with platform.db.session() as session:
            with pytest.raises(ValueError, match="unknown role"):
                await grant_role(session, uid, "no_such_role")


async def account_without_roles(settings: Settings, email: str) -> str:
    """An access token of an account holding no role at all (so not even `account.use`)."""
    async with build_platform(settings) as platform, platform.db.session() as session:
        auth = AuthService(settings, platform.cache)
        user = await auth.create_user(
            session, email=email, display_name="Nobody", password=None, roles=()
        )
        return (await auth.start_session(session, user, ClientInfo())).access_token


def refusal(exc: pytest.ExceptionInfo[socketio.exceptions.ConnectionRefusedError]) -> Any:
    return exc.value.error_args


class TestSocketIoConnect:
    async def test_helper_checks_the_token_and_the_permission(
        self, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        tokens = await signup(client, "sock@example.com")
        uid = await user_id(client, tokens["headers"])
        principal = await authorize_socketio(platform, tokens["access_token"], "account.use")
        assert str(principal.id) == uid
        cases: list[tuple[str | None, str | None, dict[str, Any]]] = [
            (None, None, {"message": "authentication required", "data": {"status": 401}}),
            ("garbage", None, {"message": "invalid access token", "data": {"status": 401}}),
            (
                tokens["access_token"],
                "widget.inspect",
                {"message": "missing permission 'widget.inspect'", "data": {"status": 403}},
            ),
        ]
        for token, permission, expected in cases:
            with pytest.raises(socketio.exceptions.ConnectionRefusedError) as refused:
                await authorize_socketio(platform, token, permission)
            assert refusal(refused) == expected
        await grant(platform, uid, ROLE, "district:1")
        await authorize_socketio(platform, tokens["access_token"], "widget.inspect", "district:1")
        with pytest.raises(socketio.exceptions.ConnectionRefusedError) as elsewhere:
            await authorize_socketio(
                platform, tokens["access_token"], "widget.inspect", "district:2"
            )
        assert refusal(elsewhere)["data"] == {"status": 403}
        await client.post("/api/v1/auth/logout", headers=tokens["headers"])
        with pytest.raises(socketio.exceptions.ConnectionRefusedError) as revoked:
            await authorize_socketio(platform, tokens["access_token"])
        assert refusal(revoked)["message"] == "session revoked"


async def test_quiz_socket_refuses_a_bad_token_and_a_missing_permission(
    settings: Settings, database_url: str
) -> None:
    """A real python-socketio client against the quiz namespace on a live server."""
    try:
        async with live_server(settings) as base:
            host_token, _ = await signup_and_quiz(base, "sock-host@example.com")
            allowed = await Client().connect(base, host_token)
            await allowed.close()
            forged = jwt.encode(
                {"sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "typ": "access", "exp": 2**33},
                "not-the-secret-but-long-enough-for-hs256",
                "HS256",
            )
            roleless = await account_without_roles(settings, "sock-nobody@example.com")
            for token, expected in (
                (forged, {"message": "invalid access token", "data": {"status": 401}}),
                (
                    roleless,
                    {"message": "missing permission 'account.use'", "data": {"status": 403}},
                ),
            ):
                player = Client()
                errors: list[Any] = []
                player.sio.on("connect_error", errors.append, namespace=NS)
                with pytest.raises(socketio.exceptions.ConnectionError):
                    await player.connect(base, token)
                assert errors == [expected]
                await player.sio.disconnect()
    finally:
        await empty_tables(database_url)
