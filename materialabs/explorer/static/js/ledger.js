// The ledger: the latest signed tree head, recent entries, and (#entry-SEQ) one entry with
// its inclusion proof. Where the browser allows (a secure context: HTTPS or localhost) the
// proof is also checked here: the leaf hash of the entry's bytes, folded with the audit path
// as RFC 9162 section 2.1.3.2 says, must give the signed head's root hash.
import { api } from "./api.js";
import { header } from "./nav.js";
import { cell, clear, dateTime, el, hideStatus, isNumber, shortHash, showStatus, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const ENTRY_LIMIT = 50;

const LABELS = {
  tree_size: "Tree size", root_hash: "Root hash", timestamp_us: "Signed at", timestamp_ms: "Time",
  signature: "Signature", key_id: "Ledger key id", ledger_key: "Ledger public key",
  public_key: "Ledger public key", sequence: "Sequence", kind: "Kind", lab: "Lab", cid: "CID",
  record_count: "Records", leaf_index: "Leaf index", entry_hash: "Entry hash", prev_hash: "Previous entry hash",
};

function label(key) {
  return LABELS[key] ?? key.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function value(key, v, raw = false) {
  if (v === null || v === undefined) return "—";
  if (key === "timestamp_us" && isNumber(v)) return dateTime(v / 1000);
  if (key.endsWith("_ms") && isNumber(v)) return dateTime(v);
  if (Array.isArray(v)) return v.every((x) => typeof x !== "object") ? v.join(", ") : el("code", {}, JSON.stringify(v));
  if (typeof v === "object") {
    // An entry's metadata: one nested list of its fields, not a line of JSON.
    return el("dl", { class: "props nested" }, definitions(v, [], true));
  }
  if (/hash|signature|key|cid/.test(key)) return el("code", {}, String(v));
  return String(v);
}

// raw: keep the keys as written (an entry's metadata is data, its keys are identifiers).
function definitions(object, skip = [], raw = false) {
  return Object.entries(object || {}).filter(([k]) => !skip.includes(k))
    .map(([k, v]) => [el("dt", {}, raw ? el("code", {}, k) : label(k)), el("dd", {}, value(k, v, raw))]);
}

// The head's fields may sit at the top level or under "tree_head"/"head".
function headFields(body) {
  const inner = body.tree_head || body.head;
  return inner && typeof inner === "object" ? { ...inner, ...Object.fromEntries(
    Object.entries(body).filter(([k]) => k !== "tree_head" && k !== "head")) } : body;
}

function entryRow(e) {
  return el("tr", { id: `row-${e.sequence}` },
    cell(el("a", { href: `#entry-${e.sequence}` }, String(e.sequence)), "num"),
    cell(e.kind ?? "—"), cell(e.lab ?? "—"),
    cell(e.cid ? el("code", { title: e.cid }, shortHash(e.cid, 20)) : "—"),
    cell(isNumber(e.record_count) ? String(e.record_count) : "—", "num"),
    cell(dateTime(e.timestamp_ms)));
}

// Find the inclusion proof in an entry answer: {receipt: {...}}, {proof: {...}}, or flat.
function proofOf(body) {
  for (const candidate of [body.receipt, body.inclusion_proof, body.inclusion, body.proof, body]) {
    if (candidate && typeof candidate === "object" && Array.isArray(candidate.audit_path)) return candidate;
  }
  return null;
}

const hex = (bytes) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));

