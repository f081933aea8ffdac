"""Demo data: a team workspace of nested pages with real content (built as Yjs state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.modules.doc.schemas import MarkdownImport, PageUpdate
from townhall.modules.doc.service import DocService

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession

    from townhall.core.auth.models import User
    from townhall.core.platform import Platform

WORKSPACE = "Team handbook"

WELCOME = """# Welcome to Docs

Docs is a place for **notes, plans and wikis** that your team edits *together*, live.
Open this page in two windows and type: you will see each other's cursors.

## What you can do

- Write with Markdown shortcuts: `#` for a heading, `-` for a list, `[ ]` for a to-do
- Nest pages inside pages and move them with **Move to** in the ⋯ menu
- Share a page with a teammate, or publish a read-only link
- Export any page to Markdown or HTML

## Getting started

- [x] Open the demo workspace
- [ ] Create your first page with **+ New page**
- [ ] Invite a teammate from the **Share** dialog
- [ ] Star a page so it shows up under Favorites

> Tip: everything you type is saved automatically, even offline. Edits merge when you are back.
"""

MEETING = """# Weekly sync — 3 December

## Attendees

1. Alice Kim
2. Bob Lee

## Decisions

| Topic | Owner | Status |
| --- | --- | --- |
| Launch checklist | Alice | Done |
| Mobile layout | Bob | In progress |
| Search ranking | Alice | Next week |

## Action items

- [ ] Bob: finish the phone layout of the editor
- [x] Alice: write the launch announcement
- [ ] Everyone: review the [roadmap](https://example.com/roadmap)
"""

ROADMAP = """# Roadmap

## Now

- Real-time editing with presence
- Page sharing and public links

## Next

- Comments on blocks
- Page templates

---

```python
# How the server extracts text for search
text = plain_text(read_state(state))
```
"""

RECIPES = """# Team lunch recipes

## Kimchi fried rice

1. Fry chopped kimchi in butter
2. Add day-old rice and a spoon of gochujang
3. Top with a fried egg

~~Instant noodles~~ do not count as a recipe.
"""


async def load(platform: Platform, session: AsyncSession, users: dict[str, User]) -> None:
    """Alice's "Team handbook" (Bob edits it) with nested pages; skipped when it exists."""
    alice = users.get("alice@example.com")
    if alice is None:
        return
    service = DocService(session, platform, alice.id)
    if any(w.name == WORKSPACE for w in await service.workspaces()):
        return
    workspace = await service.create_workspace(WORKSPACE)
    bob = users.get("bob@example.com")
    if bob is not None:
        await service.add_member(workspace.id, bob.email, "editor")

    async def page(markdown: str, icon: str, parent: uuid.UUID | None = None) -> uuid.UUID:
        created = await service.import_markdown(
            workspace.id, MarkdownImport(markdown=markdown, parent_id=parent)
        )
        await service.update_page(created.id, PageUpdate(icon=icon))
        return created.id

    welcome = await page(WELCOME, "👋")
    await service.set_favorite(welcome, True)
    meetings = await page("# Meeting notes\n\nNotes of our weekly syncs.\n", "🗓️")
    await page(MEETING, "📝", meetings)
    await page(ROADMAP, "🚀")
    await page(RECIPES, "🍜", welcome)
