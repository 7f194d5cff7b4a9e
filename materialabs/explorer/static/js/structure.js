// Crystal geometry for the material page (lattice parameters, fractional coordinates) and a
// drawing of the unit cell: an orthographic SVG projection, rotated by dragging or the arrow
// keys. Drawn here from the OPTIMADE fields; no 3D library is shipped or fetched.

const SVG_NS = "http://www.w3.org/2000/svg";

// Jmol's element colours (the convention most crystal viewers follow) and covalent radii (Å).
const COLOURS = {
  H: "#ffffff", He: "#d9ffff", Li: "#cc80ff", Be: "#c2ff00", B: "#ffb5b5", C: "#909090",
  N: "#3050f8", O: "#ff0d0d", F: "#90e050", Na: "#ab5cf2", Mg: "#8aff00", Al: "#bfa6a6",
  Si: "#f0c8a0", P: "#ff8000", S: "#ffff30", Cl: "#1ff01f", K: "#8f40d4", Ca: "#3dff00",
  Sc: "#e6e6e6", Ti: "#bfc2c7", V: "#a6a6ab", Cr: "#8a99c7", Mn: "#9c7ac7", Fe: "#e06633",
  Co: "#f090a0", Ni: "#50d050", Cu: "#c88033", Zn: "#7d80b0", Ga: "#c28f8f", Ge: "#668f8f",
  As: "#bd80e3", Se: "#ffa100", Br: "#a62929", Rb: "#702eb0", Sr: "#00ff00", Y: "#94ffff",
  Zr: "#94e0e0", Nb: "#73c2c9", Mo: "#54b5b5", Ru: "#248f8f", Rh: "#0a7d8c", Pd: "#006985",
  Ag: "#c0c0c0", Cd: "#ffd98f", In: "#a67573", Sn: "#668080", Sb: "#9e63b5", Te: "#d47a00",
  I: "#940094", Cs: "#57178f", Ba: "#00c900", La: "#70d4ff", Ce: "#ffffc7", Hf: "#4dc2ff",
  Ta: "#4da6ff", W: "#2194d6", Pt: "#d0d0e0", Au: "#ffd123", Pb: "#575961", Bi: "#9e4fb5",
};
const RADII = {
  H: 0.31, Li: 1.28, Be: 0.96, B: 0.84, C: 0.76, N: 0.71, O: 0.66, F: 0.57, Na: 1.66,
  Mg: 1.41, Al: 1.21, Si: 1.11, P: 1.07, S: 1.05, Cl: 1.02, K: 2.03, Ca: 1.76, Ti: 1.6,
  V: 1.53, Fe: 1.32, Ga: 1.22, Ge: 1.2, Sr: 1.95, Y: 1.9, Zr: 1.75, Nb: 1.64, In: 1.42,
  Sn: 1.39, Ba: 2.15, La: 2.07, Hf: 1.75, Ta: 1.7, Cs: 2.44, Rb: 2.2,
};

export function colour(symbol) {
  if (COLOURS[symbol]) return COLOURS[symbol];
  let hash = 0;
  for (const ch of String(symbol)) hash = (hash * 31 + ch.charCodeAt(0)) % 360;
  return `hsl(${hash}, 55%, 55%)`;
}

