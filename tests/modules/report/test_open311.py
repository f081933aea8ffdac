"""Open311 GeoReport v2: discovery, services, requests in JSON and XML, and error arrays."""

from __future__ import annotations

import uuid
from datetime import timedelta
from xml.etree import ElementTree as ET

from townhall.core.db import utcnow
from townhall.core.platform import Platform
from townhall.modules.report.repository import ReportRepository

from .conftest import JEONJU, SEOUL, World

REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


async def test_discovery_and_services(world: World) -> None:
    c = world.client
    r = await c.get("/open311/v2/discovery.json")
    assert r.status_code == 200
    endpoint = r.json()["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2/")
    r = await c.get("/open311/v2/discovery.xml")
    assert ET.fromstring(r.content).find("endpoints/endpoint/specification") is not None
    r = await c.get("/open311/v2/services.json")
    services = r.json()
    assert {s["service_code"] for s in services} == {"pothole", "streetlight", "trash"}
    assert set(services[0]) == {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    assert services[0]["metadata"] is False
    assert services[0]["type"] == "realtime"
    r = await c.get("/open311/v2/services.xml")
    assert r.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "services"
    assert len(root.findall("service")) == 3
    assert root.find("service/metadata").text == "false"  # type: ignore[union-attr]
    r = await c.get("/open311/v2/services/pothole.json")
    assert r.json() == {"service_code": "pothole", "attributes": []}
    r = await c.get("/open311/v2/services/pothole.xml")
    assert ET.fromstring(r.content).findtext("service_code") == "pothole"
    r = await c.get("/open311/v2/services/nope.json")
    assert r.status_code == 404
    assert r.json() == [{"code": 404, "description": "unknown service_code nope"}]


async def test_post_and_get_requests(world: World) -> None:
    c = world.client
    token = world.users["alice"]["access_token"]
    form = {
        "api_key": token,
        "service_code": "streetlight",
        "lat": str(JEONJU[0]),
        "long": str(JEONJU[1]),
        "address_string": "Paldal-ro 1",
        "description": "가로등이 꺼졌어요 streetlight out, call 010-2222-3333",
    }
    r = await c.post("/open311/v2/requests.json", data=form)
    assert r.status_code == 201, r.text
    created = r.json()
    assert len(created) == 1
    assert set(created[0]) == {"service_request_id", "service_notice", "account_id"}
    rid = created[0]["service_request_id"]
    await world.wait_analyzed(rid)
    r = await c.get(f"/open311/v2/requests/{rid}.json")
    [row] = r.json()
    assert set(row) == REQUEST_FIELDS
    assert row["status"] == "open"
    assert row["service_code"] == "streetlight"
    assert row["agency_responsible"] == "Lighting"
    assert row["long"] == JEONJU[1]
    assert "010-2222-3333" not in row["description"]
    r = await c.get(f"/open311/v2/requests/{rid}.xml")
    root = ET.fromstring(r.content)
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id") == rid
    assert root.findtext("request/status") == "open"
    r = await c.get("/open311/v2/requests.json", params={"service_code": "streetlight"})
    assert [x["service_request_id"] for x in r.json()] == [rid]
    r = await c.get("/open311/v2/requests.json", params={"status": "closed"})
    assert r.json() == []
    r = await c.get("/open311/v2/requests.xml", params={"service_request_id": rid})
    assert len(ET.fromstring(r.content).findall("request")) == 1
    # XML POST answers XML.
    r = await c.post("/open311/v2/requests.xml", data={**form, "description": "another lamp"})
    assert r.status_code == 201
    second = ET.fromstring(r.content).findtext("request/service_request_id")
    assert second
    await world.wait_analyzed(second)


async def test_errors_are_open311_arrays(world: World) -> None:
    c = world.client
    token = world.users["alice"]["access_token"]
    base = {"api_key": token, "service_code": "pothole", "lat": "35.82", "long": "127.14"}
    cases = [
        ({k: v for k, v in base.items() if k != "service_code"}, 400, "service_code is required"),
        ({k: v for k, v in base.items() if k not in ("lat", "long")}, 400, "location is required"),
        ({**base, "lat": "north"}, 400, "lat must be a number"),
        ({**base, "lat": str(SEOUL[0]), "long": str(SEOUL[1])}, 400, "outside the service area"),
        ({**base, "service_code": "nope"}, 404, "unknown service_code"),
        ({**base, "api_key": "bad"}, 403, "api_key"),
    ]
    for form, code, words in cases:
        r = await c.post("/open311/v2/requests.json", data=form)
        assert r.status_code == code, (form, r.text)
        [error] = r.json()
        assert error["code"] == code
        assert words in error["description"]
    r = await c.post("/open311/v2/requests.xml", data=cases[0][0])
    root = ET.fromstring(r.content)
    assert root.tag == "errors"
    assert root.findtext("error/code") == "400"
    assert root.findtext("error/description") == "service_code is required"
    r = await c.get("/open311/v2/requests.json", params={"status": "maybe"})
    assert r.status_code == 400
    r = await c.get("/open311/v2/requests/not-an-id.json")
    assert r.json() == [{"code": 404, "description": "unknown service_request_id"}]
    assert (await c.get("/open311/v2/requests.json")).json() == []  # nothing was created


async def test_requests_default_window_and_pages(world: World) -> None:
    c = world.client
    ids = [(await world.file("alice", title=f"Pothole {n}"))["id"] for n in range(3)]
    for rid in ids:
        await world.wait_analyzed(rid)
    # The oldest was filed 100 days ago: outside the default 90-day window.
    async with world.platform.db.session() as session:
        report = await ReportRepository(session).get(uuid.UUID(ids[0]))
        assert report is not None
        report.created_at = utcnow() - timedelta(days=100)
    listed = [x["service_request_id"] for x in (await c.get("/open311/v2/requests.json")).json()]
    assert listed == [ids[2], ids[1]]
    since = (utcnow() - timedelta(days=120)).isoformat()
    r = await c.get("/open311/v2/requests.json", params={"start_date": since})
    assert len(r.json()) == 3
    r = await c.get("/open311/v2/requests.json", params={"service_request_id": ids[0]})
    assert [x["service_request_id"] for x in r.json()] == [ids[0]]  # ids ignore the window
    pages = [
        [
            x["service_request_id"]
            for x in (
                await c.get(
                    "/open311/v2/requests.json",
                    params={"start_date": since, "page_size": 2, "page": page},
                )
            ).json()
        ]
        for page in (1, 2, 3)
    ]
    assert pages == [[ids[2], ids[1]], [ids[0]], []]
    for params in ({"page": "0"}, {"page_size": "x"}, {"page_size": "1001"}):
        r = await c.get("/open311/v2/requests.json", params=params)
        assert r.status_code == 400, params
        [error] = r.json()
        assert error["code"] == 400


async def test_open311_filings_share_the_per_user_filing_limit(
    world: World, platform: Platform
) -> None:
    platform.settings.report_filings_per_hour = 2
    c = world.client
    token = world.users["alice"]["access_token"]
    form = {"api_key": token, "service_code": "pothole", "lat": "35.82", "long": "127.14"}
    await world.file("alice")  # the JSON API and Open311 draw on one quota
    assert (await c.post("/open311/v2/requests.json", data=form)).status_code == 201
    for fmt in ("json", "xml"):
        r = await c.post(f"/open311/v2/requests.{fmt}", data=form)
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"].startswith("text/xml")
    assert ET.fromstring(r.content).findtext("error/code") == "429"
    listed = (await c.get("/open311/v2/requests.json")).json()
    assert len(listed) == 2  # nothing was filed past the limit
