"""Candidates screened per second, end to end: generate → predict → acquire.

One campaign round of N candidates goes through the generator, predictor and
acquisition services (the real handlers and runtime) over the real Kafka broker, and the
same round over the embedded bus as the baseline. "Screened" means: generated, scored by
the GNN ensemble (mean ± σ) and ranked by the acquisition policy, which then emits its
DFT batch. Each stage's share of the time is printed so the bottleneck is visible.

Three timed rounds: `embedded` and `kafka` run the three services in threads of this one
process (each polls on its own), so their ratio compares the transports; `kafka x3` runs
each service as its own `materialabs serve` process, as deployed, and prints each
process's CPU seconds. In one process the services share the GIL (about one core), so
`kafka x3` is the figure for the target.

Before the timed rounds an untimed warm-up round with another seed loads what a
long-running service holds anyway (datasets, the substitution model, the GNN, imports);
before each threaded round the per-composition caches (oxidation states, phase diagrams
of chemical systems) are emptied, so neither profits from the other's work on the same
candidates. The processes get their own warm-up round.

    python benchmarks/loop.py                      # starts its own broker (infra/kafka)
    python benchmarks/loop.py --candidates 1000 --threads-only
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


SEED = 11
STAGES = ("generator", "predictor", "acquisition")


def campaign(n: int, seed: int = SEED):
    from materialabs.campaign import Campaign, Target

    return Campaign(name="bench-loop", elements=tuple(ELEMENTS),
                    targets=(Target("formation_energy_per_atom", "minimize"),),
                    methods=("saps",), policy="ucb", dft_budget=20, rounds=1,
                    candidates_per_round=n, max_sites=12, seed=seed)


def forget_compositions() -> None:
    """Empty the caches keyed by composition or chemical system (see the module doc)."""
    from materialabs import ports
    from materialabs.generate import chem

    for cached in (chem.oxidation_guess, chem.reduced_formula, chem._balanced):
        cached.cache_clear()
    ports.hull.cache_clear()  # a new HullReference: no phase diagrams built yet


def drive(runner, stop: threading.Event, busy: dict[str, float]) -> None:
    """``runner.run`` that also sums the seconds spent on batches (wall clock)."""
    name = runner.spec.name
    while not stop.is_set():
        began = time.perf_counter()
        if runner.step(0.05):
            busy[name] = busy.get(name, 0.0) + time.perf_counter() - began


def run_round(bus, n: int, seed: int = SEED) -> dict[str, float]:
    """One round through the three services, each in a thread of this process."""
    from materialabs.bootstrap import services as load_services
    from materialabs.runtime import ServiceRunner

    forget_compositions()
    specs = [s for s in load_services() if s.name in STAGES]
    runners = [ServiceRunner(spec, bus) for spec in specs]
    # Each service polls in its own thread, as separate processes would: a Kafka consumer
    # that waits behind another service's long step misses heartbeats and rebalances.
    stop = threading.Event()
    busy: dict[str, float] = {}
    threads = [threading.Thread(target=drive, args=(r, stop, busy), daemon=True)
               for r in runners]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while not all(r.consumer.ready() for r in runners):  # joined their groups
        if time.monotonic() > deadline:
            raise TimeoutError("the services did not join their consumer groups in 120 s")
        time.sleep(0.05)
    cpu_started = time.process_time()
    marks = watch_round(bus, n, seed)
    marks["cpu_s"] = time.process_time() - cpu_started
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    for runner in runners:
        marks[f"{runner.spec.name}_batches"] = runner.stats.batches
        runner.close()
    marks.update({f"{name}_busy_s": seconds for name, seconds in busy.items()})
    return marks


def watch_round(bus, n: int, seed: int) -> dict[str, float]:
    """Start a campaign of one round and time its events until the DFT batch is chosen."""
    from materialabs.events import decode, default_registry, encode, new_event

    registry = default_registry()
    campaign_id = str(uuid.uuid4())
    watch = bus.consumer(f"bench-{campaign_id}", ["campaigns", "candidates.predicted",
                                                    "dft.requested"])
    start = new_event("CampaignStarted", campaign(n, seed).to_event_fields(), producer="bench",
                      campaign_id=campaign_id, key=campaign_id)
    producer = bus.producer()
    started = time.perf_counter()
    producer.send(start.topic, encode(start, registry), key=campaign_id.encode())
    producer.flush()
    marks: dict[str, float] = {}
    predicted = 0
    while "dft_requested" not in marks:
        for record in watch.poll(0.05):
            event = decode(record.value, registry)
            if event.campaign_id != campaign_id:
                continue
            now = time.perf_counter() - started
            if event.type == "GenerationFinished":
                marks["candidates"] = event["count"]
                marks["generated"] = now
                marks["generation_wall_s"] = event["wall_time_s"]
            elif event.type == "CandidatePredicted":
                predicted += 1
                marks.setdefault("first_predicted", now)
                marks["predicted"] = now
            elif event.type == "DftRequested":
                marks["dft_requested"] = now
        if time.perf_counter() - started > 1800:
            raise TimeoutError("round did not finish in 30 min")
    watch.close()
    if predicted != marks["candidates"]:
        raise RuntimeError(f"{predicted} predictions seen for {marks['candidates']} candidates")
    return marks


def wait_until_quiet(bus, quiet_s: float = 3.0, limit_s: float = 600.0) -> None:
    """Return once no event has appeared on the loop's topics for ``quiet_s`` seconds."""
    watch = bus.consumer(f"bench-quiet-{uuid.uuid4()}", ["campaigns", "candidates.generated",
                                                          "candidates.predicted",
                                                          "dft.requested"])
    began = last = time.perf_counter()
    while time.perf_counter() - last < quiet_s:
        if watch.poll(0.2):
            last = time.perf_counter()
        if time.perf_counter() - began > limit_s:
            raise TimeoutError(f"the services were still busy after {limit_s:.0f} s")
    watch.close()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_round_processes(bootstrap: str, n: int, logs: Path) -> dict[str, float]:
    """The round through three `materialabs serve` processes, as deployed (distributed).

    An untimed warm-up campaign (another seed) goes through them first, so each process
    has loaded its datasets and model; their CPU seconds are read from /proc.
    """
    from materialabs.bus.kafka import KafkaBus

    env = {**os.environ, "MATERIALABS_KAFKA": bootstrap}
    procs = {}
    for name in STAGES:
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        procs[name] = (subprocess.Popen(
            [sys.executable, "-m", "materialabs", "serve", name, "--group", f"{name}-proc"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    bus = KafkaBus(bootstrap)
    try:
        watch_round(bus, min(n, 200), SEED + 1)
        # New consumer groups start at the topics' beginning, so the processes also redo
        # the thread runs' campaigns: let them finish before the timed round.
        wait_until_quiet(bus)
        before = {name: process_cpu_s(proc.pid) for name, (proc, _) in procs.items()}
        marks = watch_round(bus, n, SEED)
        for name, (proc, _) in procs.items():
            marks[f"{name}_cpu_s"] = process_cpu_s(proc.pid) - before[name]
    finally:
        for proc, _log in procs.values():
            proc.terminate()
        for proc, log in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        bus.close()
    marks["cpu_s"] = sum(marks.get(f"{name}_cpu_s", 0.0) for name in STAGES)
    return marks


def start_broker(run_dir: Path) -> str:
    env = {**os.environ, "MATERIALABS_RUN_DIR": str(run_dir)}
    subprocess.run(["bash", str(REPO / "infra/kafka/start.sh")], env=env, check=True)
    return (run_dir / "kafka" / "bootstrap").read_text().strip()


def report(name: str, marks: dict[str, float]) -> float:
    total = marks["dft_requested"]
    rate = marks["candidates"] / total
    print(f"{name:9s} {int(marks['candidates']):6d} candidates in {total:6.2f} s = "
          f"{rate:7.1f} screened/s")
    print(f"          generation done at {marks['generated']:.2f} s "
          f"(handler {marks['generation_wall_s']:.2f} s); first prediction at "
          f"{marks['first_predicted']:.2f} s, all at {marks['predicted']:.2f} s; "
          f"DFT batch chosen at {total:.2f} s; CPU {marks['cpu_s']:.1f} s "
          f"({marks['cpu_s'] / total:.2f} cores)")
    if f"{STAGES[0]}_batches" in marks:
        print("          busy (wall s / batches): " + ", ".join(
            f"{stage} {marks.get(stage + '_busy_s', 0.0):.2f} s / "
            f"{int(marks[stage + '_batches'])}" for stage in STAGES))
    else:
        print("          CPU s: " + ", ".join(f"{stage} {marks[stage + '_cpu_s']:.2f}"
                                             for stage in STAGES))
        cores = os.cpu_count() or 1
        per_candidate_ms = 1000 * marks["cpu_s"] / marks["candidates"]
        # However well the stages overlap, the cores cannot do more than this.
        print(f"          CPU per candidate {per_candidate_ms:.2f} ms (" + ", ".join(
            f"{stage} {1000 * marks[stage + '_cpu_s'] / marks['candidates']:.2f}"
            for stage in STAGES) + f"): at most {1000 * cores / per_candidate_ms:.0f} "
            f"screened/s on this host's {cores} cores")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: start one)")
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="300 candidates")
    parser.add_argument("--threads-only", action="store_true",
                        help="skip the run with one process per service")
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
        processes = None
        try:
            run_round(EmbeddedBus(Path(tmp) / "warm-up"), min(n, 200), seed=SEED + 1)
            embedded = report("embedded", run_round(EmbeddedBus(Path(tmp) / "bus"), n))
            kafka = report("kafka", run_round(KafkaBus(bootstrap), n))
            if not args.threads_only:
                processes = report("kafka x3", run_round_processes(bootstrap, n, Path(tmp)))
        finally:
            if not args.bootstrap:
                subprocess.run(["bash", str(REPO / "infra/kafka/stop.sh")],
                               env={**os.environ, "MATERIALABS_RUN_DIR": str(run_dir)})
    print("embedded and kafka: the three services in threads of one process; kafka x3: one "
          "`materialabs serve` process each")
    best = max(kafka, processes or 0.0)
    print(f"kafka / embedded (both threads): {kafka / embedded:.2f}x; target >= 1,000 "
          f"screened/s through the broker: {'met' if best >= 1000 else 'NOT met'} "
          f"({best:.0f}/s)")


if __name__ == "__main__":
    main()
