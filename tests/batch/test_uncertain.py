"""Uncertain submissions (answer lost, or killed mid-submit) are reported, never resent silently."""

from __future__ import annotations

import pytest

import mjasync
from mjasync._batch.batch import run_batch
from mjasync._batch.journal import Journal, request_key
from mjasync._batch.types import BatchOutcome
from mjasync.testing import FaultRates, Faults

from ._support import read_manifest

pytestmark = pytest.mark.anyio

LOST = Faults(submit=FaultRates(response_lost=1.0))


async def test_lost_answers_are_reported_then_resubmitted_only_on_request(
    make_client, fake, tmp_path
):
    fake.set_faults(LOST)
    async with make_client() as client:
        first = await run_batch(client, ["a", "b"], out_dir=tmp_path)
    assert fake.stats().accepted == 2  # the server took both; we never heard the ids
    assert first.counts["uncertain"] == 2
    assert len(first.uncertain_keys) == 2
    assert first.task_ids == ()
    assert not first.ok
    assert all("not resent" in (r.error or "") for r in first.results)

    fake.set_faults(None)
    async with make_client() as client:
        second = await run_batch(client, ["a", "b", "c"], out_dir=tmp_path)
    assert fake.stats().accepted == 3  # only "c" was sent
    assert [r.outcome for r in second.results] == [
        BatchOutcome.UNCERTAIN,
        BatchOutcome.UNCERTAIN,
        BatchOutcome.SUCCEEDED,
    ]
    assert second.uncertain_keys == first.uncertain_keys
    assert [line["outcome"] for line in read_manifest(tmp_path)] == [
        "uncertain",
        "uncertain",
        "succeeded",
    ]

    async with make_client() as client:
        third = await run_batch(client, ["a", "b", "c"], out_dir=tmp_path, resubmit_uncertain=True)
    assert third.ok
    assert third.submitted == 2
    assert fake.stats().accepted == 5  # paid twice, as the flag says


async def test_intent_without_outcome_counts_as_uncertain(make_client, fake, tmp_path):
    # What a SIGKILL between the journal's intent and the server's answer leaves behind.
    body = mjasync.Imagine("killed mid-submit").to_body()
    key = request_key(mjasync.Imagine.route, body)
    async with Journal(tmp_path / "journal.sqlite") as journal:
        await journal.record_intent(key, endpoint=mjasync.Imagine.route, body=body)
    async with make_client() as client:
        summary = await run_batch(client, ["killed mid-submit", "fresh"], out_dir=tmp_path)
    assert [r.outcome for r in summary.results] == [BatchOutcome.UNCERTAIN, BatchOutcome.SUCCEEDED]
    assert summary.uncertain_keys == (key,)
    assert "stopped while submitting" in (summary.results[0].error or "")
    assert fake.stats().accepted == 1
