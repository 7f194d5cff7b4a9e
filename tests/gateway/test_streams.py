"""GET /v1/stream/candidates (Server-Sent Events) over a real uvicorn gateway and a home
whose catalog the real catalog handlers write while streams are open; and `subscribe --url`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server

from materialabs.catalog import Catalog
from materialabs.cli import main
from materialabs.cli.subscribe_url import messages
from materialabs.crystals import Crystal
from materialabs.events.types import CandidatePredicted, CandidatePromoted
from materialabs.runtime import Context, dispatch
from services.catalog.handlers import HANDLERS, CatalogPorts

CAMPAIGN = "00000000-0000-4000-8000-0000000000aa"
WIDE = "_materialabs_band_gap >= 1"
TIMEOUT_S = 30.0  # generous: only a bound on a broken stream, never a timing assertion


class Home:
    """A home whose catalog is written through the catalog service's handlers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ctx = Context("catalog", {}, CatalogPorts(catalog=Catalog(root / "catalog")))
        self.made = 0

    def promote(self, gap: float, hold_prediction: bool = False) -> Any:
        """A predicted and promoted candidate (a distinct cubic SrTiO3 cell) with this gap;
        ``hold_prediction``: only the promotion now, and a function projecting the rest."""
        edge = 3.8 + 0.01 * self.made
        self.made += 1
        crystal = Crystal.from_arrays([[edge, 0, 0], [0, edge, 0], [0, 0, edge]],
                                      ["Sr", "Ti", "O", "O", "O"],
                                      [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0],
                                       [0.5, 0, 0.5], [0, 0.5, 0.5]])
        key = crystal.content_key()
        drafts = [
            CandidatePredicted(candidate_id=key, crystal=crystal.as_record(), model_cid="bafy-m",
                               round=0, predictions=[
                                   {"target": "formation_energy_per_atom", "mean": -3.4,
                                    "sigma": 0.01, "unit": "eV/atom"},
                                   {"target": "band_gap", "mean": gap, "sigma": 0.1,
                                    "unit": "eV"}]),
            CandidatePromoted(candidate_id=key, crystal=crystal.as_record(),
                              reduced_formula="SrTiO3", chemical_system="O-Sr-Ti",
                              reason="predicted_confidently", model_cid="bafy-m", values=[
                                  {"name": "band_gap", "value": gap, "unit": "eV",
                                   "sigma": 0.1, "source": "model"}]),
        ]
        events = [self.ctx.event(draft, campaign_id=CAMPAIGN) for draft in drafts]
        if hold_prediction:
            list(dispatch(HANDLERS, events[1], self.ctx))
            return key, lambda: list(dispatch(HANDLERS, events[0], self.ctx))
        for event in events:
            list(dispatch(HANDLERS, event, self.ctx))
        return key


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(tmp_path_factory.mktemp("stream-home"))


@pytest.fixture(scope="module")
def gateway(home: Home) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MATERIALABS_STREAM_HEARTBEAT_S", "0.3")
        env.setenv("MATERIALABS_STREAM_POLL_S", "0.05")
        env.setenv("MATERIALABS_STREAM_MAX", "3")
        server = Server(home.root)
    with server:
        yield server.url


def read(response: httpx.Response, want: int, heartbeats: int = 0) -> tuple[list, int]:
    """(id, data) of the next ``want`` candidate events and the heartbeats seen (one
    message iterator per response: httpx streams a body once)."""
    if not hasattr(response, "sse"):
        response.sse = messages(response.iter_lines())  # type: ignore[attr-defined]
    events: list[tuple[str | None, dict[str, Any]]] = []
    beats = 0
    deadline = time.monotonic() + TIMEOUT_S
    for event_id, kind, data in response.sse:  # type: ignore[attr-defined]
        if kind == "candidate" and data is not None:
            events.append((event_id, json.loads(data)))
        elif kind == "comment" and (data or "").startswith("heartbeat"):
            beats += 1
        if len(events) >= want and beats >= heartbeats:
            return events, beats
        assert time.monotonic() < deadline, f"only {len(events)} events, {beats} heartbeats"
    raise AssertionError("the stream ended")


def stream(url: str, text: str, last: str | None = None) -> Any:
    headers = {"Last-Event-ID": last} if last is not None else {}
    return httpx.stream("GET", f"{url}/v1/stream/candidates", params={"filter": text},
                        headers=headers, timeout=TIMEOUT_S)


