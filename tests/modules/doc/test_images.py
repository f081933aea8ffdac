"""Image uploads: sniffed types, a size limit, signed URLs for readers only."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from tests.modules.doc.conftest import MAX_IMAGE_BYTES, Team, png_bytes

API = "/api/v1/doc"


async def upload(
    client: httpx.AsyncClient, team: Team, data: bytes, content_type: str, who: str = "editor"
) -> httpx.Response:
    return await client.post(
        f"{API}/pages/{team.page_id}/images",
        files={"file": ("picture", data, content_type)},
        headers=team.headers(who),
    )


async def test_upload_then_read_through_a_signed_url(
    client: httpx.AsyncClient, app: FastAPI, team: Team
) -> None:
    data = png_bytes()
    response = await upload(client, team, data, "image/png")
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["content_type"] == "image/png"
    assert image["size"] == len(data)
    redirect = await client.get(image["src"], headers=team.headers("viewer"))
    assert redirect.status_code == 307
    signed = httpx.URL(redirect.headers["location"])
    fetched = await client.get(signed.raw_path.decode())
    assert fetched.status_code == 200
    assert fetched.content == data
    # Non-members get nothing, not even a redirect.
    assert (await client.get(image["src"], headers=team.headers("outsider"))).status_code == 404
    assert (await client.get(image["src"])).status_code == 404
    # The uploaded image can be the page's cover.
    cover = await client.patch(
        f"{API}/pages/{team.page_id}", json={"cover": image["key"]}, headers=team.headers("editor")
    )
    assert cover.json()["cover_url"] == image["src"]


async def test_public_link_readers_get_the_images(client: httpx.AsyncClient, team: Team) -> None:
    image = (await upload(client, team, png_bytes(), "image/png")).json()
    await client.post(f"{API}/pages/{team.page_id}/public-link", headers=team.headers("owner"))
    assert (await client.get(image["src"])).status_code == 307


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"<html><body>not an image</body></html>", "text/html", 415),
        (b"%PDF-1.4 not an image", "application/pdf", 415),
        (b"<html><body>pretending</body></html>", "image/png", 422),
        (b"MZ\x90\x00 an executable", "application/octet-stream", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_IMAGE_BYTES + 1), "image/png", 413),
    ],
    ids=["html", "pdf", "html-claiming-png", "exe", "too-big"],
)
async def test_bad_uploads_are_refused_and_store_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    team: Team,
    data: bytes,
    content_type: str,
    status: int,
) -> None:
    response = await upload(client, team, data, content_type)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    storage = app.state.platform.storage
    workspace_keys = [k async for k in storage.list_keys(f"doc/{team.workspace_id}")]
    assert workspace_keys == []


async def test_missing_file_field(client: httpx.AsyncClient, team: Team) -> None:
    response = await client.post(
        f"{API}/pages/{team.page_id}/images", data={"x": "1"}, headers=team.headers("editor")
    )
    assert response.status_code == 422
    bogus = await client.get(
        f"{API}/pages/{team.page_id}/images/../../etc", headers=team.headers("owner")
    )
    # The client normalises the dots away; whatever route that reaches, nothing is served.
    assert bogus.status_code in (404, 422)
    assert bogus.headers["content-type"].startswith("application/problem+json")
