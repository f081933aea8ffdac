"""The authorization matrix as data: (resource, action, transport, role) -> expected outcome.

Expected outcomes are the product's rules (docs/api.md, DESIGN principle 5), not whatever the
code returns:

- a private resource is read by its owner and its members; a signed-in stranger gets 404 (its
  existence is not confirmed), an anonymous caller 401, a member who may only read 403 on a
  write;
- `admin` (RBAC `*`) is an operator, not a member: other users' private documents, workbooks,
  collections and links stay 404 to it; it moderates quizzes (reads, deletes, sees game
  results, but does not edit another user's quiz: 403) and handles reports (status changes);
- reports are public records: anyone reads one; only staff change its status;
- the collab API answers 403 for "no access" (docs/api.md, Collab) and its sockets close with
  4401 (no or bad token) or 4403 (no access); signaling refuses a topic with an error message;
- a page with a public link is readable by anyone: through the token, and while the link
  exists its collab document too (docs/architecture.md, Docs: "public link: viewer");
- a signed file URL is the credential: a tampered, expired, re-targeted or unsigned one is 403.

Outcomes are HTTP statuses or WebSocket close codes (int) or words: `listed`/`absent` (is the
resource in the caller's index?), `open`/`ready`/`subscribed` (a live channel opened), a
signaling refusal (`forbidden`, `read-only`), `ok` or a Socket.IO error code,
`delivered`/`silent` (a live notification reached the caller or not), `marked`/`unmarked`,
`shown`/`hidden` (a report's photo URLs in the caller's view).
A case with `xfail` text is a known gap: it must fail (strict) until the product is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

Outcome = int | str


@dataclass(frozen=True)
class Case:
    resource: str
    action: str
    transport: str
    role: str
    expected: Outcome
    xfail: str = ""

    @property
    def id(self) -> str:
        return f"{self.resource}:{self.action}:{self.role}"


def given(outcomes: dict[str, Outcome], **changes: Outcome) -> dict[str, Outcome]:
    """`outcomes` with some roles' results changed (e.g. owner=201) or left out (="")."""
    merged = {**outcomes, **changes}
    return {role: result for role, result in merged.items() if result != ""}


def private(outcomes: dict[str, Outcome], **changes: Outcome) -> dict[str, Outcome]:
    """For resources without sharing: no member role."""
    return given(outcomes, member="", **changes)


def rows(
    transport: str,
    resource: str,
    table: dict[str, dict[str, Outcome]],
    xfail: dict[tuple[str, str], str] | None = None,
) -> list[Case]:
    """One case per (action, role) of `table` (action -> role -> outcome)."""
    holes = xfail or {}
    return [
        Case(resource, action, transport, role, outcome, holes.get((action, role), ""))
        for action, outcomes in table.items()
        for role, outcome in outcomes.items()
    ]


READ: dict[str, Outcome] = {"owner": 200, "member": 200, "other": 404, "anon": 401, "admin": 404}
WRITE: dict[str, Outcome] = {**READ, "member": 403}
LISTED: dict[str, Outcome] = {
    "owner": "listed",
    "member": "listed",
    "other": "absent",
    "anon": 401,
    "admin": "absent",
}
VISITORS = ("other", "anon", "admin")  # roles with no part in a resource
PUBLIC: dict[str, Outcome] = {"owner": 200, **dict.fromkeys(VISITORS, 200)}
STAFF: dict[str, Outcome] = {"owner": 403, "other": 403, "anon": 401, "admin": 200}
COLLAB_SAVE: dict[str, Outcome] = {**WRITE, "other": 403, "admin": 403}  # editors only
COLLAB_STATE: dict[str, Outcome] = {**COLLAB_SAVE, "member": 200}  # viewers too
LIVE_COLLAB: dict[str, Outcome] = {
    "owner": "open",
    "member": "open",
    "other": 4403,
    "anon": 4401,
    "admin": 4403,
}
# y-webrtc signaling (docs/api.md, Collab): anyone may connect (4401 is for a bad token); a
# topic is refused by an error message: `forbidden` without access, `read-only` for a viewer
# (WebRTC peers apply each other's updates unchecked: collab/realtime.py, tests/collab).
SIGNALING: dict[str, Outcome] = {
    "owner": "subscribed",
    "member": "read-only",
    "other": "forbidden",
    "anon": "forbidden",
    "admin": "forbidden",
}
# What a Docs page, a workbook and a Sync collection share: an owner and a read-only member.
SHARED: dict[str, dict[str, Outcome]] = {
    "read": READ,
    "list": READ,
    "index": LISTED,
    "update": WRITE,
    "delete": given(WRITE, owner=204),
    "share": given(WRITE, owner=201),
}

