"""Candidates screened per second, end to end: generate → predict → acquire.

One campaign round of N candidates goes through the generator, predictor and
acquisition services (the real handlers and runtime) over the real Kafka broker, and the
same round over the embedded bus as the baseline. "Screened" means: generated, scored by
the GNN ensemble (mean ± σ) and ranked by the acquisition policy, which then emits its
DFT batch. Each stage's share of the time is printed so the bottleneck is visible.

Timed rounds: `embedded` and `kafka` run the three services in threads of this one
process (each polls on its own), so their ratio compares the transports; `kafka x3` runs
each service as its own `materialabs serve` process, as deployed, and prints each
process's CPU seconds per candidate. In one process the services share the GIL (about
one core), so `kafka x3` is the figure for the target (CPU per screened candidate).

Baseline: the `kafka x3` round is also run, just before, by the code of an earlier commit
(`--baseline-commit`, default the commit before the work on cost per candidate, issue
#14), checked out with `git archive` into a temporary folder, on the same broker, with
the same round; the ratio of the two is printed per stage.

Before the timed rounds an untimed warm-up round with another seed loads what a
long-running service holds anyway (datasets, the substitution model, the GNN, imports);
before each threaded round the per-composition caches (oxidation states, phase diagrams
of chemical systems) are emptied, so neither profits from the other's work on the same
candidates. The processes get their own warm-up round, and their consumer groups start
at the end of the topics: they never see the thread rounds' (or the other code's)
campaigns, whose candidates are the timed round's, so their caches are as cold as the
threaded rounds'. (Until this was so, the processes first redid the `kafka` thread round
with the same seed and met every composition of the timed round warm.)

    python benchmarks/loop.py                      # starts its own broker (infra/kafka)
    python benchmarks/loop.py --candidates 1000 --threads-only
    python benchmarks/loop.py --bootstrap 127.0.0.1:9092 --candidates 2000
    python benchmarks/loop.py --candidates 1000 --processes-only   # baseline + x3 only
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


def thread_cpu_s(pid: int) -> dict[str, float]:
    """A process's CPU seconds so far by kind of thread: the interpreter's main thread
    (``main``), librdkafka's (``kafka``, named rdk:*) and the rest (``other``: torch, ...).
    Threads that ended are in none (their time is still in :func:`process_cpu_s`)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {"main": 0.0, "kafka": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        kind = "main" if task.name == str(pid) else "kafka" if name.startswith("rdk:") \
            else "other"
        found[kind] += (int(fields[11]) + int(fields[12])) / ticks
    return found


def start_at_end(bootstrap: str, groups: dict[str, list[str]]) -> None:
    """Commit each group's offsets at the current end of its topics (creating them).

    A new group would otherwise start at the topics' beginning and first redo every
    campaign already there (the thread rounds', with the timed round's candidates).
    """
    from confluent_kafka import Consumer, TopicPartition

    from materialabs.bus.kafka import KafkaBus

    bus = KafkaBus(bootstrap)
    try:
        bus.create_topics({t for topics in groups.values() for t in topics})
    finally:
        bus.close()
    for group, topics in groups.items():
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                             "enable.auto.commit": False})
        try:
            ends = []
            for topic in topics:
                partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
                for partition in sorted(partitions):
                    high = end_offset(consumer, TopicPartition(topic, partition))
                    ends.append(TopicPartition(topic, partition, high))
            consumer.commit(offsets=ends, asynchronous=False)
        finally:
            consumer.close()


