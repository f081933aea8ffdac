"""Demo data: departments, categories, routing rules, an officer and a couple of reports."""

from __future__ import annotations

import io

from fastapi import UploadFile
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers

from townhall.core.auth.models import User
from townhall.core.auth.rbac import grant_role, load_grants
from townhall.core.auth.repository import UserRepository
from townhall.core.auth.service import AuthService
from townhall.core.deps import Principal
from townhall.core.platform import Platform
from townhall.modules.report.classify import KEYWORDS
from townhall.modules.report.models import Category, Department, RoutingRule
from townhall.modules.report.repository import ReportRepository
from townhall.modules.report.schemas import ReportDraft
from townhall.modules.report.service import ReportService

DEPARTMENTS = (
    ("roads", "Roads and Transport · 도로교통과"),
    ("lighting", "Street Lighting · 가로등관리"),
    ("sanitation", "Sanitation · 청소행정과"),
    ("water", "Water and Sewer · 상하수도사업소"),
    ("parks", "Parks and Trees · 공원녹지과"),
)
CATEGORIES = (
    ("pothole", "Pothole / road damage", "도로 파손 · 포트홀", "roads", "Roads"),
    ("traffic", "Traffic signal or sign", "신호등 · 표지판", "roads", "Roads"),
    ("parking", "Illegal parking", "불법주차", "roads", "Roads"),
    ("streetlight", "Streetlight out", "가로등 고장", "lighting", "Lighting"),
    ("trash", "Trash / illegal dumping", "쓰레기 무단투기", "sanitation", "Cleanliness"),
    ("graffiti", "Graffiti", "낙서", "sanitation", "Cleanliness"),
    ("water", "Water leak / sewer", "누수 · 하수", "water", "Water"),
    ("tree", "Fallen tree / branches", "쓰러진 나무", "parks", "Parks"),
)
OFFICER = "officer@example.com"


def demo_photo(colour: tuple[int, int, int]) -> UploadFile:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG")
    out.seek(0)
    return UploadFile(out, filename="photo.jpg", headers=Headers({"content-type": "image/jpeg"}))


async def load(platform: Platform, session: AsyncSession, users: dict[str, User]) -> None:
    """Idempotent: skips when the roads department exists."""
    repo = ReportRepository(session)
    if await repo.department_by_slug("roads") is not None:
        return
    departments = {}
    for slug, name in DEPARTMENTS:
        departments[slug] = Department(slug=slug, name=name)
    await repo.add(*departments.values())
    for n, (code, name, name_ko, dept, group) in enumerate(CATEGORIES):
        category = Category(
            code=code,
            name=name,
            name_ko=name_ko,
            group=group,
            keywords=list(KEYWORDS.get(code, ())),
        )
        await repo.add(category)
        await repo.add(
            RoutingRule(
                position=(n + 1) * 10, category_id=category.id, department_id=departments[dept].id
            )
        )
    existing = await UserRepository(session).get_by_email(OFFICER)
    officer = existing or await AuthService(platform.settings, platform.cache).create_user(
        session,
        email=OFFICER,
        display_name="Officer Park (Roads)",
        password=platform.settings.demo_password,
        email_verified=True,
    )
    await grant_role(session, officer.id, "officer", f"department:{departments['roads'].id}")
    alice = users.get("alice@example.com")
    await session.commit()
    if alice is None:
        return
    principal = Principal(
        user=alice, family_id=alice.id, grants=await load_grants(session, alice.id)
    )
    service = ReportService(session, platform, principal)
    await service.create(
        ReportDraft(
            title="Deep pothole on Paldal-ro / 팔달로 도로 포트홀",
            description="A deep pothole in the right lane near the bus stop; cars swerve "
            "around it. 도로 파손이 심해 위험합니다.",
            category="pothole",
            lat=35.8219,
            lng=127.1489,
            address="Paldal-ro, Wansan-gu, Jeonju",
        ),
        [demo_photo((90, 90, 90))],
    )
    await service.create(
        ReportDraft(
            title="Streetlight out by the park / 공원 앞 가로등 고장",
            description="The streetlight at the park entrance has been dark for a week. "
            "가로등이 꺼져 있어요.",
            lat=35.8467,
            lng=127.1292,
            address="Deokjin Park, Jeonju",
            anonymous=True,
        ),
        [demo_photo((20, 20, 40))],
    )
    from townhall.core.db import commit

    await commit(session)  # runs the after-commit hooks: report.analyze is enqueued
