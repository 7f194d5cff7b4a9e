// The site header, the same on every page; marks the current page for screen readers.
import { el } from "./ui.js";

const PAGES = [
  ["index.html", "Search"],
  ["campaigns.html", "Campaigns"],
  ["ledger.html", "Ledger"],
];

export function header(current) {
  const nav = el("nav", { "aria-label": "Main" },
    el("a", { class: "brand", href: "index.html" }, "MateriaLabs explorer"),
    PAGES.map(([href, label]) =>
      el("a", { href, "aria-current": href === current ? "page" : null }, label)));
  const slot = document.querySelector("header.site");
  if (slot) slot.replaceChildren(nav);
}