const dot = (u, v) => u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
const norm = (u) => Math.sqrt(dot(u, u));
const cross = (u, v) => [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
const degrees = (u, v) => (Math.acos(Math.max(-1, Math.min(1, dot(u, v) / (norm(u) * norm(v))))) * 180) / Math.PI;

export function latticeParameters(vectors) {
  const [a, b, c] = vectors;
  return {
    a: norm(a), b: norm(b), c: norm(c),
    alpha: degrees(b, c), beta: degrees(a, c), gamma: degrees(a, b),
    volume: Math.abs(dot(a, cross(b, c))),
  };
}

// Fractional coordinates of Cartesian positions (rows of the lattice are the cell vectors).
export function fractional(vectors, positions) {
  const [a, b, c] = vectors;
  const volume = dot(a, cross(b, c));
  const reciprocal = [cross(b, c), cross(c, a), cross(a, b)].map((r) => r.map((x) => x / volume));
  return positions.map((p) => reciprocal.map((r) => dot(p, r)));
}

function cartesian(vectors, f) {
  return [0, 1, 2].map((k) => f[0] * vectors[0][k] + f[1] * vectors[1][k] + f[2] * vectors[2][k]);
}

// Atoms in the cell plus their images on the faces, edges and corners (a site at x = 0 is
// drawn at x = 1 too), so the picture shows the cell as a crystallographer draws it.
function imagesInCell(vectors, species, fracs) {
  const atoms = [];
  const eps = 1e-3;
  fracs.forEach((f0, index) => {
    const f = f0.map((x) => x - Math.floor(x + eps / 2));
    const shifts = f.map((x) => (Math.abs(x) < eps ? [0, 1] : [0]));
    for (const dx of shifts[0]) for (const dy of shifts[1]) for (const dz of shifts[2]) {
      const g = [f[0] + dx, f[1] + dy, f[2] + dz];
      atoms.push({ index, species: species[index], frac: g, position: cartesian(vectors, g), image: dx + dy + dz > 0 });
    }
  });
  return atoms;
}

function rotation(yaw, pitch) {
  const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
  return [[cy, 0, sy], [sp * sy, cp, -sp * cy], [-cp * sy, sp, cp * cy]];
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

// Draws the cell into a new <svg>; returns it. species: one symbol per site.
export function drawStructure(vectors, species, cartesianPositions, label) {
  const size = 360;
  const root = svg("svg", { viewBox: `0 0 ${size} ${size}`, class: "structure", role: "img",
                            tabindex: "0", "aria-label": label });
  const title = svg("title", {});
  title.textContent = `${label}. Drag, or use the arrow keys, to rotate.`;
  root.append(title);
  const scene = svg("g", {});
  root.append(scene);

  const fracs = fractional(vectors, cartesianPositions);
  const atoms = imagesInCell(vectors, species, fracs);
  const corners = [];
  for (const i of [0, 1]) for (const j of [0, 1]) for (const k of [0, 1]) corners.push([i, j, k]);
  const edges = [];
  corners.forEach((p, m) => corners.forEach((q, n) => {
    if (n > m && p.reduce((s, x, t) => s + Math.abs(x - q[t]), 0) === 1) edges.push([p, q]);
  }));
  const centre = cartesian(vectors, [0.5, 0.5, 0.5]);
  const extent = Math.max(...corners.map((f) => norm(cartesian(vectors, f).map((x, t) => x - centre[t]))));
  const scale = (size / 2 - 24) / (extent || 1);
  const state = { yaw: -0.6, pitch: 0.35 };

  const project = (p, r) => {
    const d = p.map((x, t) => x - centre[t]);
    const q = r.map((row) => dot(row, d));
    return { x: size / 2 + q[0] * scale, y: size / 2 - q[1] * scale, z: q[2] };
  };

  function paint() {
    const r = rotation(state.yaw, state.pitch);
    scene.replaceChildren();
    for (const [p, q] of edges) {
      const a = project(cartesian(vectors, p), r), b = project(cartesian(vectors, q), r);
      scene.append(svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "cell-edge", "stroke-width": 1.2 }));
    }
    const placed = atoms.map((atom) => ({ atom, at: project(atom.position, r) }));
    placed.sort((u, v) => u.at.z - v.at.z); // far atoms first, near ones drawn over them
    const zs = placed.map((p) => p.at.z);
    const zmin = Math.min(...zs), zspan = Math.max(...zs) - zmin || 1;
    for (const { atom, at } of placed) {
      const depth = (at.z - zmin) / zspan;
      const radius = Math.max(4, 0.3 * (RADII[atom.species] ?? 1.3) * scale * (0.85 + 0.15 * depth));
      const circle = svg("circle", { cx: at.x, cy: at.y, r: radius, fill: colour(atom.species),
                                     stroke: "#333", "stroke-width": 0.8,
                                     "fill-opacity": (0.75 + 0.25 * depth).toFixed(2),
                                     "data-species": atom.species });
      const tip = svg("title", {});
      tip.textContent = `${atom.species} (site ${atom.index + 1}${atom.image ? ", periodic image" : ""}) at `
        + atom.frac.map((x) => x.toFixed(3)).join(", ");
      circle.append(tip);
      scene.append(circle);
    }
    // The axes a, b, c from the cell origin, labelled.
    const origin = project(cartesian(vectors, [0, 0, 0]), r);
    ["a", "b", "c"].forEach((name, t) => {
      const unit = [0, 0, 0];
      unit[t] = 1;
      const end = project(cartesian(vectors, unit), r);
      const text = svg("text", { x: origin.x + (end.x - origin.x) * 1.06, y: origin.y + (end.y - origin.y) * 1.06,
                                 "font-weight": "600", "text-anchor": "middle" });
      text.textContent = name;
      scene.append(text);
    });
  }

  let drag = null;
  root.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY };
    root.setPointerCapture(event.pointerId);
  });
  root.addEventListener("pointermove", (event) => {
    if (!drag) return;
    state.yaw += (event.clientX - drag.x) * 0.01;
    state.pitch += (event.clientY - drag.y) * 0.01;
    drag = { x: event.clientX, y: event.clientY };
    paint();
  });
  const stop = () => { drag = null; };
  root.addEventListener("pointerup", stop);
  root.addEventListener("pointercancel", stop);
  root.addEventListener("keydown", (event) => {
    const step = 0.15;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (!moves[event.key]) return;
    event.preventDefault();
    state.yaw += moves[event.key][0];
    state.pitch += moves[event.key][1];
    paint();
  });
  paint();
  return root;
}
