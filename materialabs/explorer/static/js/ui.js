// Small DOM and formatting helpers shared by every page. Text always goes in through
// textContent (never innerHTML), so nothing the server sends can inject markup.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// One status box per region: kind is "loading", "empty", "error" or "warning".
export function showStatus(node, kind, message, detail) {
  node.className = `status ${kind}`;
  node.setAttribute("role", kind === "error" ? "alert" : "status");
  const lead = { error: "Error: ", warning: "Warning: ", empty: "", loading: "" }[kind] ?? "";
  clear(node, lead ? el("strong", {}, lead) : null, message, detail ? el("div", { class: "muted" }, detail) : null);
}

export function hideStatus(node) {
  node.className = "status";
  node.removeAttribute("role");
  node.replaceChildren();
}

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

// A number with its unit and, when known, its uncertainty: "-2.315 ± 0.041 eV/atom".
export function quantity(value, unit, sigma, digits = 3) {
  if (!isNumber(value)) return "—";
  let text = value.toFixed(digits);
  if (isNumber(sigma)) text += ` ± ${sigma.toFixed(digits)}`;
  return unit ? `${text} ${unit}` : text;
}

export function number(value, digits = 3) {
  return isNumber(value) ? value.toFixed(digits) : "—";
}

// "O3SrTi" -> O<sub>3</sub>SrTi, as a fragment that reads as the formula.
export function formula(text) {
  const span = el("span", { class: "formula" });
  if (!text) {
    span.textContent = "—";
    return span;
  }
  for (const part of String(text).split(/(\d+(?:\.\d+)?)/)) {
    if (!part) continue;
    span.append(/^\d/.test(part) ? el("sub", {}, part) : document.createTextNode(part));
  }
  return span;
}

export function dateTime(ms) {
  if (!isNumber(ms)) return "—";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function shortHash(text, keep = 12) {
  if (!text) return "—";
  const s = String(text);
  return s.length > keep + 3 ? `${s.slice(0, keep)}…` : s;
}

export function pageLink(path, params, ...children) {
  const query = new URLSearchParams(params).toString();
  return el("a", { href: query ? `${path}?${query}` : path }, ...children);
}

export function table(caption, headers, rows) {
  const head = el("tr", {}, headers.map((h) => {
    const [label, cls] = Array.isArray(h) ? h : [h, null];
    return el("th", { scope: "col", class: cls }, label);
  }));
  return el("div", { class: "table-wrap" },
    el("table", {},
      caption ? el("caption", {}, caption) : null,
      el("thead", {}, head),
      el("tbody", {}, rows)));
}

export function cell(content, cls) {
  return el("td", { class: cls }, content);
}

export function param(name) {
  return new URLSearchParams(window.location.search).get(name);
}
