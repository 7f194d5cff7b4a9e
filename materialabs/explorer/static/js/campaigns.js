// The campaign list: /api/v1/campaigns.
import { api } from "./api.js";
import { header } from "./nav.js";
import { cell, clear, dateTime, el, hideStatus, pageLink, showStatus, table } from "./ui.js";

const $ = (id) => document.getElementById(id);

async function main() {
  header("campaigns.html");
  const status = $("status");
  showStatus(status, "loading", "Loading…");
  try {
    const body = await api.campaigns();
    const campaigns = body.campaigns || [];
    if (!campaigns.length) {
      showStatus(status, "empty", "No campaigns yet.", "Run one with: materialabs run CAMPAIGN.toml");
      return;
    }
    hideStatus(status);
    clear($("campaigns"), table(`${campaigns.length} campaign${campaigns.length === 1 ? "" : "s"}`, [
      "Name", ["Rounds", "num"], ["DFT calls", "num"], ["Promoted", "num"], "Started",
    ], campaigns.map((c) => el("tr", {},
      cell(pageLink("campaign.html", { id: c.campaign_id }, c.name || c.campaign_id)),
      cell(String(c.rounds ?? "—"), "num"),
      cell(String(c.dft_calls ?? "—"), "num"),
      cell(String(c.promoted ?? "—"), "num"),
      cell(dateTime(c.started_at_ms))))));
  } catch (error) {
    showStatus(status, "error", error.message);
  }
}

main();
