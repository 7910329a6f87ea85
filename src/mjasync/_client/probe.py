"""``client.probe()``: which server answers at the base URL, and how to talk to it.

Only cheap requests that cost nothing: anonymous GETs of the families' own status pages, a
fetch of an id that cannot exist, and, to learn which optional features are switched on,
submits the server refuses before creating anything (an empty body, or an extend of a task
that does not exist). What each answer means is decided in :mod:`mjasync._wire.probe`.
"""

from __future__ import annotations

import os

from .._wire.endpoints import Family
from .._wire.probe import (
    C_MODES,
    EndpointState,
    HomeFacts,
    ProbeAnswer,
    ServerProfile,
    c_endpoints,
    c_switch,
    classify_fetch,
    family_from_docs,
    family_from_home,
    family_from_status,
    java_endpoints,
    relay_endpoints,
    relay_switch,
)
from .._wire.transport import AuthOverride, Transport
from .wire_calls import WireCalls

__all__ = ["ProbeCalls", "probe_server"]

_PROBE_TIMEOUT = 15.0
_C_UNAVAILABLE = "服务暂不可用"  # C without Redis refuses every submit with this


class ProbeCalls(WireCalls):
    """The probe method of :class:`mjasync.Client` (a mixin: see ``Client``)."""

    async def probe(self) -> ServerProfile:
        """Find out which server family answers, which auth and mode work, what it offers.

        Sends a handful of cheap requests that create nothing and cost nothing (see
        ``mjasync doctor``). Works on an unopened client too.

        Returns:
            A :class:`ServerProfile`; ``profile.client_code()`` is the ``Client(...)`` to use.

        Raises:
            TransportError: the server could not be reached at all.

        Example::

            profile = await client.probe()
            print(profile.family_name, profile.version, profile.client_code())
            if profile.available("video"): ...
        """
        return await probe_server(self._api.transport, mode=self.mode)


async def probe_server(transport: Transport, *, mode: str | None = None) -> ServerProfile:
    """Run the probe over ``transport`` (the client's mode is kept if the server has it)."""
    probe = _Probe(transport)
    return await probe.run(mode)


