// One material: /optimade/v1/structures/{id} drawn as lattice, sites, a picture of the cell,
// properties with σ, provenance linking to the ledger, and downloads.
import { api, optimade } from "./api.js";
import { header } from "./nav.js";
import { colour, drawStructure, fractional, latticeParameters } from "./structure.js";
import { cell, clear, el, formula, hideStatus, isNumber, number, pageLink, param, quantity, showStatus, table } from "./ui.js";

const $ = (id) => document.getElementById(id);

function definitions(node, pairs) {
  clear(node, pairs.filter(([, value]) => value !== undefined).map(([term, value]) => [
    el("dt", {}, term), el("dd", {}, value ?? "—"),
  ]));
}

// species name -> its chemical symbol (OPTIMADE `species` lists them; a site's species name
// usually is the symbol itself).
function symbolOf(speciesList) {
  const map = new Map();
  for (const s of speciesList || []) {
    if (s && s.name) map.set(s.name, (s.chemical_symbols || [s.name])[0]);
  }
  return (name) => map.get(name) ?? String(name).replace(/[^A-Za-z].*$/, "");
}

function render(item) {
  const a = item.attributes || {};
  const reduced = a.chemical_formula_reduced;
  document.title = `${reduced || item.id} · MateriaLabs explorer`;
  clear($("title"), formula(a.chemical_formula_descriptive || reduced), " ",
    el("span", { class: "muted mono", style: "font-size: .9rem" }, item.id));
  const spacegroup = a._materialabs_spacegroup_number;
  $("subtitle").textContent = [
    spacegroup ? `space group ${spacegroup}` : null,
    a._materialabs_crystal_system,
    isNumber(a.nsites) ? `${a.nsites} sites` : null,
    a.elements ? `elements ${a.elements.join(", ")}` : null,
  ].filter(Boolean).join(" · ");

  definitions($("properties"), [
    ["Formation energy", quantity(a._materialabs_formation_energy_per_atom, "eV/atom", a._materialabs_formation_energy_sigma)],
    ["Band gap", quantity(a._materialabs_band_gap, "eV", a._materialabs_band_gap_sigma)],
    ["Energy above hull", quantity(a._materialabs_e_above_hull, "eV/atom")],
    ["Space group", spacegroup ?? "—"],
    ["Crystal system", a._materialabs_crystal_system ?? "—"],
    ["Reduced formula", formula(reduced)],
  ]);

  const sequence = a._materialabs_ledger_sequence;
  const campaign = a._materialabs_campaign_id;
  const mp = a._materialabs_mp_id;
  definitions($("provenance"), [
    ["Source", a._materialabs_source_kind ?? "—"],
    ["Lab", a._materialabs_lab ?? "—"],
    ["Content CID", a._materialabs_cid ? el("code", {}, a._materialabs_cid) : "—"],
    ["Ledger entry", isNumber(sequence)
      ? el("a", { href: `ledger.html#entry-${sequence}`, id: "ledger-link" }, `entry ${sequence} and its inclusion proof`)
      : "not recorded"],
    ["Campaign", campaign ? pageLink("campaign.html", { id: campaign }, campaign) : "—"],
    ["Materials Project", mp ? el("code", {}, mp) : "not matched to a Materials Project entry"],
    ["Round", a._materialabs_round ?? undefined],
    ["DFT status", a._materialabs_status ?? undefined],
    ["Promoted", a._materialabs_promoted ? a._materialabs_promoted.replace(/_/g, " ") : undefined],
    ["Same crystal", a._materialabs_candidate_id
      ? pageLink("index.html", { filter: `_materialabs_candidate_id = "${a._materialabs_candidate_id}"` },
        "every observation of this crystal (upload, prediction, DFT)")
      : undefined],
  ]);

  clear($("downloads"),
    [["cif", "CIF"], ["poscar", "POSCAR"], ["json", "pymatgen JSON"]].map(([format, label]) =>
      el("a", { class: "button secondary", href: api.downloadUrl(item.id, format), download: "" }, label)));

  const vectors = a.lattice_vectors;
  const positions = a.cartesian_site_positions || [];
  const sites = a.species_at_sites || [];
  const symbol = symbolOf(a.species);
  if (Array.isArray(vectors) && vectors.length === 3 && vectors.every((v) => v.every(isNumber))) {
    const p = latticeParameters(vectors);
    definitions($("lattice"), [
      ["a, b, c", `${number(p.a, 4)} Å, ${number(p.b, 4)} Å, ${number(p.c, 4)} Å`],
      ["α, β, γ", `${number(p.alpha, 2)}°, ${number(p.beta, 2)}°, ${number(p.gamma, 2)}°`],
      ["Volume", `${number(p.volume, 3)} Å³`],
      ["Periodic", (a.dimension_types || []).map((d) => (d ? "yes" : "no")).join(", ") || "—"],
    ]);
    clear($("vectors"), table("Lattice vectors (Å, Cartesian)", ["", ["x", "num"], ["y", "num"], ["z", "num"]],
      vectors.map((v, i) => el("tr", {}, el("th", { scope: "row" }, "abc"[i]), v.map((x) => cell(number(x, 4), "num"))))));
    const fracs = fractional(vectors, positions);
    clear($("sites"), table(`${sites.length} sites`, [
      ["#", "num"], "Species", ["x (frac)", "num"], ["y (frac)", "num"], ["z (frac)", "num"],
      ["x (Å)", "num"], ["y (Å)", "num"], ["z (Å)", "num"],
    ], sites.map((name, i) => el("tr", {},
      cell(String(i + 1), "num"), cell(name),
      (fracs[i] || []).map((x) => cell(number(x, 4), "num")),
      (positions[i] || []).map((x) => cell(number(x, 4), "num"))))));
    const symbols = sites.map(symbol);
    clear($("picture"), drawStructure(vectors, symbols, positions,
      `Unit cell of ${reduced || item.id} with ${sites.length} sites`));
    clear($("legend"), [...new Set(symbols)].sort().map((s) =>
      el("li", {}, el("span", { class: "swatch", style: `background: ${colour(s)}`, "aria-hidden": "true" }), s)));
  } else {
    definitions($("lattice"), [["Lattice", "not given for this entry"]]);
    clear($("sites"), el("p", { class: "muted" }, "No site positions for this entry."));
  }
  $("material").hidden = false;
}

async function main() {
  header(null);
  const id = param("id");
  const status = $("status");
  if (!id) {
    showStatus(status, "error", "No material id in the address.", "Open a material from the search page: material.html?id=ID");
    return;
  }
  showStatus(status, "loading", "Loading…");
  try {
    const body = await optimade.structure(id);
    if (!body.data) {
      showStatus(status, "empty", `No material with id ${id}.`);
      return;
    }
    hideStatus(status);
    render(body.data);
  } catch (error) {
    showStatus(status, "error", error.status === 404 ? `No material with id ${id}.` : error.message);
  }
}

main();