HTTP: list[Case] = [
    *rows(
        "http",
        "doc_page",
        {
            **SHARED,
            "export": READ,
            "members": WRITE,  # the share list is for writers (tests/modules/doc)
            "save": COLLAB_SAVE,
            "state": COLLAB_STATE,
            # The image route is public (public-link visitors are anonymous): an anonymous
            # caller of a private page's image gets the stranger's 404, not a 401.
            "image": given(READ, owner=307, member=307, anon=404),
            "search": LISTED,
            "upload": given(WRITE, owner=201),
            "archive": WRITE,
            "move": WRITE,
            "favorite": READ,  # readers may star a page
            "trash": READ,
            "workspace_members": READ,
            "invite": given(WRITE, owner=201),
            "import": given(WRITE, owner=201),
        },
    ),
    # Anyone is a viewer of a public page's collab document: an anonymous save is therefore a
    # viewer's 403, not a 401 (docs/api.md, Collab: "401 anonymous without access").
    *rows(
        "http",
        "public_page",
        {
            "read": PUBLIC,
            "guess": {"anon": 404},
            "revoked": {"other": 404, "anon": 404},  # "the token stops working at once"
            "revoked_state": {"other": 403, "anon": 401},  # and so does the collab access
            "image": dict.fromkeys(PUBLIC, 307),  # "readers and public-link visitors"
            "state": PUBLIC,
            "save": {**COLLAB_SAVE, "anon": 403},
        },
    ),
    *rows(
        "http",
        "workbook",
        {
            **SHARED,
            "export": READ,
            "members": READ,  # viewers list the members (docs/api.md, Sheets)
            "write": WRITE,  # a range write
            "add_sheet": given(WRITE, owner=201),
            "range": READ,
            "sheet_export": READ,
            "save": COLLAB_SAVE,
            "state": COLLAB_STATE,
        },
    ),
    *rows(
        "http",
        "sync_collection",
        {
            **SHARED,
            "changes": READ,
            "members": READ,
            "clients": WRITE,  # client positions: the owner's (docs/api.md)
        },
    ),
    *rows(
        "http",
        "link",
        {
            "read": private(READ),
            "index": private(LISTED),
            "pull": private(LISTED),
            "update": private(READ),
            "delete": private(READ, owner=204),
            "retry": private(READ, owner=""),
            "export": private(LISTED),
            "push_delete": {"owner": "deleted", "other": "kept", "anon": 401, "admin": "kept"},
        },
    ),
    *rows(
        "http",
        "quiz",
        {
            "read": private(READ, anon=404, admin=200),
            "index": private(LISTED),
            "export": private(READ, anon=404, admin=200),
            "update": private(READ, admin=403),
            "delete": private(READ, owner=204, admin=204),
            "image": private(READ, owner=201, admin=403),  # an edit of the quiz
            "moderation": STAFF,  # the abuse-report queue: admins only
            # Another user's private quiz is 404 to every action (docs/api.md, Quiz).
            "like": private(READ, admin=200),
            "duplicate": private(READ, owner=201, admin=201),  # "own or public quizzes"
            "comments": private(READ, anon=404, admin=200),
            "abuse_report": private(READ, owner=201, admin=201),
            "upload_url": private(READ, owner=201, admin=403),
        },
        # Every other "sign in first" answer of the API is 401; this one says 400.
        xfail={("index", "anon"): "GET /quizzes?scope=mine without a token answers 400"},
    ),
    *rows(
        "http",
        "game",
        {
            "read": private(READ, admin=200),
            "results": private(READ, admin=200),
            "hosted": private(LISTED),  # "games I hosted"
        },
    ),
    *rows(
        "http",
        "report",
        {
            "read": PUBLIC,
            "index": private(LISTED),
            "update": STAFF,
            # Photos are public once analysed (blurred copy); before that the reporter's and
            # staff's. The unblurred original is staff only (docs/api.md, Reports).
            "photos": {"owner": "shown", "other": "hidden", "anon": "hidden", "admin": "shown"},
            "original": {"owner": "hidden", "other": "hidden", "anon": "hidden", "admin": "shown"},
            "comment": {"owner": 201, "other": 201, "anon": 401, "admin": 201},
            "internal_comment": {**STAFF, "admin": 201},
            "stats": STAFF,
            "audit": STAFF,
            "follow": {"owner": 200, "other": 200, "anon": 401, "admin": 200},
            # Citizens cannot assign. The admin is left out: it is no officer of a department,
            # and an unrouted report has no department to assign in (409: a workflow answer).
            "assign": given(STAFF, admin=""),
            "override": STAFF,  # correct the AI triage: department admin / admin
        },
    ),
    *rows(
        "http",
        "notification",
        {
            "list": private(LISTED),
            "update": {"owner": "marked", "other": "unmarked", "anon": 401, "admin": "unmarked"},
        },
    ),
    *rows("http", "collab", {"flush": STAFF}),  # run the flusher now: admins only
    *rows("http", "admin", {"dead_letters": STAFF, "settings": STAFF}),
]

