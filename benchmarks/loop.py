"""Candidates screened per second, end to end: generate → predict → acquire.

One campaign round of N candidates goes through the generator, predictor and
acquisition services (the real handlers and runtime) over the real Kafka broker, and the
same round over the embedded bus as the baseline. "Screened" means: generated, scored by
the GNN ensemble (mean ± σ) and ranked by the acquisition policy, which then emits its
DFT batch. Each stage's share of the time is printed so the bottleneck is visible.

    python benchmarks/loop.py                      # starts its own broker (infra/kafka)
    python benchmarks/loop.py --bootstrap 127.0.0.1:9092 --candidates 2000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ELEMENTS = ["H", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
            "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
            "Se", "Br", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "In", "Sn", "Sb", "Te", "I", "Cs",
            "Ba", "La", "Hf", "Ta", "W", "Pb", "Bi"]


def campaign(n: int):
    from materialabs.campaign import Campaign, Target

    return Campaign(name="bench-loop", elements=tuple(ELEMENTS),
                    targets=(Target("formation_energy_per_atom", "minimize"),),
                    methods=("saps",), policy="ucb", dft_budget=20, rounds=1,
                    candidates_per_round=n, max_sites=12, seed=11)


def run_round(bus, n: int) -> dict[str, float]:
    from materialabs.events import decode, default_registry, encode, new_event
    from materialabs.loop import load_services
    from materialabs.runtime import ServiceRunner

    specs = [s for s in load_services() if s.name in ("generator", "predictor", "acquisition")]
    runners = [ServiceRunner(spec, bus) for spec in specs]
    # Each service polls in its own thread, as separate processes would: a Kafka consumer
    # that waits behind another service's long step misses heartbeats and rebalances.
    stop = threading.Event()
    threads = [threading.Thread(target=r.run, kwargs={"stop": stop, "poll_timeout_s": 0.05},
                                daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    registry = default_registry()
    campaign_id = str(uuid.uuid4())
    watch = bus.consumer(f"bench-{campaign_id}", ["campaigns", "candidates.predicted",
                                                    "dft.requested"])
    start = new_event("CampaignStarted", campaign(n).to_event_fields(), producer="bench",
                      campaign_id=campaign_id, key=campaign_id)
    producer = bus.producer()
    started = time.perf_counter()
    producer.send(start.topic, encode(start, registry), key=campaign_id.encode())
    producer.flush()
    marks: dict[str, float] = {}
    generated = predicted = 0
    while "dft_requested" not in marks:
        for record in watch.poll(0.05):
            event = decode(record.value, registry)
            if event.campaign_id != campaign_id:
                continue
            now = time.perf_counter() - started
            if event.type == "GenerationFinished":
                generated = event["count"]
                marks["generated"] = now
                marks["generation_wall_s"] = event["wall_time_s"]
            elif event.type == "CandidatePredicted":
                predicted += 1
                if predicted == generated:
                    marks["predicted"] = now
            elif event.type == "DftRequested":
                marks["dft_requested"] = now
        if time.perf_counter() - started > 1800:
            raise TimeoutError("round did not finish in 30 min")
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    for runner in runners:
        runner.close()
    watch.close()
    marks["candidates"] = generated
    return marks


def start_broker(run_dir: Path) -> str:
    env = {**os.environ, "MATERIALABS_RUN_DIR": str(run_dir)}
    subprocess.run(["bash", str(REPO / "infra/kafka/start.sh")], env=env, check=True)
    return (run_dir / "kafka" / "bootstrap").read_text().strip()


def report(name: str, marks: dict[str, float]) -> float:
    total = marks["dft_requested"]
    rate = marks["candidates"] / total
    print(f"{name:9s} {int(marks['candidates']):6d} candidates in {total:6.1f} s = "
          f"{rate:7.1f} screened/s  (generation {marks['generation_wall_s']:.1f} s, "
          f"all predicted at {marks['predicted']:.1f} s, batch chosen at {total:.1f} s)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: start one)")
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="300 candidates")
    args = parser.parse_args()
    n = 300 if args.quick else args.candidates
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MATERIALABS_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("MATERIALABS_KAFKA", None)
        from materialabs.bus.embedded import EmbeddedBus
        from materialabs.bus.kafka import KafkaBus
        from materialabs.platform import ensure_platform, publish_default_model

        publish_default_model(ensure_platform())
        run_dir = Path(tmp) / "run"
        bootstrap = args.bootstrap or start_broker(run_dir)
        try:
            embedded = report("embedded", run_round(EmbeddedBus(Path(tmp) / "bus"), n))
            kafka = report("kafka", run_round(KafkaBus(bootstrap), n))
        finally:
            if not args.bootstrap:
                subprocess.run(["bash", str(REPO / "infra/kafka/stop.sh")],
                               env={**os.environ, "MATERIALABS_RUN_DIR": str(run_dir)})
    print(f"kafka / embedded: {kafka / embedded:.2f}x; target ≥ 1,000 screened/s through the "
          f"broker: {'met' if kafka >= 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