async function sha256(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const joined = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { joined.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

// RFC 9162 2.1.3.2: the root the audit path leads to from leaf `index` of a tree of `size`.
export async function rootFromPath(leafHash, index, size, path) {
  if (index >= size) throw new Error(`leaf index ${index} is not below tree size ${size}`);
  let fn = index, sn = size - 1, r = leafHash;
  for (const p of path) {
    if (sn === 0) throw new Error("the audit path is longer than the tree allows");
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(Uint8Array.of(1), p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(Uint8Array.of(1), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the audit path is shorter than the tree needs");
  return r;
}

async function verdict(proof) {
  const root = proof.tree_head?.root_hash ?? proof.root_hash;
  if (!proof.entry || !root) return el("span", { class: "muted" }, "The answer holds no entry bytes to check the proof with here.");
  if (!(window.crypto && crypto.subtle)) {
    return el("span", { class: "muted" }, "This browser checks proofs only over HTTPS or on localhost; use materialabs ledger verify-proof.");
  }
  try {
    const bytes = Uint8Array.from(atob(proof.entry), (c) => c.charCodeAt(0));
    const leaf = await sha256(Uint8Array.of(0), bytes);
    const size = proof.tree_size ?? proof.tree_head?.tree_size;
    const computed = hex(await rootFromPath(leaf, proof.leaf_index, size, proof.audit_path.map(unhex)));
    if (computed === String(root).toLowerCase()) {
      return el("span", { class: "verdict ok", id: "proof-verdict" },
        `✔ Proof checks out: the entry's leaf hash and ${proof.audit_path.length} audit-path hash${proof.audit_path.length === 1 ? "" : "es"} give the signed root.`);
    }
    return el("span", { class: "verdict bad", id: "proof-verdict" }, `✘ Proof does not check out: recomputed root ${computed}, signed root ${root}.`);
  } catch (error) {
    return el("span", { class: "verdict bad", id: "proof-verdict" }, `✘ Proof does not check out: ${error.message}`);
  }
}

async function showEntry(seq) {
  const section = $("entry");
  section.hidden = false;
  $("entry-heading").textContent = `Entry ${seq}`;
  const status = $("entry-status");
  clear($("entry-body"));
  showStatus(status, "loading", "Loading…");
  try {
    const body = await api.ledgerEntry(seq);
    hideStatus(status);
    const entry = body.entry && typeof body.entry === "object" ? body.entry : body;
    const proof = proofOf(body);
    const skip = ["receipt", "inclusion_proof", "inclusion", "proof", "audit_path", "tree_head", "entry"];
    const parts = [el("dl", { class: "props", id: "entry-fields" }, definitions(entry, skip))];
    if (proof) {
      const head = proof.tree_head || {};
      parts.push(
        el("h3", {}, "Inclusion proof"),
        el("dl", { class: "props", id: "proof" },
          el("dt", {}, "Leaf index"), el("dd", {}, String(proof.leaf_index ?? "—")),
          el("dt", {}, "Tree size"), el("dd", {}, String(proof.tree_size ?? head.tree_size ?? "—")),
          el("dt", {}, "Signed root hash"), el("dd", {}, value("root_hash", head.root_hash ?? proof.root_hash)),
          el("dt", {}, "Head signed at"), el("dd", {}, value("timestamp_us", head.timestamp_us)),
          el("dt", {}, "Head signature"), el("dd", {}, value("signature", head.signature)),
          el("dt", {}, "Audit path"), el("dd", {}, proof.audit_path.length
            ? el("ol", { class: "path", start: "1" }, proof.audit_path.map((h) => el("li", {}, h)))
            : "empty: the entry is the whole tree")),
        el("p", {}, await verdict(proof)),
        el("p", { class: "muted" }, "Check it offline: ",
          el("a", { href: URL.createObjectURL(new Blob([JSON.stringify(proof, null, 2)], { type: "application/json" })),
                    download: `receipt-${seq}.json`, id: "receipt-download" }, "save the receipt"),
          " and run ",
          el("code", {}, `materialabs ledger verify-proof receipt-${seq}.json --ledger-key KEY`),
          " with the ledger's public key from the tree head below."));
    } else {
      parts.push(el("p", { class: "status warning" }, "The gateway sent no inclusion proof for this entry."));
    }
    clear($("entry-body"), parts);
    section.focus();
  } catch (error) {
    showStatus(status, "error", error.status === 404 ? `No ledger entry ${seq}.` : error.message);
  }
}

function route() {
  const match = /^#entry-(\d+)$/.exec(window.location.hash);
  if (match) showEntry(Number(match[1]));
  else $("entry").hidden = true;
}

async function main() {
  header("ledger.html");
  window.addEventListener("hashchange", route);
  route();
  const status = $("status");
  showStatus(status, "loading", "Loading…");
  try {
    const [head, list] = await Promise.all([api.ledgerHead(), api.ledgerEntries(ENTRY_LIMIT)]);
    hideStatus(status);
    clear($("head"), definitions(headFields(head)));
    const entries = list.entries || [];
    clear($("entries"), entries.length
      ? table(`The ${entries.length} newest entries`, [["#", "num"], "Kind", "Lab", "CID", ["Records", "num"], "Time"],
        entries.map(entryRow))
      : el("p", { class: "status empty" }, "The ledger has no entries yet."));
  } catch (error) {
    showStatus(status, "error", error.message);
  }
}

main();