WEBSOCKET: list[Case] = [
    *rows("ws", "doc_page", {"yjs": LIVE_COLLAB, "signaling": SIGNALING}),
    *rows("ws", "workbook", {"yjs": LIVE_COLLAB, "signaling": SIGNALING}),
    *rows(
        "ws",
        "public_page",
        {
            "yjs": dict.fromkeys(PUBLIC, "open"),
            "signaling": {"owner": "subscribed", **dict.fromkeys(VISITORS, "read-only")},
        },
    ),
    # A socket without a valid token closes with 4401 (core/realtime/auth.py) on every feed.
    *rows(
        "ws",
        "sync_collection",
        {"subscribe": given(READ, owner="subscribed", member="subscribed", anon=4401)},
    ),
    # The links and reports feeds carry the caller's own events only (a per-user channel).
    *rows("ws", "link", {"feed": {"owner": "ready", "other": "ready", "anon": 4401}}),
    *rows(
        "ws",
        "notification",
        {"feed": {"owner": "delivered", "other": "silent", "anon": 4401, "admin": "silent"}},
    ),
]

SSE: list[Case] = rows("sse", "sync_collection", {"events": READ})

NOT_HOST: dict[str, Outcome] = dict.fromkeys((*VISITORS, "player"), "not_host")
SOCKETIO: list[Case] = [
    # Hosting needs a quiz the caller may see: a private quiz is its owner's (and moderators').
    *rows(
        "socketio",
        "quiz",
        {
            "host_create": {
                "owner": "ok",
                "other": "rejected",
                "anon": "unauthorized",
                "admin": "ok",
            }
        },
    ),
    # Game A is the owner's: nobody else takes over or controls it, its player included.
    *rows("socketio", "game", {"host_join": {"owner": "ok", **NOT_HOST}}),
    *rows("socketio", "game", {"control": {"owner": "ok", **NOT_HOST}}),
    *rows("socketio", "game", {"kick": NOT_HOST, "mute": NOT_HOST}),
    # A player of game A cannot act in game B (the other user's game).
    *rows(
        "socketio",
        "other_game",
        {
            "answer": {"player": "wrong_game"},
            "chat": {"player": "wrong_game"},
            "host_join": {"player": "not_host"},
        },
    ),
]

# Signed file URLs: whoever holds the URL reads the file; nothing else does.
SIGNED_URL: list[Case] = rows(
    "signed_url",
    "stored_file",
    {
        "valid": {"anon": 200},
        "tampered": {"anon": 403},
        "expired": {"anon": 403},
        "other_key": {"anon": 403},
        "unsigned": {"anon": 403},
        "put_with_get_signature": {"anon": 403},
    },
)

ALL: list[Case] = [*HTTP, *WEBSOCKET, *SSE, *SOCKETIO, *SIGNED_URL]