def end_offset(consumer, partition, limit_s: float = 60.0) -> int:
    """The partition's high watermark (a topic created a moment ago may have no leader yet)."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + limit_s
    while True:
        try:
            return consumer.get_watermark_offsets(partition, timeout=10)[1]
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_round_processes(bootstrap: str, n: int, logs: Path, code: Path = REPO,
                        label: str = "proc", profile_dir: Path | None = None
                        ) -> dict[str, float]:
    """The round through three `materialabs serve` processes, as deployed (distributed).

    ``code`` is the source tree they run (this one, or a baseline checkout). An untimed
    warm-up campaign (another seed) goes through them first, so each process has loaded
    its datasets and model; their CPU seconds are read from /proc. With ``profile_dir``
    each process runs under cProfile and leaves ``<stage>.prof`` there (warm-up included).
    """
    from materialabs.bootstrap import services as load_services
    from materialabs.bus.kafka import KafkaBus

    env = {**os.environ, "MATERIALABS_KAFKA": bootstrap, "PYTHONPATH": str(code)}
    run_id = uuid.uuid4().hex[:8]
    marks: dict[str, float] = {}
    groups = {f"{s.name}-{label}-{run_id}": s.input_topics
              for s in load_services(STAGES)}
    start_at_end(bootstrap, groups)
    procs = {}
    for name, group in zip(STAGES, groups, strict=True):
        log = open(logs / f"{name}-{label}.log", "w")  # noqa: SIM115 - closed with the process
        profile = ["-m", "cProfile", "-o", str(profile_dir / f"{name}.prof")] \
            if profile_dir is not None else []
        procs[name] = (subprocess.Popen(
            [sys.executable, *profile, "-m", "materialabs", "serve", name, "--group", group],
            cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    bus = KafkaBus(bootstrap)
    try:
        watch_round(bus, min(n, 200), SEED + 1)
        wait_until_quiet(bus)
        # What each process burns with nothing to do (client threads, heartbeats, polls):
        # part of every figure below, in proportion to the round's wall time.
        idle_from = {name: process_cpu_s(proc.pid) for name, (proc, _) in procs.items()}
        time.sleep(IDLE_PROBE_S)
        for name, (proc, _) in procs.items():
            marks[f"{name}_idle"] = (process_cpu_s(proc.pid) - idle_from[name]) / IDLE_PROBE_S
        before = {name: process_cpu_s(proc.pid) for name, (proc, _) in procs.items()}
        threads_before = {name: thread_cpu_s(proc.pid) for name, (proc, _) in procs.items()}
        load_before = os.getloadavg()[0]
        marks.update(watch_round(bus, n, SEED))
        for name, (proc, _) in procs.items():
            marks[f"{name}_cpu_s"] = process_cpu_s(proc.pid) - before[name]
            for kind, seconds in thread_cpu_s(proc.pid).items():
                marks[f"{name}_{kind}_thread_s"] = seconds - threads_before[name][kind]
        marks["load"] = (load_before + os.getloadavg()[0]) / 2
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
    for name in STAGES:
        batches = final_stats(logs / f"{name}-{label}.log", name).get("batches")
        if batches is not None:
            marks[f"{name}_polled"] = batches
    marks["cpu_s"] = sum(marks.get(f"{name}_cpu_s", 0.0) for name in STAGES)
    return marks


def final_stats(log: Path, name: str) -> dict[str, int]:
    """The run statistics a `materialabs serve` process prints as it stops (warm-up and
    timed round together), or {} where its log has none (older code, a crash)."""
    import ast

    prefix = f"{name}: {{"
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith(prefix):
            try:
                return dict(ast.literal_eval(line[len(name) + 2:]))
            except (ValueError, SyntaxError):
                return {}
    return {}


IDLE_PROBE_S = 3.0


def baseline_checkout(commit: str, folder: Path) -> Path | None:
    """The source tree of ``commit`` (git archive), or None where git cannot give it."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit],
                             capture_output=True)
    if archive.returncode != 0:
        print(f"baseline: commit {commit} not available "
              f"({archive.stderr.decode().strip()}); no same-run baseline")
        return None
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def per_candidate_ms(marks: dict[str, float]) -> dict[str, float]:
    count = marks["candidates"]
    return {"total": 1000 * marks["cpu_s"] / count,
            **{stage: 1000 * marks[f"{stage}_cpu_s"] / count for stage in STAGES}}


