"""Test-only single-active service: counts CandidateGenerated events on $LEASE_IN in its
durable state and emits one DftRequested per event on $LEASE_OUT carrying the count.

Run as several `materialabs serve tests/bus/lease_app.py --instance NAME` processes: one
leads, the others stand by. $LEASE_DELAY_S slows each event so a test can kill the leader
mid-stream. A count that is lost or counted twice shows in the outputs' ``policy``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from materialabs.events.types import CandidateGenerated, DftRequested
from materialabs.runtime import Context, ServiceSpec

IN_TOPIC = os.environ.get("LEASE_IN", "lease.in")
OUT_TOPIC = os.environ.get("LEASE_OUT", "lease.out")
DELAY_S = float(os.environ.get("LEASE_DELAY_S", "0"))


def handle(event: CandidateGenerated, ctx: Context[None]) -> Iterator[DftRequested]:
    if DELAY_S:
        time.sleep(DELAY_S)
    count = ctx.state.get("count", 0) + 1
    ctx.state["count"] = count
    yield ctx.event(DftRequested(candidate_id=event.candidate_id, crystal=event.crystal,
                                 backend="replay", round=0, policy=f"count={count}"),
                    event, topic=OUT_TOPIC)


SERVICE = ServiceSpec(name=os.environ.get("LEASE_NAME", "lease-counter"),
                      handlers={CandidateGenerated: handle}, emits=(DftRequested,),
                      consumes=[IN_TOPIC], produces=[OUT_TOPIC], single_active=True)
