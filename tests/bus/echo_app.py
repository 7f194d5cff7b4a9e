"""Test-only service: for each CandidateGenerated on $ECHO_IN, emit a DftRequested on $ECHO_OUT.

Used by the delivery tests in-process and via `materialabs serve tests/bus/echo_app.py`.
$ECHO_DELAY_S slows each event down so a test can kill the process mid-stream.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from materialabs.events.types import CandidateGenerated, DftRequested
from materialabs.runtime import Context, ServiceSpec

IN_TOPIC = os.environ.get("ECHO_IN", "echo.in")
OUT_TOPIC = os.environ.get("ECHO_OUT", "echo.out")
DELAY_S = float(os.environ.get("ECHO_DELAY_S", "0"))


def handle(event: CandidateGenerated, ctx: Context[None]) -> Iterator[DftRequested]:
    if DELAY_S:
        time.sleep(DELAY_S)
    seen = ctx.state.get("seen", 0) + 1  # durable state: survives a restart
    ctx.state["seen"] = seen
    yield ctx.event(DftRequested(candidate_id=event.candidate_id, crystal=event.crystal,
                                 backend="replay", round=event.round, policy=f"seen={seen}"),
                    event, topic=OUT_TOPIC)


# The topics are the test's own (one set per test on a shared broker), not the schemas'.
SERVICE = ServiceSpec(name=os.environ.get("ECHO_NAME", "echo"),
                      handlers={CandidateGenerated: handle}, emits=(DftRequested,),
                      consumes=[IN_TOPIC], produces=[OUT_TOPIC])
