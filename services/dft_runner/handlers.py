"""dft-runner: a DFT request in, a DFT result out — never lost, never silently dropped.

The job itself (run the backend, store the output by CID, report) is
``materialabs.dft.job.run_job``, shared with the demo's GPAW check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from materialabs.crystals import Crystal
from materialabs.dft.base import DftBackend
from materialabs.dft.job import run_job
from materialabs.events.types import DftCompleted, DftRequested
from materialabs.runtime import Context, Handlers, InvalidEvent

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class DftRunnerPorts:
    store: Any
    """Content store: the output bytes are stored, the event carries their CID."""
    dft_backends: Mapping[str, DftBackend]
    """Backend name -> backend, already wrapped in bounded retries."""
    dft_timeout_s: float = DEFAULT_TIMEOUT_S
    """Time limit of one job."""


def on_requested(event: DftRequested, ctx: Context[DftRunnerPorts]) -> Iterator[DftCompleted]:
    try:
        crystal = Crystal.from_record(event.crystal)
    except ValueError as error:
        raise InvalidEvent(f"DftRequested {event.candidate_id}: crystal: {error}") from error
    ports = ctx.ports
    yield run_job(event, crystal, ports.dft_backends, ports.store, ports.dft_timeout_s)


HANDLERS: Handlers = {DftRequested: on_requested}
EMITS = (DftCompleted,)
