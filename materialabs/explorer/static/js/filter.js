// The simple search fields, composed into one OPTIMADE filter the person can read and edit.

export const STABLE_E_ABOVE_HULL_EV = 0.025; // the acquisition service's "stable": within 25 meV/atom

// The 118 element symbols: a typo ("Ox", "ti") is pointed out instead of matching nothing.
const ELEMENTS = new Set(`H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co
  Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr
  Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa
  U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og`.split(/\s+/));

export function parseElements(text) {
  const words = String(text || "")
    .split(/[\s,;-]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const symbols = words.filter((s) => ELEMENTS.has(s));
  const bad = words.filter((s) => !ELEMENTS.has(s));
  return { symbols: [...new Set(symbols)], bad: [...new Set(bad)] };
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
