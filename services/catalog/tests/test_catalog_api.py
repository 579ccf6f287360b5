"""Catalog's API against a real Postgres; each test gets its own freshly migrated database."""

from kit.testing import TestClient


def create(client: TestClient, name: str, **fields: object) -> dict[str, object]:
    response = client.post("/items", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_create_then_read(client: TestClient) -> None:
    item = create(client, "first", description="the first one")
    assert item["name"] == "first"
    assert item["description"] == "the first one"
    assert client.get(f"/items/{item['id']}").json() == item


def test_missing_item_is_404(client: TestClient) -> None:
    assert client.get("/items/999999").status_code == 404
    assert client.delete("/items/999999").status_code == 404


def test_duplicate_name_is_409(client: TestClient) -> None:
    create(client, "twice")
    response = client.post("/items", json={"name": "twice"})
    assert response.status_code == 409
    assert response.json() == {"detail": "an item with this name exists"}


def test_bad_bodies_are_422_field_by_field(client: TestClient) -> None:
    for body, loc in [
        ({}, ["body", "name"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "x" * 101}, ["body", "name"]),
        ({"name": "ok", "description": 5}, ["body", "description"]),
        ({"name": "ok", "unknown": 1}, ["body", "unknown"]),
    ]:
        response = client.post("/items", json=body)
        assert response.status_code == 422, body
        assert [error["loc"] for error in response.json()["detail"]] == [loc], body
    malformed = client.post("/items", content=b"{", headers={"content-type": "application/json"})
    assert malformed.status_code == 422


def test_list_pages_by_keyset(client: TestClient) -> None:
    ids = [create(client, f"item-{n}")["id"] for n in range(5)]
    first = client.get("/items", params={"limit": 3}).json()
    assert [item["id"] for item in first["items"]] == ids[:3]
    second = client.get("/items", params={"limit": 3, "after": first["next_after"]}).json()
    assert [item["id"] for item in second["items"]] == ids[3:]
    assert second["next_after"] is None
    assert client.get("/items", params={"limit": 0}).status_code == 422


def test_delete(client: TestClient) -> None:
    item = create(client, "short-lived")
    assert client.delete(f"/items/{item['id']}").status_code == 204
    assert client.get(f"/items/{item['id']}").status_code == 404
