"""`client.files.list` of the openai SDK, unchanged, against the real local server: OpenAI's cursor
page (`{"object": "list", "data", "first_id", "last_id", "has_more"}`), newest first by default,
`order`, `limit` (1..10000), `after` (a file id), `purpose`; and a key sees only its own projects'.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.batch.conftest import chat_line
from tests.openai_api.conftest import jsonl


def _upload(client: openai.OpenAI, n: int, name: str) -> list[str]:
    """`n` uploads, oldest first."""
    return [
        client.files.create(file=(f"{name}-{i}.jsonl", jsonl([chat_line(f"r{i}", "hi")])), purpose="batch").id
        for i in range(n)
    ]


def _key(projects: tuple[str, ...]) -> str:
    from handler.store.keys import DynamoKeyStore

    return DynamoKeyStore("chat-gateway").create(projects, name="+".join(projects))[1]


def test_the_list_is_newest_first_and_pages_by_after(gateway: dict[str, Any]) -> None:
    demo: openai.OpenAI = gateway["clients"]["demo"]
    assert demo.files.list().data == []
    ids = _upload(demo, 5, "demo")
    newest = ids[::-1]

    page = demo.files.list()
    assert [f.id for f in page.data] == newest and not page.has_more
    assert page.data[0] == demo.files.retrieve(newest[0])  # the same object as a read
    raw = demo.get("/files", cast_to=httpx.Response).json()
    assert set(raw) == {"object", "data", "first_id", "last_id", "has_more"} and raw["object"] == "list"
    assert (raw["first_id"], raw["last_id"]) == (newest[0], newest[-1])

    first = demo.files.list(limit=2)
    assert [f.id for f in first.data] == newest[:2] and first.has_more
    second = demo.files.list(limit=2, after=newest[1])
    assert [f.id for f in second.data] == newest[2:4] and second.has_more
    last = demo.files.list(limit=2, after=newest[3])
    assert [f.id for f in last.data] == newest[4:] and not last.has_more
    assert [f.id for f in demo.files.list(limit=2)] == newest  # the SDK pages by `after` = last id
    assert [f.id for f in demo.files.list(limit=5)] == newest
    exact = demo.files.list(limit=5)
    assert not exact.has_more  # exactly `limit` left: no more

    assert [f.id for f in demo.files.list(order="asc")] == ids
    assert [f.id for f in demo.files.list(order="asc", limit=2, after=ids[1]).data] == ids[2:4]
    assert [f.id for f in demo.files.list(order="desc", limit=10000)] == newest

    demo.files.delete(ids[2])
    assert [f.id for f in demo.files.list()] == [i for i in newest if i != ids[2]]


def test_purpose_filters(gateway: dict[str, Any]) -> None:
    demo: openai.OpenAI = gateway["clients"]["demo"]
    ids = _upload(demo, 2, "demo")
    assert [f.id for f in demo.files.list(purpose="batch")] == ids[::-1]
    assert {f.purpose for f in demo.files.list(purpose="batch")} == {"batch"}
    assert demo.files.list(purpose="batch_output").data == []
    assert demo.files.list(purpose="fine-tune").data == []  # OpenAI's, never stored here


@pytest.mark.parametrize(
    ("params", "param"),
    [
        # FastAPI's query validation names a parameter by its location, as on every route
        ({"limit": 0}, "query.limit"),
        ({"limit": 10001}, "query.limit"),
        ({"limit": "many"}, "query.limit"),
        ({"order": "newest"}, "query.order"),
        ({"project": ""}, "query.project"),
        ({"purpose": "batches"}, "purpose"),
        ({"after": "file-nope"}, "after"),
        ({"after": "not-a-file"}, "after"),
    ],
)
def test_bad_params_are_400_naming_the_param(
    gateway: dict[str, Any], params: dict[str, Any], param: str
) -> None:
    demo: openai.OpenAI = gateway["clients"]["demo"]
    with pytest.raises(openai.BadRequestError) as caught:
        demo.files.list(extra_query=params)
    error = caught.value.response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_a_key_sees_only_its_own_projects_files(gateway: dict[str, Any]) -> None:
    demo: openai.OpenAI = gateway["clients"]["demo"]
    lab: openai.OpenAI = gateway["clients"]["lab"]
    demo_ids = _upload(demo, 3, "demo")
    lab_ids = _upload(lab, 2, "lab")

    assert [f.id for f in lab.files.list()] == lab_ids[::-1]
    assert {f.project for f in lab.files.list()} == {"lab"}
    # demo's file id as lab's cursor: the same 400 as an id that does not exist, nothing of demo's.
    bodies = set()
    for cursor in (demo_ids[0], "file-0123456789abcdef0123456789abcdef"):
        with pytest.raises(openai.BadRequestError) as caught:
            lab.files.list(after=cursor)
        assert caught.value.response.json()["error"]["param"] == "after"
        bodies.add(caught.value.response.text)
    assert len(bodies) == 1 and demo_ids[0] not in bodies.pop()
    with pytest.raises(openai.NotFoundError):  # another project, named: like one that does not exist
        lab.files.list(extra_query={"project": "demo"})

    # A key of both projects: one list, both merged newest first, or one project's by `project`.
    both = openai.OpenAI(base_url=f"{gateway['url']}/api/v1", api_key=_key(("demo", "lab")), max_retries=0)
    everything = demo_ids + lab_ids  # uploaded in this order
    assert [f.id for f in both.files.list(limit=2)] == everything[::-1]
    assert [f.id for f in both.files.list(order="asc", limit=3)] == everything
    assert [f.id for f in both.files.list(extra_query={"project": "lab"})] == lab_ids[::-1]
    assert [f.id for f in both.files.list(after=lab_ids[0])] == demo_ids[::-1]
