"""The round trip `make clients` runs through the Python client that
openapi-python-client generates from the server's /openapi.json.

It proves the document is usable as people use it: every call goes through
the generated functions and models, never raw HTTP, so an operation the
generator skipped, a parameter it named differently or a response it cannot
parse fails here. Exits non-zero at the first mismatch, saying which.

Needs CLIENT_BASE_URL (tools/clients-run resolves it from the document's
server entry) and the generated package `crud_api_client` on PYTHONPATH
(tools/clients-run puts it there).
"""

import os
import re
import urllib.parse
import sys

from crud_api_client import Client
from crud_api_client.api.users import (
    create_users,
    delete_users,
    get_users,
    list_users,
    update_users,
)
from crud_api_client.errors import UnexpectedStatus
from crud_api_client.models import CreateUsersBody, Error, Record, UpdateUsersBody

# The document's ETag pattern: a strong tag holding the record's version.
ETAG = re.compile(r'^"(0|[1-9][0-9]*)"$')
PAGE_SIZE = 2
# Bounds the paging loop, so a cursor that never ends fails instead of hanging.
MAX_PAGES = 20


class Mismatch(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Mismatch(what)


def expect_status(response, status, step):
    check(
        response.status_code == status,
        f"{step}: status {int(response.status_code)}, expected {status}; "
        f"body {response.content[:300]!r}",
    )


def expect_error(response, status, step):
    """The documented error body: the `Error` model, `{"error": "..."}`."""
    expect_status(response, status, step)
    check(
        isinstance(response.parsed, Error),
        f"{step}: body parsed as {type(response.parsed).__name__}, expected Error",
    )
    check(
        isinstance(response.parsed.error, str) and response.parsed.error,
        f"{step}: Error.error is {response.parsed.error!r}",
    )
    return response.parsed.error


def etag_of(response, step):
    tag = response.headers.get("ETag")
    check(tag is not None and ETAG.match(tag), f"{step}: ETag header {tag!r}")
    return tag


def round_trip(client, tag):
    # An id a path must percent-encode (space, `+`, `%`, `#`, `?`, non-ASCII):
    # the generated client has to encode it, the server to decode it.
    first = f"{tag}-0 Ana María+100%#?"
    record = {
        "id": first,
        "full_name": "Round Trip",
        "gender": "F",
        "roundtrip": tag,
        "visits": 3,
        "verified": True,
        "nickname": None,
        "languages": ["en", "fr"],
        "address": {"city": "Lyon", "zip": "69001"},
    }

    step = "create"
    created = create_users.sync_detailed(client=client, body=CreateUsersBody.from_dict(record))
    expect_status(created, 201, step)
    check(
        isinstance(created.parsed, Record),
        f"{step}: body parsed as {type(created.parsed).__name__}",
    )
    check(
        created.parsed.to_dict() == record,
        f"{step}: stored {created.parsed.to_dict()}, sent {record}",
    )
    location = created.headers.get("Location")
    # A relative reference whose last segment is the id, percent-encoded.
    expected = "users/" + urllib.parse.quote(first, safe="")
    check(location == expected, f"{step}: Location {location!r}, expected {expected!r}")
    version = etag_of(created, step)

    step = "create the same id again"
    expect_error(
        create_users.sync_detailed(client=client, body=CreateUsersBody.from_dict(record)), 409, step
    )

    step = "read"
    read = get_users.sync_detailed(first, client=client)
    expect_status(read, 200, step)
    check(read.parsed.to_dict() == record, f"{step}: read {read.parsed.to_dict()}, stored {record}")
    check(
        etag_of(read, step) == version,
        f"{step}: ETag {read.headers.get('ETag')}, create said {version}",
    )

    step = "read with If-None-Match: the current ETag"
    unchanged = get_users.sync_detailed(first, client=client, if_none_match=version)
    expect_status(unchanged, 304, step)
    check(unchanged.content == b"", f"{step}: a body {unchanged.content[:100]!r}")
    check(etag_of(unchanged, step) == version, f"{step}: ETag {unchanged.headers.get('ETag')}")

    step = "update with If-Match: the current ETag"
    changes = {"full_name": "Round Trip Changed", "nickname": "rt"}
    updated = update_users.sync_detailed(
        first, client=client, body=UpdateUsersBody.from_dict(changes), if_match=version
    )
    expect_status(updated, 200, step)
    record = {**record, **changes}
    check(
        updated.parsed.to_dict() == record,
        f"{step}: answered {updated.parsed.to_dict()}, expected {record}",
    )
    stale, version = version, etag_of(updated, step)
    check(version != stale, f"{step}: the ETag stayed {version}")

    step = "update with If-Match: a stale ETag"
    message = expect_error(
        update_users.sync_detailed(
            first, client=client, body=UpdateUsersBody.from_dict({"gender": "M"}), if_match=stale
        ),
        412,
        step,
    )
    print(f"  412 as Error: {message}")
    after = get_users.sync_detailed(first, client=client)
    check(
        after.parsed.to_dict() == record, f"{step}: the record changed to {after.parsed.to_dict()}"
    )

    # More records of this run, so the list spans several pages.
    ids = [first]
    for n in range(1, 5):
        more = {"id": f"{tag}-{n} ürün", "full_name": f"Round Trip {n}", "roundtrip": tag}
        expect_status(
            create_users.sync_detailed(client=client, body=CreateUsersBody.from_dict(more)),
            201,
            f"create {more['id']}",
        )
        ids.append(more["id"])

    step = "list, following next-offset"
    listed, pages, offset = [], 0, None
    while True:
        pages += 1
        check(pages <= MAX_PAGES, f"{step}: still a next-offset after {MAX_PAGES} pages")
        kwargs = {} if offset is None else {"offset": offset}
        page = list_users.sync_detailed(
            client=client,
            limit=PAGE_SIZE,
            filters=f'roundtrip:eq:"{tag}"',
            fields="id,full_name",
            **kwargs,
        )
        expect_status(page, 200, f"{step}, page {pages}")
        check(isinstance(page.parsed, list), f"{step}: body parsed as {type(page.parsed).__name__}")
        check(
            len(page.parsed) <= PAGE_SIZE,
            f"{step}: {len(page.parsed)} records on a page of {PAGE_SIZE}",
        )
        for item in page.parsed:
            got = item.to_dict()
            check(set(got) == {"id", "full_name"}, f"{step}: fields=id,full_name answered {got}")
            listed.append(got["id"])
        offset = page.headers.get("next-offset")
        if offset is None:
            break
    check(sorted(listed) == sorted(ids), f"{step}: listed {listed}, expected {ids}")
    print(f"  listed {len(listed)} records in {pages} pages of {PAGE_SIZE}")

    step = "list with a bad filter"
    message = expect_error(
        list_users.sync_detailed(client=client, filters="roundtrip:no_such_operator:1"), 400, step
    )
    print(f"  400 as Error: {message}")

    step = "delete with If-Match: a stale ETag"
    expect_error(delete_users.sync_detailed(first, client=client, if_match=stale), 412, step)

    step = "delete with If-Match: the current ETag"
    expect_status(delete_users.sync_detailed(first, client=client, if_match=version), 204, step)
    for other in ids[1:]:
        expect_status(delete_users.sync_detailed(other, client=client), 204, f"delete {other}")

    step = "read after delete"
    message = expect_error(get_users.sync_detailed(first, client=client), 404, step)
    print(f"  404 as Error: {message}")


def main():
    base_url = os.environ.get("CLIENT_BASE_URL")
    if not base_url:
        sys.exit("roundtrip.py: CLIENT_BASE_URL is not set; run it through tools/clients-run")
    # Undocumented statuses raise: the document must name every answer.
    client = Client(base_url=base_url, raise_on_unexpected_status=True)
    try:
        round_trip(client, f"py-{os.getpid()}")
    except Mismatch as mismatch:
        sys.exit(f"python client round trip FAILED: {mismatch}")
    except UnexpectedStatus as status:
        sys.exit(
            f"python client round trip FAILED: undocumented status {status.status_code}: "
            f"{status.content[:300]!r}"
        )
    print("python client round trip: ok")


if __name__ == "__main__":
    main()
