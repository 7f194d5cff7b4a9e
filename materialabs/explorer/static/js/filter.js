// The simple search fields, composed into one OPTIMADE filter the person can read and edit.

export const STABLE_E_ABOVE_HULL_EV = 0.025; // the acquisition service's "stable": within 25 meV/atom

const SYMBOL = /^[A-Z][a-z]?$/;

export function parseElements(text) {
  const symbols = String(text || "")
    .split(/[\s,;-]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = symbols.filter((s) => !SYMBOL.test(s));
  return { symbols: [...new Set(symbols)], bad };
}

function quote(text) {
  return `"${String(text).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

// fields: {elements: "Ti, O", gapMin, gapMax, crystalSystem, stableOnly}; returns
// {filter, problems}: problems are sentences about fields that could not be used.
export function composeFilter(fields) {
  const clauses = [];
  const problems = [];
  const { symbols, bad } = parseElements(fields.elements);
  if (bad.length) problems.push(`not element symbols: ${bad.join(", ")} (write them like Ti, O)`);
  if (symbols.length) clauses.push(`elements HAS ALL ${symbols.map(quote).join(", ")}`);
  const low = fields.gapMin === "" || fields.gapMin == null ? null : Number(fields.gapMin);
  const high = fields.gapMax === "" || fields.gapMax == null ? null : Number(fields.gapMax);
  if (low !== null && !Number.isFinite(low)) problems.push("band gap from: not a number");
  if (high !== null && !Number.isFinite(high)) problems.push("band gap to: not a number");
  if (low !== null && high !== null && low > high) problems.push("band gap: from is above to");
  if (low !== null && Number.isFinite(low)) clauses.push(`_materialabs_band_gap >= ${low}`);
  if (high !== null && Number.isFinite(high)) clauses.push(`_materialabs_band_gap <= ${high}`);
  if (fields.crystalSystem) clauses.push(`_materialabs_crystal_system = ${quote(fields.crystalSystem)}`);
  if (fields.stableOnly) clauses.push(`_materialabs_e_above_hull <= ${STABLE_E_ABOVE_HULL_EV}`);
  return { filter: clauses.join(" AND "), problems };
}
