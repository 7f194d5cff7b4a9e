"""A campaign cut at its wall-time budget writes a partial report and, resumed in the same
home, ends as the uninterrupted run of the same file and seed does."""

from __future__ import annotations

import json

from materialabs import progress
from materialabs.campaign import load_campaign
from materialabs.loop import RUN_RECORD, find_run, run_campaign
from tests.e2e.reference import CAMPAIGN


class _Counts(progress.Silent):
    """Counts what the watcher reports: the test's budget clock reads it."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}

    def advance(self, stage: str, n: int = 1) -> None:
        self.done[stage] = self.done.get(stage, 0) + n


def test_a_campaign_cut_after_its_first_round_resumes_to_the_uninterrupted_result(
        embedded, tmp_path, monkeypatch):
    _, reference = embedded
    home = tmp_path / "home"
    for name in ("MATERIALABS_KAFKA", "MATERIALABS_IPFS", "MATERIALABS_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MATERIALABS_HOME", str(home))
    campaign = load_campaign(CAMPAIGN)
    assert campaign.rounds == 2
    seen = _Counts()
    # The budget runs out as soon as the first round's DFT jobs are all done: its retraining
    # and the second round are left to the resumed run.
    cut = run_campaign(campaign, home=home, progress=seen, timeout_s=60,
                       budget_clock=lambda: 1e9 if seen.done.get("dft", 0) >= 3 else 0.0)
    assert cut.partial and cut.finished is None, "the campaign was not cut"
    assert campaign.batch_size == 3 and len(cut.dft_requests) == 3
    assert cut.counts["RoundStarted"] == 0, "the cut came after the second round began"
    summary = cut.report.read_text()
    assert summary.startswith("# Campaign report: e2e-small (partial)")
    assert "materialabs run --resume" in summary
    assert "(partial)" in (cut.report.parent / "summary.html").read_text()
    record = json.loads((cut.report.parent / RUN_RECORD).read_text())
    assert record["status"] == "partial" and record["campaign_id"] == cut.campaign_id
    assert find_run(home).campaign_id == cut.campaign_id  # the home's one unfinished run

    again = find_run(cut.report.parent)
    resumed = run_campaign(again.campaign_spec(), home=again.home, progress=False,
                           timeout_s=900, campaign_id=again.campaign_id, resume=True,
                           wall_time_before_s=again.wall_time_s)
    assert resumed.finished is not None and not resumed.partial
    assert resumed.report == cut.report
    assert resumed.counts["CampaignStarted"] == 1, "resuming started the campaign again"
    assert len(set(resumed.dft_requests)) == len(resumed.dft_requests), "a DFT job ran twice"
    assert resumed.counts["DftCompleted"] == len(resumed.dft_requests)
    assert sorted(resumed.dft_requests) == sorted(reference.dft_requests)
    assert sorted(resumed.promoted) == sorted(reference.promoted)
    assert resumed.finished["status"] == reference.finished["status"]
    assert resumed.wall_time_s > again.wall_time_s
    assert "(partial)" not in resumed.report.read_text()
    assert json.loads((cut.report.parent / RUN_RECORD).read_text())["status"] == "finished"
