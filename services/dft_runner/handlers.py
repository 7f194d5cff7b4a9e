"""dft-runner: a DFT request in, a DFT result out — never lost, never silently dropped.

Ports: ``store`` (the output bytes are stored, the event carries their CID) and
``dft_backends`` (name -> DftBackend, already wrapped in bounded retries).
"""

from __future__ import annotations

from collections.abc import Iterator

from materialabs.crystals import Crystal
from materialabs.dft.base import DftResult, DftStatus, failed
from materialabs.events import Event
from materialabs.runtime import Context, InvalidEvent

DEFAULT_TIMEOUT_S = 600.0


def handle(event: Event, ctx: Context) -> Iterator[Event]:
    if event.type != "DftRequested":
        return
    try:
        crystal = Crystal.from_record(event["crystal"])
    except ValueError as error:
        raise InvalidEvent(f"DftRequested {event['candidate_id']}: crystal: {error}") from error
    backends = ctx.ports["dft_backends"]
    backend = backends.get(event["backend"])
    if backend is None:
        result = failed(event["backend"], f"unknown DFT backend {event['backend']!r}; "
                        f"this runner has {', '.join(sorted(backends))}")
    else:
        timeout_s = float(ctx.ports.get("dft_timeout_s", DEFAULT_TIMEOUT_S))
        result = backend.run(crystal, timeout_s)
    output_cid = ctx.store.put_bytes(result.output) if result.output else None
    yield ctx.event("DftCompleted", completed_fields(event, crystal, result, output_cid),
                    cause=event)


def completed_fields(request: Event, crystal: Crystal, result: DftResult,
                     output_cid: str | None) -> dict:
    return {
        "candidate_id": request["candidate_id"],
        "crystal": crystal.as_record(),
        "backend": result.backend,
        "status": DftStatus(result.status).value,
        "total_energy_eV": result.total_energy_eV,
        "formation_energy_per_atom_eV": result.formation_energy_per_atom_eV,
        "band_gap_eV": result.band_gap_eV,
        "wall_time_s": float(result.wall_time_s),
        "output_cid": output_cid,
        "attempts": int(result.attempts),
        "message": result.message,
        "round": request["round"],
    }
