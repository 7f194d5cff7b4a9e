// One campaign: /api/v1/campaigns/{id} as a rounds table, a discovery curve against the
// random baseline, a parity plot and the promoted candidates (one row per candidate).
import { api } from "./api.js";
import { header } from "./nav.js";
import { lineChart, parityPlot } from "./plot.js";
import { cell, clear, el, formula, hideStatus, isNumber, number, pageLink, param, quantity, showStatus, table } from "./ui.js";

const $ = (id) => document.getElementById(id);

function rounds(list) {
  if (!list.length) return el("p", { class: "status empty" }, "No rounds have run yet.");
  return table(null, ["Round", ["Candidates predicted", "num"], ["DFT calls", "num"], ["Stable found", "num"]],
    list.map((r) => el("tr", {},
      cell(String(r.round)), cell(String(r.predicted ?? "—"), "num"),
      cell(String(r.dft_calls ?? "—"), "num"), cell(String(r.stable_found ?? "—"), "num"))));
}

function discovery(d) {
  const calls = d?.dft_calls || [];
  if (!calls.length) return el("p", { class: "status empty" }, "No DFT calls yet, so no discovery curve.");
  let found = d.found || [];
  let random = d.random_expected || [];
  const last = calls.length - 1;
  const summary = { calls: calls[last], found: found[last] ?? 0, random: random[last] };
  // Both curves start where every campaign starts: nothing spent, nothing found.
  let xs = calls;
  if (calls[0] > 0) {
    xs = [0, ...calls];
    found = [0, ...found];
    random = [0, ...random];
  }
  return lineChart({
    label: `Discovery curve: ${summary.found} stable found after ${summary.calls} DFT calls; `
      + `random selection would expect ${number(summary.random, 1)}`,
    caption: "Stable candidates found (DFT-confirmed) against DFT calls spent, beside what "
      + "picking candidates at random would be expected to find.",
    xLabel: "DFT calls", yLabel: "stable candidates found",
    series: [
      { key: "found", name: "this campaign", xs, ys: found, colour: "#0b5cad", step: true },
      { key: "random", name: "random baseline (expected)", xs, ys: random, colour: "#d4630b", dashed: true },
    ],
  });
}

function parity(list) {
  const points = list.filter((p) => isNumber(p.predicted) && isNumber(p.dft))
    .map((p) => ({ x: p.dft, y: p.predicted, sigma: p.sigma, label: p.reduced_formula || p.id }));
  if (!points.length) return el("p", { class: "status empty" }, "No candidate has both a prediction and a DFT result yet.");
  return parityPlot({
    label: `Parity plot of ${points.length} candidates: predicted against DFT formation energy`,
    caption: "Formation energy (eV/atom) the GNN ensemble predicted, with its ±σ, against the DFT result.",
    xLabel: "DFT formation energy (eV/atom)", yLabel: "predicted (eV/atom)", points,
  });
}

function promoted(list) {
  if (!list.length) return el("p", { class: "status empty" }, "No candidate has been promoted in this campaign.");
  return table(`${list.length} promoted candidate${list.length === 1 ? "" : "s"}`, [
    "Formula", "Space group", ["E_f (eV/atom)", "num"], ["E_hull (eV/atom)", "num"], "Materials Project", ["Round", "num"],
  ], list.map((p) => el("tr", { "data-id": p.id },
    cell(pageLink("material.html", { id: p.id }, formula(p.reduced_formula))),
    cell(p.spacegroup_number ? String(p.spacegroup_number) : "—"),
    cell(quantity(p.formation_energy_per_atom, ""), "num"),
    cell(quantity(p.e_above_hull, ""), "num"),
    cell(p.mp_id ? el("code", {}, p.mp_id) : el("span", { class: "badge new" }, "new")),
    cell(p.round === undefined || p.round === null ? "—" : String(p.round), "num"))));
}

async function main() {
  header("campaigns.html");
  const id = param("id");
  const status = $("status");
  if (!id) {
    showStatus(status, "error", "No campaign id in the address.", "Pick one on the campaigns page.");
    return;
  }
  showStatus(status, "loading", "Loading…");
  try {
    const c = await api.campaign(id);
    hideStatus(status);
    document.title = `${c.name || id} · MateriaLabs explorer`;
    $("title").textContent = c.name || id;
    const list = c.rounds || [];
    const dftCalls = list.reduce((s, r) => s + (r.dft_calls || 0), 0);
    $("subtitle").textContent = `campaign ${c.campaign_id || id} · ${list.length} round${list.length === 1 ? "" : "s"}`
      + ` · ${dftCalls} DFT call${dftCalls === 1 ? "" : "s"} · ${(c.promoted || []).length} promoted`;
    clear($("rounds"), rounds(list));
    clear($("discovery"), discovery(c.discovery));
    clear($("parity"), parity(c.parity || []));
    clear($("promoted"), promoted(c.promoted || []));
    $("campaign").hidden = false;
  } catch (error) {
    showStatus(status, "error", error.status === 404 ? `No campaign with id ${id}.` : error.message);
  }
}

main();
