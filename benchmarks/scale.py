"""A distributed campaign with one instance per service, and scaled out; the takeover time.

Each configuration gets its own fresh stack through `infra/up.sh` with its SCALE, as
`make up SCALE=...` would (Kafka, Kubo, the services as processes), runs the same campaign
with `--distributed`'s code path, and stops the stack with `infra/down.sh`. The baseline
is one instance of every service; the scaled run's wall time is printed as a ratio to it,
and both runs must make the same DFT requests and promotions. Then, on the scaled stack
(idle after its campaign), the leader of each single-active service is SIGKILLed in turn
and the time until its standby consumes is printed: the lease's session timeout plus
starting the runner.

    python benchmarks/scale.py                       # campaigns/perovskite-oxides.toml
    python benchmarks/scale.py --quick               # tests/e2e/small.toml
    python benchmarks/scale.py --scale "predictor=3 dft_runner=2 acquisition=2"
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SINGLE_ACTIVE = ("ingest", "acquisition", "retrainer", "ledger")
SERVICES = ("ingest", "generator", "predictor", "acquisition", "dft_runner", "retrainer",
            "ledger")
DEFAULT_SCALE = " ".join(f"{name}=2" for name in SERVICES)


def _env(run: Path, scale: str) -> dict[str, str]:
    env = {**os.environ, "MATERIALABS_RUN_DIR": str(run), "SCALE": scale,
           "PYTHONPATH": str(REPO)}
    for name in ("MATERIALABS_KAFKA", "MATERIALABS_IPFS", "MATERIALABS_STORE"):
        env.pop(name, None)
    return env


def _script(name: str, env: dict[str, str]) -> None:
    result = subprocess.run(["bash", str(REPO / "infra" / name)], env=env, capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"infra/{name} failed: {result.stderr.strip().splitlines()[-1:]}")


def _leaders(bootstrap: str) -> dict[str, str]:
    from materialabs.runtime.leadership import lease_holders

    return {k: v for k, v in lease_holders(bootstrap, SINGLE_ACTIVE).items() if v}


def _wait_for_leaders(bootstrap: str, limit_s: float = 180) -> float:
    started = time.monotonic()
    while set(_leaders(bootstrap)) != set(SINGLE_ACTIVE):
        if time.monotonic() - started > limit_s:
            raise SystemExit(f"no leader for every single-active service in {limit_s:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - started


def _campaign(path: Path, run: Path):
    from materialabs.campaign import load_campaign
    from materialabs.loop import run_campaign

    bootstrap = (run / "kafka" / "bootstrap").read_text().strip()
    os.environ.update({"MATERIALABS_HOME": str(run / "home"), "MATERIALABS_KAFKA": bootstrap,
                       "MATERIALABS_IPFS": (run / "ipfs" / "api").read_text().strip()})
    os.environ.pop("MATERIALABS_STORE", None)
    return run_campaign(load_campaign(path), home=run / "home", distributed=True,
                        progress=False, timeout_s=1800)


def _leading_after(log: Path, moment: datetime) -> datetime | None:
    for match in re.finditer(r"^(\S+ \S+) .*: leading ", log.read_text(), re.MULTILINE):
        when = datetime.fromisoformat(match.group(1))
        if when > moment:
            return when
    return None


def _takeovers(run: Path) -> dict[str, float]:
    """SIGKILL each single-active service's leader; seconds until its standby consumes."""
    bootstrap = (run / "kafka" / "bootstrap").read_text().strip()
    figures = {}
    for service in SINGLE_ACTIVE:
        holder = _leaders(bootstrap).get(service)
        if holder is None:
            continue
        instance, pid = holder.split("/")
        os.kill(int(pid), signal.SIGKILL)
        killed = datetime.now()
        standbys = [p for p in (run / "logs").glob(f"{service}-*.log")
                    if p.stem != instance]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            resumed = [t for t in (_leading_after(p, killed) for p in standbys) if t]
            if resumed:
                figures[service] = (min(resumed) - killed).total_seconds()
                break
            time.sleep(0.2)
    return figures


def run_config(label: str, scale: str, campaign: Path, takeover: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"scale-{label.replace(' ', '-')}-") as tmp:
        run = Path(tmp) / "run"
        env = _env(run, scale)
        began = time.monotonic()
        _script("up.sh", env)
        bootstrap = (run / "kafka" / "bootstrap").read_text().strip()
        try:
            _wait_for_leaders(bootstrap)
            ready_s = time.monotonic() - began
            instances = len(list((run / "services").glob("*.pid")))
            outcome = _campaign(campaign, run)
            figures = _takeovers(run) if takeover else {}
        finally:
            _script("down.sh", env)
    return {"label": label, "instances": instances,
            "ready_s": ready_s, "wall_s": outcome.wall_time_s, "outcome": outcome,
            "takeover": figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", type=Path,
                        default=REPO / "campaigns" / "perovskite-oxides.toml")
    parser.add_argument("--quick", action="store_true", help="the e2e tests' small campaign")
    parser.add_argument("--scale", default=DEFAULT_SCALE, help=f"default: {DEFAULT_SCALE!r}")
    args = parser.parse_args()
    campaign = REPO / "tests" / "e2e" / "small.toml" if args.quick else args.campaign
    print(f"campaign {campaign.relative_to(REPO)}; load average {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores", flush=True)
    baseline = run_config("one each", "", campaign, takeover=False)
    scaled = run_config("scaled", args.scale, campaign, takeover=True)
    same = (sorted(baseline["outcome"].dft_requests) == sorted(scaled["outcome"].dft_requests)
            and sorted(baseline["outcome"].promoted) == sorted(scaled["outcome"].promoted))
    print(f"scaled: SCALE={args.scale!r}")
    print(f"{'configuration':<14} {'instances':>9} {'stack ready':>12} {'campaign':>9} "
          f"{'ratio':>6}")
    for row in (baseline, scaled):
        print(f"{row['label']:<14} {row['instances']:>9} {row['ready_s']:>10.1f} s "
              f"{row['wall_s']:>7.1f} s {row['wall_s'] / baseline['wall_s']:>6.2f}")
    print(f"same DFT requests and promotions: {'yes' if same else 'NO'} "
          f"({len(scaled['outcome'].dft_requests)} requests, "
          f"{len(scaled['outcome'].promoted)} promotions)")
    print("takeover after SIGKILL of the leader (idle stack): "
          + ", ".join(f"{name} {s:.1f} s" for name, s in scaled["takeover"].items()))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