def test_matching_events_in_order_then_resume_without_loss_or_duplicates(home, gateway):
    first = [home.promote(gap) for gap in (0.5, 2.0, 2.5)]
    with stream(gateway, WIDE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        seen, _ = read(response, 2)
        assert [d["candidate_id"] for _, d in seen] == first[1:]
        # Promoted while the stream is open: only the matching one comes.
        later = [home.promote(gap) for gap in (0.2, 3.0)]
        more, _ = read(response, 1)
        assert [d["candidate_id"] for _, d in more] == [later[1]]
    ids = [int(i) for i, _ in seen + more]
    assert ids == sorted(ids) and len(set(ids)) == 3
    data = more[0][1]
    assert data["reason"] == "predicted_confidently" and data["chemical_system"] == "O-Sr-Ti"
    assert data["crystal"]["species"] == ["Sr", "Ti", "O", "O", "O"] and data["entries"]

    # Disconnected after the first event: the resumed stream starts with the second.
    missed = home.promote(1.5)
    with stream(gateway, WIDE, last=seen[0][0]) as response:
        resumed, _ = read(response, 3)
    assert [d["candidate_id"] for _, d in resumed] == [first[2], later[1], missed]
    assert [i for i, _ in resumed] == [seen[1][0], more[0][0], resumed[2][0]]


def test_a_promotion_projected_before_its_prediction_is_waited_for(home, gateway):
    key, project_prediction = home.promote(7.5, hold_prediction=True)
    with stream(gateway, "_materialabs_band_gap > 7") as response:
        read(response, 0, heartbeats=2)  # the stream has seen the promotion alone
        project_prediction()
        events, _ = read(response, 1)
    assert [d["candidate_id"] for _, d in events] == [key]


def test_heartbeats_arrive_when_idle(gateway):
    with stream(gateway, "_materialabs_band_gap > 1000") as response:
        events, beats = read(response, 0, heartbeats=3)
    assert events == [] and beats >= 3


@pytest.mark.parametrize("text", ["bandgap > 1", "_materialabs_bandgap > 1",
                                  "_other_thing = 1", "elements HAS"])
def test_an_unknown_field_or_bad_filter_is_refused_before_the_stream(gateway, text):
    answer = httpx.get(f"{gateway}/v1/stream/candidates", params={"filter": text}, timeout=10)
    assert answer.status_code == 400, answer.text
    assert "filter" in answer.json()["detail"]


def test_a_bad_last_event_id_is_refused(gateway):
    answer = httpx.get(f"{gateway}/v1/stream/candidates", headers={"Last-Event-ID": "x1"},
                       timeout=10)
    assert answer.status_code == 400 and "Last-Event-ID" in answer.json()["detail"]


def test_streams_are_bounded_and_a_closed_one_frees_its_slot(gateway):
    opened = [stream(gateway, "") for _ in range(3)]
    try:
        for context in opened:
            assert context.__enter__().status_code == 200
        refused = httpx.get(f"{gateway}/v1/stream/candidates", timeout=10)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        opened.pop().__exit__(None, None, None)  # the client goes away
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            with stream(gateway, "") as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the closed stream's slot was never freed"
            time.sleep(0.2)
    finally:
        for context in opened:
            context.__exit__(None, None, None)


def test_subscribe_url_prints_and_resumes_from_its_state_file(home, gateway, tmp_path, capsys):
    state = tmp_path / "state.json"
    command = ["subscribe", "--url", gateway, "--filter", WIDE, "--format", "jsonl",
               "--idle-exit", "2", "--state", str(state)]
    assert main(command) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(printed) >= 4 and all(p["values"][0]["value"] >= 1 for p in printed)
    assert len({p["candidate_id"] for p in printed}) == len(printed)
    assert json.loads(state.read_text())[gateway].isdigit()

    assert main(command) == 0  # nothing new since
    assert capsys.readouterr().out == ""
    new = home.promote(4.0)
    assert main(command) == 0
    assert [json.loads(line)["candidate_id"]
            for line in capsys.readouterr().out.splitlines()] == [new]


def test_subscribe_url_refuses_an_unknown_field(gateway, tmp_path, capsys):
    assert main(["subscribe", "--url", gateway, "--filter", "bandgap > 1",
                 "--state", str(tmp_path / "s.json")]) == 2
    assert "bandgap" in capsys.readouterr().err


def test_subscribe_range_refuses_an_unknown_name_naming_the_known_ones(tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv("MATERIALABS_HOME", str(tmp_path))
    monkeypatch.delenv("MATERIALABS_KAFKA", raising=False)
    assert main(["subscribe", "--range", "bandgap=1:3"]) == 2
    error = capsys.readouterr().err
    assert "'bandgap'" in error and "band_gap_eV" in error and "e_above_hull" in error
