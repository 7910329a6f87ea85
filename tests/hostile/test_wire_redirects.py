"""API calls never follow a redirect (issue 12, item 1).

A hostile (or misconfigured) server answers 3xx pointing at another origin. Followed, the
request would carry the key there (aiohttp strips ``Authorization`` across origins, but not
``mj-api-secret``), and a 302/303 would turn a submit's POST into a GET whose answer would pass
for the submit's. So every API request goes out with redirects off, also on a session the user
brought, and a 3xx is an :class:`APIError` naming its ``Location``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest

import mjasync

from .conftest import KEY, leaks
from .wire_server import HostileServer, answer, redirect

pytestmark = pytest.mark.anyio

Call = Callable[[mjasync.Client], Awaitable[object]]

CALLS: dict[str, Call] = {
    "fetch": lambda client: client.fetch("1320098173412546"),
    "list": lambda client: client.fetch_many(["1320098173412546", "1320098173412547"]),
    "submit": lambda client: client.submit_request(mjasync.Imagine("a black cat")),
    "cancel": lambda client: client.cancel("1320098173412546"),
}


@pytest.mark.parametrize("auth", ["bearer", "mj-api-secret"])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_redirect_elsewhere_is_an_api_error_and_reaches_nobody(
    server: HostileServer, elsewhere: HostileServer, auth: str, status: int, call: str
) -> None:
    target = f"{elsewhere.url}/collect?from=mjasync"
    server.on("*", "/.*", redirect(target, status))

    async with mjasync.Client(server.url, KEY, auth=auth) as client:  # type: ignore[arg-type]
        with pytest.raises(mjasync.APIError) as caught:
            await CALLS[call](client)

    error = caught.value
    assert type(error) is mjasync.APIError  # not "uncertain", not retried as a server error
    assert error.http_status == status
    assert target in str(error)  # the Location is named, so the user can fix base_url
    assert elsewhere.requests == []  # no key, no body, nothing reached the other host
    assert len(server.requests) == 1  # and a redirect is not retried either
    assert not leaks(str(error), [KEY])


@pytest.mark.parametrize("auth", ["bearer", "mj-api-secret"])
async def test_a_session_the_user_brings_does_not_follow_redirects_either(
    server: HostileServer, elsewhere: HostileServer, auth: str
) -> None:
    server.on("*", "/.*", redirect(f"{elsewhere.url}/collect", 307))
    elsewhere.on("*", "/.*", answer({"code": 1, "result": "1320098173412546"}))

    async with (
        aiohttp.ClientSession() as session,  # follows redirects by default
        mjasync.Client(server.url, KEY, auth=auth, session=session) as client,  # type: ignore[arg-type]
    ):
        for call in CALLS.values():
            with pytest.raises(mjasync.APIError, match="redirect"):
                await call(client)

    assert elsewhere.requests == []
    assert len(server.requests) == len(CALLS)


async def test_a_submit_redirected_to_a_get_that_says_accepted_is_not_accepted(
    server: HostileServer,
) -> None:
    # Followed, the 302 turns the POST into a GET of /accepted, whose answer looks exactly
    # like a successful submit: the job would count as submitted (and paid) with a made-up id.
    server.on("POST", "/mj-fast/mj/submit/imagine", redirect("/mj-fast/mj/accepted", 302))
    server.on("GET", "/mj-fast/mj/accepted", answer({"code": 1, "result": "1320098173412546"}))

    async with mjasync.Client(server.url, KEY) as client:
        with pytest.raises(mjasync.APIError, match="/mj-fast/mj/accepted") as caught:
            await client.submit(mjasync.Imagine("a black cat"))  # the job API too
        stats = client.statistics()
        assert stats.jobs_submitted == 0 and stats.watched == 0  # nothing taken as accepted

    assert not isinstance(caught.value, mjasync.SubmissionUncertainError)
    assert server.paths() == ["/mj-fast/mj/submit/imagine"]


async def test_a_redirect_loop_ends_at_the_first_hop(server: HostileServer) -> None:
    server.on("*", "/.*", redirect("/mj-fast/mj/task/1320098173412546/fetch", 302))

    async with mjasync.Client(server.url, KEY) as client:
        with pytest.raises(mjasync.APIError, match="redirect"):
            await client.fetch("1320098173412546")

    assert len(server.requests) == 1
