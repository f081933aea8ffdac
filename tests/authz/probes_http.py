"""HTTP probes: (transport, resource, action) -> a request as one role -> an Outcome.

A probe's URL is a template over `World.ids`; `fresh(...)` makes a new resource first (for the
actions that change or destroy one), so no case depends on another having run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tests.authz.matrix import Outcome
from tests.authz.world import DOC, QUIZ, QUIZ_BODY, REPORT, SHEET, SYNC, World, email
from tests.modules.doc.conftest import png_bytes

Probe = Callable[[World, str], Awaitable[Outcome]]
Url = Callable[[World], Awaitable[str]]
Maker = Callable[[World], Awaitable[str]]

PROBES: dict[tuple[str, str, str], Probe] = {}
EMPTY_UPDATE = b"\x00\x00"  # Y.encodeStateAsUpdate(new Y.Doc())
INVITE = {"email": email("bystander"), "role": "viewer"}
PNG_TYPE = {"content_type": "image/png"}
IMAGE = {"files": {"file": ("a.png", png_bytes(), "image/png")}}


def at(template: str) -> Url:
    """A URL over the world's ids, e.g. "/pages/{page}"."""

    async def url(world: World) -> str:
        return template.format(**world.ids)

    return url


def fresh(make: Maker, template: str) -> Url:
    """A URL of a resource made for this case only: `{}` in `template` is its id."""

    async def url(world: World) -> str:
        return template.format(await make(world), **world.ids)

    return url


def status(method: str, url: Url, **request: Any) -> Probe:
    """The HTTP status of one request (redirects are not followed)."""

    async def run(world: World, role: str) -> Outcome:
        target = await url(world)
        response = await world.http.request(method, target, headers=world.h(role), **request)
        return response.status_code

    return run


def listed(url: Url, key: str) -> Probe:
    """`listed` if the world's `ids[key]` is in the caller's index, `absent` if not."""

    async def run(world: World, role: str) -> Outcome:
        response = await world.http.get(await url(world), headers=world.h(role))
        if response.status_code != 200:
            return response.status_code
        return "listed" if world.ids[key] in response.text else "absent"

    return run


def table(transport: str, resource: str, probes: dict[str, Probe]) -> None:
    for action, probe in probes.items():
        PROBES[(transport, resource, action)] = probe


def get(template: str) -> Probe:
    return status("GET", at(template))


async def notification_mark(world: World, role: str) -> Outcome:
    """A fresh notification of the owner's; `role` marks it read; is it read now?"""
    report = await world.report()
    change = {"status": "in_progress", "note": "on it"}
    await world.ok("POST", f"{REPORT}/{report}/status", json=change, headers=world.h("admin"))
    unread = f"{REPORT}/notifications?unread=true"
    mine = [n["id"] for n in await world.ok("GET", unread) if n["report_id"] == report]
    assert mine, "the status change did not notify the reporter"
    response = await world.http.post(
        f"{REPORT}/notifications/read", params={"id": mine[0]}, headers=world.h(role)
    )
    if response.status_code != 200:
        return response.status_code
    still = [n["id"] for n in await world.ok("GET", unread)]
    return "unmarked" if mine[0] in still else "marked"


def gets(**urls: str) -> dict[str, Probe]:
    """Plain GETs, by action: gets(read="/pages/{page}")."""
    return {action: get(url) for action, url in urls.items()}


def collab(service: str, key: str) -> dict[str, Probe]:
    """A collab document's save (an empty Yjs update) and state, through the collab API."""
    return {
        "save": status("POST", at(f"/api/v1/{service}/save?id={{{key}}}"), content=EMPTY_UPDATE),
        "state": get(f"/api/v1/collab/{service}/{{{key}}}/state"),
    }


def editable(
    make: Maker, one: str, rename: dict[str, str], shares: str, deletable: Maker | None = None
) -> dict[str, Probe]:
    """Rename, delete (a `deletable` one if given) and share fresh resources made by `make`."""
    return {
        "update": status("PATCH", fresh(make, one), json=rename),
        "delete": status("DELETE", fresh(deletable or make, one)),
        "share": status("POST", fresh(make, one + shares), json=INVITE),
    }


