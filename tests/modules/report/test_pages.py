"""The citizen PWA and staff pages render, and the PWA pieces are served."""

from __future__ import annotations

from .conftest import World


async def test_pages(world: World) -> None:
    c = world.client
    r = await c.get("/reports")
    assert r.status_code == 200
    assert "Reports near you" in r.text
    assert "Log in" in r.text
    assert '<link rel="manifest" href="/reports/manifest.webmanifest">' in r.text
    c.cookies.set("th_access", world.users["alice"]["access_token"])
    r = await c.get("/reports")
    assert 'id="wizard"' in r.text
    assert "Staff console" not in r.text
    assert (await c.get("/reports/staff")).status_code == 403
    c.cookies.set("th_access", world.users["roads_officer"]["access_token"])
    r = await c.get("/reports")
    assert "Staff console" in r.text
    r = await c.get("/reports/staff")
    assert r.status_code == 200
    assert "Department inbox" in r.text
    assert "Triage queue" not in r.text  # only unscoped staff triage
    c.cookies.set("th_access", world.users["admin"]["access_token"])
    assert "Triage queue" in (await c.get("/reports/staff")).text
    r = await c.get("/reports/view/00000000-0000-0000-0000-000000000001")
    assert r.status_code == 200
    c.cookies.clear()
    assert (await c.get("/reports/staff")).status_code == 303
    manifest = (await c.get("/reports/manifest.webmanifest")).json()
    assert manifest["start_url"] == "/reports"
    assert manifest["display"] == "standalone"
    sw = await c.get("/reports/sw.js")
    assert sw.headers["service-worker-allowed"] == "/reports"
    assert "caches.open" in sw.text
    for path in (
        "vendor/leaflet/leaflet.js",
        "vendor/leaflet/leaflet.css",
        "citizen.js",
        "staff.js",
    ):
        assert (await c.get(f"/reports/static/{path}")).status_code == 200, path
