"""Test-only service: for each CandidateGenerated on $ECHO_IN, emit a DftRequested on $ECHO_OUT.

Used by the delivery tests in-process and via `materialabs serve tests/bus/echo_app.py`.
$ECHO_DELAY_S slows each event down so a test can kill the process mid-stream.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from materialabs.events import Event
from materialabs.runtime import Context, InvalidEvent, ServiceSpec

IN_TOPIC = os.environ.get("ECHO_IN", "echo.in")
OUT_TOPIC = os.environ.get("ECHO_OUT", "echo.out")
DELAY_S = float(os.environ.get("ECHO_DELAY_S", "0"))


def handle(event: Event, ctx: Context) -> Iterator[Event]:
    if event.type != "CandidateGenerated":
        raise InvalidEvent(f"echo expects CandidateGenerated, got {event.type}")
    if DELAY_S:
        time.sleep(DELAY_S)
    seen = ctx.state.get("seen", 0) + 1  # durable state: survives a restart
    ctx.state["seen"] = seen
    output = ctx.event(
        "DftRequested",
        {"candidate_id": event["candidate_id"], "crystal": event["crystal"],
         "backend": "replay", "round": event["round"], "policy": f"seen={seen}"},
        cause=event,
    )
    yield Event(output.type, output.payload, key=output.key, topic=OUT_TOPIC)


SERVICE = ServiceSpec(name=os.environ.get("ECHO_NAME", "echo"), consumes=[IN_TOPIC],
                      produces=[OUT_TOPIC], handler=handle)
