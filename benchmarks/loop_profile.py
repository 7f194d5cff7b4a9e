"""Where each loop stage spends its CPU: the loop benchmark's round, profiled per service.

The generator, predictor and acquisition services (the real handlers and runtime) step in
turn over the in-memory embedded bus, in this one process, so each runner's ``step`` can
be timed (CPU seconds, ``time.process_time``) and profiled (cProfile) on its own. The round
is ``benchmarks/loop.py``'s (same campaign, seed and warm-up round), so the per-stage
figures are comparable with its ``kafka x3`` processes less the Kafka client's share.

It also prints a digest of the round's outcome: every prediction (the floats' exact
``repr``) in candidate order, and the DFT batch picked with its scores. Two trees that
print the same digest made the same predictions and the same decisions.

    python benchmarks/loop_profile.py                       # 1000 candidates, top 25
    python benchmarks/loop_profile.py --candidates 300 --top 40 --no-profile
    python benchmarks/loop_profile.py --stage predictor --sort cumulative
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.loop import SEED, STAGES, campaign  # noqa: E402


class GcTimer:
    """CPU seconds the cyclic garbage collector takes, per stage and generation."""

    def __init__(self) -> None:
        self.active = False  # only the timed round is counted
        self.stage: str | None = None
        self.seconds: dict[tuple[str, int], float] = {}
        self.counts: dict[tuple[str, int], int] = {}
        self._began = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if self.stage is None:
            return
        if phase == "start":
            self._began = time.thread_time()
            return
        key = (self.stage, info["generation"])
        self.seconds[key] = self.seconds.get(key, 0.0) + time.thread_time() - self._began
        self.counts[key] = self.counts.get(key, 0) + 1

    def line(self, stage: str, count: int) -> str:
        return ", ".join(f"gen{g} {self.counts.get((stage, g), 0)}x "
                         f"{1000 * self.seconds.get((stage, g), 0.0) / count:.2f}"
                         for g in range(3))


GC = GcTimer()


def run(n: int, seed: int, runners, profiles, cpu: dict[str, float],
        batch: int = 500) -> dict:
    """One round through the runners, stepped in turn; the round's outcome."""
    from materialabs.events import decode, default_registry, encode, new_event

    registry = default_registry()
    bus = runners[0].bus
    campaign_id = str(uuid.uuid4())
    watch = bus.consumer(f"profile-{campaign_id}", ["candidates.predicted", "dft.requested"])
    start = new_event("CampaignStarted", campaign(n, seed).to_event_fields(), producer="bench",
                      campaign_id=campaign_id, key=campaign_id)
    producer = bus.producer()
    producer.send(start.topic, encode(start, registry), key=campaign_id.encode())
    producer.flush()
    predictions: dict[str, list] = {}
    picks: list[tuple[str, float]] = []
    while not picks:
        busy = False
        for runner in runners:
            name = runner.spec.name
            profile = profiles.get(name)
            began = time.process_time()
            GC.stage = name if GC.active else None
            if profile is not None:
                profile.enable()
            busy |= bool(runner.step(0.0, batch))
            if profile is not None:
                profile.disable()
            GC.stage = None
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - began
        for record in watch.poll(0.0, 100_000):
            event = decode(record.value, registry)
            if event.campaign_id != campaign_id:
                continue
            if event.type == "CandidatePredicted":
                predictions[event["candidate_id"]] = [
                    (p["target"], repr(p["mean"]), repr(p["sigma"]))
                    for p in event["predictions"]]
            elif event.type == "DftRequested":
                picks.append((event["candidate_id"], repr(event["acquisition_score"])))
        if not busy and not picks:
            raise RuntimeError("the services went idle before the DFT batch was chosen")
    watch.close()
    return {"predictions": predictions, "picks": picks}


def digest(outcome: dict) -> tuple[str, str]:
    scored = hashlib.sha256(repr(sorted(outcome["predictions"].items())).encode()).hexdigest()
    # Sorted: the requests are keyed by candidate, so they arrive from several partitions.
    chosen = hashlib.sha256(repr(sorted(outcome["picks"])).encode()).hexdigest()
    return scored[:16], chosen[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--stage", choices=STAGES, action="append",
                        help="profile only these stages (default: all)")
    parser.add_argument("--top", type=int, default=25, help="functions shown per stage")
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    parser.add_argument("--batch", type=int, default=500,
                        help="most records a service takes per poll (the runtime's default "
                             "500; in the loop benchmark's x3 processes the predictor and the "
                             "acquisition see about 60-120, as the round streams in)")
    parser.add_argument("--save", type=Path, help="also write <stage>.prof files here")
    parser.add_argument("--no-profile", action="store_true",
                        help="CPU seconds and digest only (profiling slows Python code)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MATERIALABS_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("MATERIALABS_KAFKA", None)
        from materialabs.bootstrap import services
        from materialabs.bus.embedded import EmbeddedBus
        from materialabs.platform import ensure_platform, publish_default_model
        from materialabs.runtime import ServiceRunner

        publish_default_model(ensure_platform())
        bus = EmbeddedBus()
        runners = [ServiceRunner(spec, bus) for spec in services(STAGES)]
        # The warm-up round loads what a long-running service holds anyway (loop.py's).
        run(min(args.candidates, 200), SEED + 1, runners, {}, {})
        chosen = args.stage or list(STAGES)
        profiles = {} if args.no_profile else {name: cProfile.Profile() for name in chosen}
        cpu: dict[str, float] = {}
        GC.active = True
        outcome = run(args.candidates, SEED, runners, profiles, cpu, args.batch)
        for runner in runners:
            runner.close()
    count = len(outcome["predictions"])
    print(f"{count} candidates, {len(outcome['picks'])} picked for DFT, at most {args.batch} "
          f"records per poll; CPU per candidate "
          f"(ms{', profiled' if profiles else ''}): total "
          f"{1000 * sum(cpu.values()) / count:.2f}, " + ", ".join(
              f"{name} {1000 * cpu[name] / count:.2f}" for name in STAGES))
    print("cyclic GC, collections and CPU ms per candidate: " + "; ".join(
        f"{name} {GC.line(name, count)}" for name in STAGES))
    scored, picked = digest(outcome)
    print(f"digest: predictions {scored}, DFT batch {picked}")
    for name, profile in profiles.items():
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            profile.dump_stats(args.save / f"{name}.prof")
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats(args.sort).print_stats(args.top)
        print(f"\n=== {name} ({1000 * cpu[name] / count:.2f} ms per candidate, profiled)")
        print(out.getvalue().split("\n", 6)[-1].rstrip())


if __name__ == "__main__":
    main()
