// Line and parity plots drawn as SVG from the campaign JSON. Each series is one <g> with a
// data-series name and an accessible label; a legend and a table-free text summary go with it.

const SVG_NS = "http://www.w3.org/2000/svg";
const W = 560, H = 360, M = { left: 62, right: 16, top: 16, bottom: 48 };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// About `count` round-numbered ticks covering [low, high].
export function ticks(low, high, count = 5) {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const out = [];
  for (let t = Math.ceil(low / step - 1e-9) * step; t <= high + step * 1e-9; t += step) out.push(+t.toFixed(10));
  return out;
}

function extent(values, pad = 0) {
  const finite = values.filter((v) => Number.isFinite(v));
  if (!finite.length) return [0, 1];
  let low = Math.min(...finite), high = Math.max(...finite);
  if (low === high) { low -= 0.5; high += 0.5; }
  const margin = (high - low) * pad;
  return [low - margin, high + margin];
}

function frame(root, xRange, yRange, xLabel, yLabel) {
  const sx = (x) => M.left + ((x - xRange[0]) / (xRange[1] - xRange[0])) * (W - M.left - M.right);
  const sy = (y) => H - M.bottom - ((y - yRange[0]) / (yRange[1] - yRange[0])) * (H - M.top - M.bottom);
  const axes = svg("g", { "aria-hidden": "true" });
  for (const t of ticks(...xRange)) {
    axes.append(svg("line", { x1: sx(t), x2: sx(t), y1: M.top, y2: H - M.bottom, class: "grid" }));
    axes.append(svg("text", { x: sx(t), y: H - M.bottom + 16, "text-anchor": "middle" }, formatTick(t)));
  }
  for (const t of ticks(...yRange)) {
    axes.append(svg("line", { x1: M.left, x2: W - M.right, y1: sy(t), y2: sy(t), class: "grid" }));
    axes.append(svg("text", { x: M.left - 6, y: sy(t) + 4, "text-anchor": "end" }, formatTick(t)));
  }
  axes.append(svg("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }));
  axes.append(svg("line", { x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom, class: "axis" }));
  axes.append(svg("text", { x: (M.left + W - M.right) / 2, y: H - 8, "text-anchor": "middle" }, xLabel));
  axes.append(svg("text", { x: 14, y: (M.top + H - M.bottom) / 2, "text-anchor": "middle",
                            transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})` }, yLabel));
  root.append(axes);
  return { sx, sy };
}

function formatTick(t) {
  return Math.abs(t) >= 1000 || Number.isInteger(t) ? String(t) : String(+t.toFixed(3));
}

function legend(items) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const item of items) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch ${item.marker ? "" : "line"} ${item.dashed ? "dashed" : ""}`;
    swatch.style.background = item.colour;
    swatch.style.color = item.colour;
    swatch.setAttribute("aria-hidden", "true");
    li.append(swatch, item.name);
    list.append(li);
  }
  return list;
}

function figure(root, caption, items) {
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(root, legend(items), cap);
  return fig;
}

// series: [{key, name, xs, ys, colour, dashed, step}]
export function lineChart({ label, caption, xLabel, yLabel, series }) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img", "aria-label": label });
  root.append(svg("title", {}, label));
  const xs = series.flatMap((s) => s.xs), ys = series.flatMap((s) => s.ys);
  const [x0, x1] = extent(xs);
  const [, y1] = extent([0, ...ys], 0.05);
  const { sx, sy } = frame(root, [Math.min(0, x0), x1], [0, y1], xLabel, yLabel);
  for (const s of series) {
    const points = s.xs.map((x, i) => [x, s.ys[i]]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const group = svg("g", { class: "series", "data-series": s.key, "aria-label": `${s.name}: ${points.length} points` });
    let d = "";
    points.forEach(([x, y], i) => {
      if (i === 0) d += `M${sx(x)},${sy(y)}`;
      else if (s.step) d += `H${sx(x)}V${sy(y)}`;
      else d += `L${sx(x)},${sy(y)}`;
    });
    group.append(svg("path", { d, fill: "none", stroke: s.colour, "stroke-width": 2.2,
                               "stroke-dasharray": s.dashed ? "6 4" : "none" }));
    for (const [x, y] of points) {
      const c = svg("circle", { cx: sx(x), cy: sy(y), r: 2.5, fill: s.colour });
      c.append(svg("title", {}, `${s.name}: ${formatTick(y)} at ${formatTick(x)}`));
      group.append(c);
    }
    root.append(group);
  }
  return figure(root, caption, series);
}

// points: [{x, y, sigma, label}] with x the reference (DFT) and y the prediction.
export function parityPlot({ label, caption, xLabel, yLabel, points, colour = "#0b5cad" }) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img", "aria-label": label });
  root.append(svg("title", {}, label));
  const all = points.flatMap((p) => [p.x, p.y, p.y - (p.sigma || 0), p.y + (p.sigma || 0)]);
  const range = extent(all, 0.05);
  const { sx, sy } = frame(root, range, range, xLabel, yLabel);
  const ideal = svg("g", { class: "series", "data-series": "ideal", "aria-label": "predicted = DFT" });
  ideal.append(svg("line", { x1: sx(range[0]), y1: sy(range[0]), x2: sx(range[1]), y2: sy(range[1]),
                             stroke: "#888", "stroke-dasharray": "5 4", "stroke-width": 1.5 }));
  root.append(ideal);
  const group = svg("g", { class: "series", "data-series": "candidates", "aria-label": `${points.length} candidates` });
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue;
    if (Number.isFinite(p.sigma) && p.sigma > 0) {
      group.append(svg("line", { x1: sx(p.x), x2: sx(p.x), y1: sy(p.y - p.sigma), y2: sy(p.y + p.sigma),
                                 stroke: colour, "stroke-opacity": 0.5, "stroke-width": 1.2 }));
    }
    const c = svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 4, fill: colour, "fill-opacity": 0.8 });
    c.append(svg("title", {}, `${p.label}: DFT ${p.x.toFixed(3)}, predicted ${p.y.toFixed(3)}`
      + (Number.isFinite(p.sigma) ? ` ± ${p.sigma.toFixed(3)}` : "")));
    group.append(c);
  }
  root.append(group);
  return figure(root, caption, [
    { name: "candidate (bar: ±σ)", colour, marker: true },
    { name: "predicted = DFT", colour: "#888", dashed: true },
  ]);
}