class _Probe:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.made_up_id = f"mjasync-probe-{os.urandom(6).hex()}"
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.has_key = transport.has_key

    async def ask(
        self,
        method: str,
        path: str,
        *,
        auth: AuthOverride,
        body: dict[str, object] | None = None,
    ) -> ProbeAnswer:
        resp = await self.transport.request(
            method,
            path,
            mode=None,
            json_body=body,
            auth=auth if self.has_key else "none",
            timeout=min(self.transport.timeout, _PROBE_TIMEOUT),
        )
        answer = ProbeAnswer(
            status=resp.status,
            content_type=resp.content_type,
            body=resp.body,
            location=resp.location or resp.headers.get("Location"),
            new_api_version=resp.headers.get("X-New-Api-Version"),
        )
        if answer.html:
            shown = "an HTML page"
        elif answer.empty:
            shown = "empty body"
        else:
            shown = answer.description() or answer.text()
        self.notes.append(f"{method} {path} -> HTTP {answer.status}: {shown[:80]}")
        return answer

    async def run(self, wanted_mode: str | None) -> ServerProfile:
        family, version, home = await self.family()
        fetch = classify_fetch(
            await self.ask("GET", f"/mj/task/{self.made_up_id}/fetch", auth="mj-api-secret")
        )
        family = family or fetch.family
        key_ok = fetch.key_ok
        auth: str = "mj-api-secret"
        if family == "relay":
            bearer = classify_fetch(
                await self.ask("GET", f"/mj/task/{self.made_up_id}/fetch", auth="bearer")
            )
            if bearer.key_ok:
                auth, key_ok = "bearer", True
        if not fetch.route_ok:
            self.warnings.append(
                f"{fetch.note}: the base URL should be the server root, without /mj"
            )
        elif key_ok is False:
            self.warnings.append(f"{fetch.note}: check the API key")
        elif key_ok is None:
            self.warnings.append(fetch.note)
        if home is not None and home.guest and family == "csharp":
            key_ok = None
            self.warnings.append(
                "C runs with guests allowed: an unknown key silently becomes a guest, so the "
                "key cannot be verified this way"
            )
        if home is not None and home.demo:
            self.warnings.append("C runs in demo mode: no key is checked, and some calls refuse")
        modes = await self.modes(family) if key_ok is not False else ()
        mode = None
        if family == "csharp" and modes:
            mode = wanted_mode if wanted_mode in modes else ("fast" if "fast" in modes else None)
        endpoints = await self.endpoints(family, version, auth if key_ok is not False else None)
        self.family_warnings(family, auth)
        return ServerProfile(
            base_url=self.transport.base_url,
            family=family,
            version=version,
            key_accepted=key_ok if self.has_key else None,
            auth="bearer" if auth == "bearer" else "mj-api-secret",
            mode=mode,
            modes=modes,
            endpoints=endpoints,
            notes=tuple(self.notes),
            warnings=tuple(self.warnings),
        )

    async def family(self) -> tuple[Family | None, str | None, HomeFacts | None]:
        status = family_from_status(await self.ask("GET", "/api/status", auth="none"))
        if status is not None:
            return status[0], status[1], None
        home = family_from_home(await self.ask("GET", "/mj/home", auth="none"))
        if home is not None:
            return "csharp", home.version, home
        if family_from_docs(await self.ask("GET", "/mj/", auth="none")):
            return "java", None, None
        return None, None, None

    async def modes(self, family: Family | None) -> tuple[str, ...]:
        if family != "csharp":
            return ()
        working = []
        for mode in C_MODES:
            path = f"/mj-{mode}/mj/task/{self.made_up_id}/fetch"
            verdict = classify_fetch(await self.ask("GET", path, auth="mj-api-secret"))
            if verdict.route_ok and verdict.key_ok:
                working.append(mode)
        return tuple(working)

    async def endpoints(
        self, family: Family | None, version: str | None, auth: str | None
    ) -> dict[str, EndpointState]:
        scheme: AuthOverride = "bearer" if auth == "bearer" else "mj-api-secret"
        if family == "java":
            return java_endpoints()
        if family == "csharp":
            states = c_endpoints(version)
            if auth is None:
                return states
            for name, path in (
                ("video", "/mj/submit/video"),
                ("upload", "/mj/submit/upload-discord-images"),
                ("swap_face", "/mj/insight-face/swap"),
            ):
                if states[name] == "absent":
                    continue
                answer = await self.ask("POST", path, auth=scheme, body={})
                if _C_UNAVAILABLE in answer.description():
                    self.warnings.append(
                        "C refuses submits with '服务暂不可用': the operator has not set up Redis"
                    )
                states[name] = c_switch(answer)
            if states["upload"] == "disabled":
                states["edits"] = states["retexture"] = "disabled"
                self.warnings.append(
                    "C has user uploads off: edits, retexture and base64 images are refused"
                )
            cancel = await self.ask(
                "POST", f"/mj/task/{self.made_up_id}/cancel", auth=scheme, body={}
            )
            if 200 <= cancel.status < 300 and cancel.empty:
                states["cancel"] = "available"
            elif cancel.status == 400:
                states["cancel"] = "disabled"
                self.warnings.append("C lets only admin users cancel; this key cannot")
            return states
        if family == "relay":
            states = relay_endpoints()
            if auth is None:
                return states
            video = await self.ask(
                "POST",
                "/mj/submit/video",
                auth=scheme,
                body={"taskId": self.made_up_id, "action": "extend"},
            )
            states["video"] = relay_switch(video)
            # Video and edits came to new-api in the same change (PR #1321, 2025-06-30).
            states["edits"] = "absent" if states["video"] == "absent" else "unknown"
            swap = await self.ask("POST", "/mj/insight-face/swap", auth=scheme, body={})
            states["swap_face"] = relay_switch(swap)
            imagine = await self.ask("POST", "/mj/submit/imagine", auth=scheme, body={})
            if relay_switch(imagine) == "disabled":
                states["imagine"] = "disabled"
                self.warnings.append("this relay sells no imagine channel to this key")
            return states
        return dict.fromkeys(java_endpoints(), "unknown")

    def family_warnings(self, family: Family | None, auth: str) -> None:
        client_auth = self.transport.auth
        if family in ("java", "csharp") and client_auth == "bearer" and self.has_key:
            self.warnings.append(
                "this client sends 'Authorization: Bearer KEY', which J and C refuse: "
                "use auth='mj-api-secret'"
            )
        if family == "java":
            self.warnings.append("J serves no mode prefixes: use mode=None")
        if family == "relay":
            self.warnings.append(
                "new-api drops notifyHook and accountFilter unless its operator enabled them: "
                "webhooks may not arrive (polling stays on)"
            )
            self.warnings.append(
                "new-api refreshes tasks from its upstream about every 15 s: progress lags"
            )
            self.warnings.append(
                "new-api ignores /mj-{mode} prefixes: the mode is the operator's channel choice"
            )
