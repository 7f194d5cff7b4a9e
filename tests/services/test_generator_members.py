"""The generator as several members of one group: a campaign's partition may move from one
member to another between rounds (a rebalance), and back. Whichever member handles a round
must emit what a single generator would: its in-process deduplicator is only a cache of the
campaign's book, and one built before rounds another member did is out of date."""

from __future__ import annotations

import copy
import uuid

from materialabs.events import new_event
from materialabs.runtime import Context, dispatch
from services.generator import handlers
from services.generator.handlers import GeneratorPorts
from tests.services.test_generator_round import PARENTS, campaign


def _round_started(campaign_id: str, number: int):
    parents = [{"candidate_id": pid, "crystal": crystal.as_record()} for pid, crystal in PARENTS]
    return new_event("RoundStarted", {"round": number, "model_cid": None, "parents": parents,
                                      "dft_calls_used": 0},
                     producer="acquisition", campaign_id=campaign_id, key=campaign_id)


def _ids(events) -> list[str]:
    return [e.candidate_id for e in events if e.type == "CandidateGenerated"]


def _handle(event, ctx: Context):
    return list(dispatch(handlers.HANDLERS, event, ctx))


def test_a_member_that_did_round_0_and_gets_round_2_after_another_did_round_1():
    campaign_id = str(uuid.uuid4())
    spec = campaign(8)
    start = new_event("CampaignStarted", spec.to_event_fields(), producer="test",
                      campaign_id=campaign_id, key=campaign_id)
    ports = GeneratorPorts(parents=lambda c: PARENTS)
    # One generator: rounds 0, 1, 2.
    single = Context(service="generator", state={}, ports=ports)
    expected = [_ids(_handle(start, single))]
    for number in (1, 2):
        expected.append(_ids(_handle(_round_started(campaign_id, number), single)))
    handlers._deduplicators.pop(campaign_id, None)

    # Member A does round 0; member B (another process: no cache) round 1; A round 2,
    # reading the book B wrote (the shared state table).
    state: dict = {}
    member_a = Context(service="generator", state=state, ports=ports)
    got = [_ids(_handle(start, member_a))]
    a_cache = handlers._deduplicators.pop(campaign_id)
    member_b = Context(service="generator", state=copy.deepcopy(state), ports=ports)
    got.append(_ids(_handle(_round_started(campaign_id, 1), member_b)))
    handlers._deduplicators[campaign_id] = a_cache  # A's process still holds its cache
    member_a.state.clear()
    member_a.state.update(copy.deepcopy(member_b.state))
    got.append(_ids(_handle(_round_started(campaign_id, 2), member_a)))
    handlers._deduplicators.pop(campaign_id, None)

    assert all(expected), f"each round should propose candidates: {expected}"
    assert got == expected
    assert not set(got[2]) & set(got[1]), "round 2 proposed round 1's candidates again"