def compare(baseline: dict[str, float], current: dict[str, float], commit: str) -> None:
    old, new = per_candidate_ms(baseline), per_candidate_ms(current)
    print(f"CPU per candidate, baseline {commit} -> this tree (ms, load average "
          f"{baseline['load']:.1f} / {current['load']:.1f}): " + ", ".join(
              f"{key} {old[key]:.2f} -> {new[key]:.2f} ({old[key] / new[key]:.2f}x)"
              for key in ("total", *STAGES)))


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
                                             for stage in STAGES)
              + f" (load average {marks['load']:.1f})")
        if all(f"{stage}_polled" in marks for stage in STAGES):
            print("          batches polled (warm-up and timed round): " + ", ".join(
                f"{stage} {int(marks[stage + '_polled'])}" for stage in STAGES))
        if all(f"{stage}_idle" in marks for stage in STAGES):
            print("          idle CPU (ms per s of wall, measured before the round): " + ", ".join(
                f"{stage} {1000 * marks[stage + '_idle']:.0f}" for stage in STAGES))
        if all(f"{stage}_main_thread_s" in marks for stage in STAGES):
            print("          CPU per candidate by thread (ms, main / librdkafka / other): "
                  + ", ".join(f"{stage} " + " / ".join(
                      f"{1000 * marks[f'{stage}_{kind}_thread_s'] / marks['candidates']:.2f}"
                      for kind in ("main", "kafka", "other")) for stage in STAGES))
        cores = os.cpu_count() or 1
        per_candidate_ms = 1000 * marks["cpu_s"] / marks["candidates"]
        # However well the stages overlap, the cores cannot do more than this.
        print(f"          CPU per candidate {per_candidate_ms:.2f} ms (" + ", ".join(
            f"{stage} {1000 * marks[stage + '_cpu_s'] / marks['candidates']:.2f}"
            for stage in STAGES) + f"): at most {1000 * cores / per_candidate_ms:.0f} "
            f"screened/s on this host's {cores} cores")
    return rate


# The commit before the work on issue #14 (cost per candidate): the default baseline.
BASELINE_COMMIT = "6437959"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: start one)")
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="300 candidates")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--threads-only", action="store_true",
                       help="skip the runs with one process per service")
    modes.add_argument("--processes-only", action="store_true",
                       help="skip the threaded rounds (embedded and kafka)")
    parser.add_argument("--profile-dir", type=Path,
                        help="run this tree's x3 processes under cProfile, writing "
                             "<stage>.prof here (slower; the figures are then not comparable)")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT,
                        help="commit whose code runs the baseline x3 round (default "
                             f"{BASELINE_COMMIT}); 'none' skips it")
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
        processes = baseline = None
        embedded = kafka = 0.0
        try:
            if not args.processes_only:
                run_round(EmbeddedBus(Path(tmp) / "warm-up"), min(n, 200), seed=SEED + 1)
                embedded = report("embedded", run_round(EmbeddedBus(Path(tmp) / "bus"), n))
                kafka = report("kafka", run_round(KafkaBus(bootstrap), n))
            if not args.threads_only:
                old_code = None
                if args.baseline_commit != "none":
                    old_code = baseline_checkout(args.baseline_commit, Path(tmp) / "baseline")
                if old_code is not None:
                    baseline = run_round_processes(bootstrap, n, Path(tmp), old_code, "base")
                    report(f"x3 {args.baseline_commit[:7]}", baseline)
                if args.profile_dir is not None:
                    args.profile_dir.mkdir(parents=True, exist_ok=True)
                processes = run_round_processes(bootstrap, n, Path(tmp),
                                                profile_dir=args.profile_dir)
                report("kafka x3", processes)
        finally:
            if not args.bootstrap:
                subprocess.run(["bash", str(REPO / "infra/kafka/stop.sh")],
                               env={**os.environ, "MATERIALABS_RUN_DIR": str(run_dir)})
    if not args.processes_only:
        print("embedded and kafka: the three services in threads of one process; kafka x3: "
              "one `materialabs serve` process each")
        print(f"kafka / embedded (both threads): {kafka / embedded:.2f}x")
    if baseline is not None and processes is not None:
        compare(baseline, processes, args.baseline_commit[:7])
    if processes is not None:
        total = per_candidate_ms(processes)["total"]
        best = max(kafka, processes["candidates"] / processes["dft_requested"])
        print(f"targets: CPU per candidate <= 2 ms (generate + predict + acquire): "
              f"{'met' if total <= 2 else 'NOT met'} ({total:.2f} ms); >= 1,000 screened/s "
              f"through the broker: {'met' if best >= 1000 else 'NOT met'} ({best:.0f}/s)")


if __name__ == "__main__":
    main()