PAGE, FRESH_PAGE = DOC + "/pages/{page}", DOC + "/pages/{}"
SPACE = DOC + "/workspaces/{workspace}"
# Only a page in the trash can be deleted (409 otherwise): `delete` gets a trashed one.
PAGE_EDITS = editable(World.page, FRESH_PAGE, {"title": "New"}, "/shares", World.trashed_page)
PAGE_GETS = gets(read=PAGE, list=DOC + "/workspaces/{workspace}/pages", members=PAGE + "/shares")
table("http", "doc_page", PAGE_EDITS | PAGE_GETS | collab("doc", "page_collab"))
table("http", "doc_page", gets(export=PAGE + "/export?format=md", image=PAGE + "/images/{image}"))
table("http", "doc_page", {"index": listed(at(DOC + "/workspaces"), "workspace")})
table(
    "http",
    "doc_page",
    {
        "search": listed(at(DOC + "/search?q=Home"), "page"),
        "upload": status("POST", at(PAGE + "/images"), **IMAGE),
        "archive": status("POST", fresh(World.page, FRESH_PAGE + "/archive")),
        "move": status("POST", fresh(World.page, FRESH_PAGE + "/move"), json={"parent_id": None}),
        "favorite": status("PUT", at(PAGE + "/favorite")),
        "trash": get(SPACE + "/trash"),
        "workspace_members": get(SPACE + "/members"),
        # Not fresh: only the owner's attempt adds the bystander, once.
        "invite": status("POST", at(SPACE + "/members"), json=INVITE),
        "import": status("POST", at(SPACE + "/import"), json={"markdown": "# Notes"}),
    },
)

BOOK, WRITE_RANGE = SHEET + "/{workbook}", SHEET + "/{}/sheets/Sheet1/range"
BOOK_GETS = gets(read=BOOK, list=BOOK + "/sheets", export=BOOK + "/export")
table("http", "workbook", BOOK_GETS | gets(members=BOOK + "/members") | collab("sheet", "workbook"))
table("http", "workbook", editable(World.workbook, SHEET + "/{}", {"name": "New"}, "/members"))
RANGE = {"a1": "A1", "values": [["Rent", 1200]]}
table("http", "workbook", {"index": listed(at(SHEET), "workbook")})
table(
    "http",
    "workbook",
    {
        "write": status("PUT", fresh(World.workbook, WRITE_RANGE), json=RANGE),
        "add_sheet": status(
            "POST", fresh(World.workbook, SHEET + "/{}/sheets"), json={"name": "Q2"}
        ),
        "range": get(BOOK + "/sheets/Sheet1/range?a1=A1:B2"),
        "sheet_export": get(BOOK + "/sheets/Sheet1/export"),
    },
)


async def revoked(world: World, role: str) -> Outcome:
    _, token = await world.revoked_public_page()
    return (await world.http.get(f"{DOC}/public/{token}", headers=world.h(role))).status_code


async def revoked_state(world: World, role: str) -> Outcome:
    page, _ = await world.revoked_public_page()
    url = f"/api/v1/collab/doc/{page.replace('-', '')}/state"
    return (await world.http.get(url, headers=world.h(role))).status_code


PUBLIC_PAGE = DOC + "/pages/{public_page}"
table(
    "http",
    "public_page",
    {
        **collab("doc", "public_collab"),
        "read": get(DOC + "/public/{public_token}"),
        "guess": get(DOC + "/public/" + "x" * 32),
        "revoked": revoked,
        "revoked_state": revoked_state,
        "image": get(PUBLIC_PAGE + "/images/{public_image}"),
    },
)

BOARD = SYNC + "/{collection}"
SYNC_DOC = BOARD + "/documents/{}"
table(
    "http",
    "sync_collection",
    {
        **gets(read=BOARD, list=BOARD + "/documents", changes=BOARD + "/changes?since=0"),
        "index": listed(at(SYNC), "collection"),
        "update": status("PUT", fresh(World.sync_document, SYNC_DOC), json={"done": True}),
        "delete": status("DELETE", fresh(World.sync_document, SYNC_DOC)),
        # Not fresh: only the owner's attempt adds the bystander, once.
        "share": status("POST", at(BOARD + "/members"), json={**INVITE, "role": "read"}),
        "members": get(BOARD + "/members"),
        "clients": get(BOARD + "/clients"),
    },
)


