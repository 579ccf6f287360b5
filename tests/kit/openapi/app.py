"""A service that uses every feature the OpenAPI document describes (no database needed)."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

from kit import (
    App,
    Body,
    Cookie,
    Depends,
    Header,
    HTMLResponse,
    HTTPException,
    Path,
    PlainTextResponse,
    Query,
    Response,
    Router,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(msgspec.Struct, rename="camel"):
    street_name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    zip_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{5}$")]


class Item(msgspec.Struct):
    """An item for sale."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50, description="display name")]
    price: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]
    color: Color = Color.RED
    tags: Annotated[list[str], msgspec.Meta(max_length=5)] = []
    address: Address | None = None


class StoredItem(msgspec.Struct):
    id: int
    item: Item


class Category(msgspec.Struct):
    """Categories nest: a recursive Struct."""

    name: str
    children: list[Category] = []


class Cat(msgspec.Struct, tag="cat"):
    name: str
    lives: Annotated[int, msgspec.Meta(ge=0, le=9)] = 9


class Dog(msgspec.Struct, tag="dog"):
    name: str
    good: bool = True


Pet = Cat | Dog


class Paging(msgspec.Struct):
    """Query parameters gathered into one Struct."""

    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10


class Message(msgspec.Struct):
    message: str


class NotFound(msgspec.Struct):
    detail: str


ITEMS: dict[int, Item] = {1: Item(name="lamp", price=10.0)}


async def api_key(x_api_key: Annotated[str | None, Header()] = None) -> str | None:
    """A dependency whose header parameter belongs in every operation that uses it."""
    return x_api_key


app = App(
    title="OpenAPI feature test",
    version="2.3.4",
    description="Every feature the document generator covers.",
    servers=[{"url": "/", "description": "this server"}],
    openapi_tags=[{"name": "items", "description": "Things for sale"}],
)
items = Router(prefix="/items", tags=["items"])


@items.get("/{item_id}", responses={404: {"model": NotFound, "description": "No such item"}})
async def read_item(
    item_id: Annotated[int, Path(description="the item's id"), msgspec.Meta(ge=1)],
    key: Annotated[str | None, Depends(api_key)],
    verbose: bool = False,
) -> StoredItem:
    """Read one item.

    Returns the stored item, or 404.
    """
    item = ITEMS.get(item_id)
    if item is None:
        raise HTTPException(404, "item not found")
    return StoredItem(id=item_id, item=item)


@items.get("")
async def list_items(
    paging: Annotated[Paging, Query()],
    colors: Annotated[list[Color] | None, Query(alias="color")] = None,
    q: Annotated[
        Annotated[str, msgspec.Meta(max_length=20)] | None,
        Query(description="search text", examples=["lamp"]),
    ] = None,
    max_price: Annotated[float, msgspec.Meta(ge=0)] | None = None,
) -> list[StoredItem]:
    found = [
        StoredItem(id=i, item=item)
        for i, item in ITEMS.items()
        if (colors is None or item.color in colors)
        and (q is None or q in item.name)
        and (max_price is None or item.price <= max_price)
    ]
    return found[paging.offset : paging.offset + paging.limit]


@items.post("", status_code=201, responses={409: {"description": "Duplicate name"}})
async def create_item(item: Item) -> StoredItem:
    if any(existing.name == item.name for existing in ITEMS.values()):
        raise HTTPException(409, "duplicate name")
    new_id = max(ITEMS, default=0) + 1
    ITEMS[new_id] = item
    return StoredItem(id=new_id, item=item)


@items.delete("/{item_id}", status_code=204)
async def delete_item(item_id: int) -> None:
    ITEMS.pop(item_id, None)


app.include_router(items)


@app.get("/message", operation_id="get_message")
async def message(
    accept_language: Annotated[str, Header()] = "en",
    session: Annotated[str | None, Cookie(description="session id")] = None,
) -> Message:
    """Say hello."""
    return Message(message="hello" if accept_language.startswith("en") else "hallo")


@app.put("/categories", tags=["categories"])
async def put_category(
    category: Annotated[Category, Body(description="a tree of categories", max_size=256 * 1024)],
) -> Category:
    return category


@app.post("/pets", tags=["pets"])
async def adopt(pet: Pet) -> Pet:
    return pet


@app.get("/plain", response_class=PlainTextResponse)
async def plain() -> str:
    return "plain text"


@app.get("/page")
async def page() -> HTMLResponse:
    return HTMLResponse("<p>hi</p>")


@app.get("/old", deprecated=True)
async def old(kind: Literal["a", "b"] = "a") -> dict[str, str]:
    return {"kind": kind}


@app.get("/hidden", include_in_schema=False)
async def hidden() -> Response:
    return Response(status_code=204)


@app.api_route("/echo", methods=["GET", "POST"])
async def echo(text: Annotated[str, msgspec.Meta(min_length=1)] = "hi") -> Message:
    return Message(message=text)


@app.get("/no-annotation")
async def no_annotation():  # type: ignore[no-untyped-def]  # documented as any JSON value
    return {"free": "form"}
