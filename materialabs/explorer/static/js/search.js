// The search page: simple fields -> OPTIMADE filter -> /optimade/v1/structures, a page at a
// time. The filter and offset live in the address (?filter=...&offset=...), so a search can
// be bookmarked, shared and gone back to.
import { optimade } from "./api.js";
import { composeFilter } from "./filter.js";
import { header } from "./nav.js";
import { cell, clear, el, formula, hideStatus, number, pageLink, quantity, showStatus, table } from "./ui.js";

export const PAGE_LIMIT = 25;
const FIELDS = [
  "chemical_formula_reduced", "nsites", "_materialabs_spacegroup_number", "_materialabs_crystal_system",
  "_materialabs_formation_energy_per_atom", "_materialabs_formation_energy_sigma",
  "_materialabs_band_gap", "_materialabs_band_gap_sigma", "_materialabs_e_above_hull",
  "_materialabs_source_kind", "_materialabs_lab",
];

const $ = (id) => document.getElementById(id);

function simpleFields() {
  return {
    elements: $("elements").value,
    gapMin: $("gap-min").value,
    gapMax: $("gap-max").value,
    crystalSystem: $("crystal-system").value,
    stableOnly: $("stable").checked,
  };
}

function recompose() {
  const { filter, problems } = composeFilter(simpleFields());
  $("filter").value = filter;
  $("field-problems").textContent = problems.join("; ");
}

function row(item) {
  const a = item.attributes || {};
  const spacegroup = a._materialabs_spacegroup_number;
  const system = a._materialabs_crystal_system;
  const source = [a._materialabs_source_kind, a._materialabs_lab].filter(Boolean).join(" · ");
  return el("tr", {},
    cell(pageLink("material.html", { id: item.id }, formula(a.chemical_formula_reduced))),
    cell(spacegroup ? `${spacegroup}${system ? ` (${system})` : ""}` : "—"),
    cell(quantity(a._materialabs_formation_energy_per_atom, "", a._materialabs_formation_energy_sigma), "num"),
    cell(quantity(a._materialabs_band_gap, "", a._materialabs_band_gap_sigma), "num"),
    cell(number(a._materialabs_e_above_hull), "num"),
    cell(source || "—"));
}

function render(body, filter, offset) {
  const data = Array.isArray(body.data) ? body.data : [];
  const meta = body.meta || {};
  const total = typeof meta.data_returned === "number" ? meta.data_returned : null;
  const warnings = (meta.warnings || []).map((w) => w.detail || w.title).filter(Boolean);
  const status = $("status");
  if (warnings.length) showStatus(status, "warning", warnings.join("; "));
  else hideStatus(status);
  const section = $("results");
  section.hidden = false;
  if (!data.length) {
    clear($("results-table"));
    $("summary").textContent = "";
    showStatus(status, "empty", offset > 0 ? "No more materials on this page."
      : "No materials match this filter.", filter ? `filter: ${filter}` : null);
  } else {
    const shownTo = offset + data.length;
    $("summary").textContent = total !== null
      ? `Materials ${offset + 1}–${shownTo} of ${total}${filter ? ` matching ${filter}` : ""}`
      : `Materials ${offset + 1}–${shownTo}`;
    clear($("results-table"), table(null, [
      "Formula", "Space group", ["E_f (eV/atom)", "num"], ["Band gap (eV)", "num"],
      ["E_hull (eV/atom)", "num"], "Source",
    ], data.map(row)));
  }
  const more = meta.more_data_available ?? (total !== null ? offset + data.length < total : Boolean(body.links?.next));
  $("prev").disabled = offset <= 0;
  $("next").disabled = !more;
  const pages = total !== null ? Math.max(1, Math.ceil(total / PAGE_LIMIT)) : null;
  $("page-label").textContent = `Page ${Math.floor(offset / PAGE_LIMIT) + 1}${pages ? ` of ${pages}` : ""}`;
}

// A later search supersedes an earlier one still in flight: only the latest may draw, so a
// slow first answer (every material) never overwrites the filtered one that followed it.
let latest = 0;

async function run() {
  const ticket = ++latest;
  const params = new URLSearchParams(window.location.search);
  const filter = params.get("filter") || "";
  const sort = params.get("sort") || "";
  const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  $("filter").value = filter;
  $("sort").value = sort;
  const status = $("status");
  showStatus(status, "loading", "Searching…");
  try {
    const body = await optimade.structures({
      filter: filter || undefined,
      page_limit: PAGE_LIMIT,
      page_offset: offset || undefined,
      sort: sort || undefined,
      response_fields: FIELDS.join(","),
    });
    if (ticket === latest) render(body, filter, offset);
  } catch (error) {
    if (ticket !== latest) return;
    $("results").hidden = true;
    showStatus(status, "error", error.message, filter ? `filter: ${filter}` : null);
  }
}

function go(filter, offset, sort = $("sort").value) {
  const params = new URLSearchParams();
  if (filter) params.set("filter", filter);
  if (sort) params.set("sort", sort);
  if (offset) params.set("offset", String(offset));
  const query = params.toString();
  history.pushState(null, "", query ? `?${query}` : window.location.pathname);
  run();
}

function current() {
  const params = new URLSearchParams(window.location.search);
  return {
    filter: params.get("filter") || "",
    sort: params.get("sort") || "",
    offset: parseInt(params.get("offset") || "0", 10) || 0,
  };
}

header("index.html");
for (const id of ["elements", "gap-min", "gap-max", "crystal-system", "stable"]) {
  $(id).addEventListener("input", recompose);
  $(id).addEventListener("change", recompose);
}
$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  go($("filter").value.trim(), 0);
});
$("clear").addEventListener("click", () => {
  $("search").reset();
  $("field-problems").textContent = "";
  go("", 0);
});
// Paging keeps the filter that produced these rows, not whatever the box holds now.
$("prev").addEventListener("click", () => {
  const { filter, sort, offset } = current();
  go(filter, Math.max(0, offset - PAGE_LIMIT), sort);
});
$("next").addEventListener("click", () => {
  const { filter, sort, offset } = current();
  go(filter, offset + PAGE_LIMIT, sort);
});
$("sort").addEventListener("change", () => go(current().filter, 0));
window.addEventListener("popstate", run);
run();