async def push_delete(world: World, role: str) -> Outcome:
    """`role` pushes an offline delete of a fresh link of the owner's: is the link gone?"""
    link = await world.link()
    change = {"type": "delete", "link_id": link, "timestamp": datetime.now(UTC).isoformat()}
    response = await world.http.post(
        "/api/v1/sync/push", json={"changes": [change]}, headers=world.h(role)
    )
    if response.status_code != 200:
        return response.status_code
    gone = (await world.http.get(f"{LINKS}/{link}", headers=world.h("owner"))).status_code
    return "deleted" if gone == 404 else "kept"


LINKS = "/api/v1/links"
table(
    "http",
    "link",
    {
        "read": get(LINKS + "/{link}"),
        "index": listed(at(LINKS), "link"),
        "pull": listed(at("/api/v1/sync/pull"), "link"),
        "update": status("PATCH", fresh(World.link, LINKS + "/{}"), json={"note": "mine"}),
        "delete": status("DELETE", fresh(World.link, LINKS + "/{}")),
        "retry": status("POST", at(LINKS + "/{link}/retry")),
        "export": listed(at(LINKS + "/export?format=json"), "link_url"),  # no ids in it
        "push_delete": push_delete,
    },
)

table(
    "http",
    "quiz",
    {
        "read": get(QUIZ + "/{quiz}"),
        "index": listed(at(QUIZ + "?scope=mine"), "quiz"),
        "export": get(QUIZ + "/{quiz}/export.json"),
        "update": status("PUT", fresh(World.quiz, QUIZ + "/{}"), json=QUIZ_BODY),
        "delete": status("DELETE", fresh(World.quiz, QUIZ + "/{}")),
        "image": status("POST", at(QUIZ + "/{quiz}/images"), **IMAGE),
        "moderation": get(QUIZ + "/reports"),
        "like": status("PUT", at(QUIZ + "/{quiz}/like")),
        "duplicate": status("POST", at(QUIZ + "/{quiz}/duplicate")),
        "comments": get(QUIZ + "/{quiz}/comments"),
        "abuse_report": status("POST", at(QUIZ + "/{quiz}/reports"), json={"reason": "spam"}),
        "upload_url": status("POST", at(QUIZ + "/{quiz}/images/upload-url"), json=PNG_TYPE),
    },
)

table(
    "http",
    "game",
    {
        "read": get(QUIZ + "/games/{game}"),
        "results": get(QUIZ + "/games/{game}/results.csv"),
        "hosted": listed(at(QUIZ + "/games"), "game"),
    },
)

CHANGE = {"status": "in_progress", "note": "on it"}
TRIAGE = {"priority": 1, "note": "urgent"}
INTERNAL = {"body": "crew booked", "internal": True}


def report_shows(field: str) -> Probe:
    """`shown` if the world's report, as `role` reads it, has photos with a `field` URL."""

    async def run(world: World, role: str) -> Outcome:
        response = await world.http.get(f"{REPORT}/{world.ids['report']}", headers=world.h(role))
        if response.status_code != 200:
            return response.status_code
        photos = response.json()["photos"]
        return "shown" if photos and all(photo[field] for photo in photos) else "hidden"

    return run


table(
    "http",
    "report",
    {
        "read": get(REPORT + "/{report}"),
        "index": listed(at(REPORT + "?queue=mine"), "report"),
        "update": status("POST", fresh(World.report, REPORT + "/{}/status"), json=CHANGE),
        "photos": report_shows("url"),
        "original": report_shows("original_url"),
        "comment": status("POST", at(REPORT + "/{report}/comments"), json={"body": "+1"}),
        "internal_comment": status("POST", at(REPORT + "/{report}/comments"), json=INTERNAL),
        "stats": get(REPORT + "/stats"),
        "audit": get(REPORT + "/audit?report_id={report}"),
        "follow": status("PUT", at(REPORT + "/{report}/follow")),
        "assign": status("POST", fresh(World.report, REPORT + "/{}/assign"), json={}),
        "override": status("POST", fresh(World.report, REPORT + "/{}/override"), json=TRIAGE),
    },
)
table("http", "collab", {"flush": status("POST", at("/api/v1/collab/flush"))})
table(
    "http",
    "admin",
    {
        "dead_letters": get("/api/v1/admin/jobs/dead-letters"),
        "settings": get("/api/v1/admin/settings"),
    },
)

table(
    "http",
    "notification",
    {
        "list": listed(at(REPORT + "/notifications"), "notification"),
        "update": notification_mark,
    },
)
