// How the pages talk to the gateway. Paths are built from where the page itself is served
// (".../explorer/page.html" -> "..."), so the explorer also works behind a path prefix.

const page = window.location.pathname;
const cut = page.lastIndexOf("/explorer/");
export const BASE = cut >= 0 ? page.slice(0, cut) : "";

export class ApiError extends Error {
  constructor(status, message, url) {
    super(message);
    this.status = status;
    this.url = url;
  }
}

// The message a person should read for a failed response: OPTIMADE's `errors` array
// (detail first, then title), FastAPI's `detail`, or the HTTP status line.
export function errorMessage(status, statusText, body) {
  if (body && Array.isArray(body.errors) && body.errors.length) {
    return body.errors
      .map((e) => [e.title, e.detail].filter(Boolean).join(": ") || `error ${e.status ?? status}`)
      .join("; ");
  }
  if (body && body.detail !== undefined) {
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map((d) => [(d.loc || []).join("."), d.msg].filter(Boolean).join(": ")).join("; ");
    }
    return JSON.stringify(body.detail);
  }
  return `HTTP ${status} ${statusText || ""}`.trim();
}

export async function getJSON(path, params) {
  const url = new URL(BASE + path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" } });
  } catch (error) {
    throw new ApiError(0, `the gateway did not answer (${error.message})`, url.href);
  }
  let body = null;
  const text = await response.text();
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, errorMessage(response.status, response.statusText, body), url.href);
  }
  if (body === null) throw new ApiError(response.status, "the gateway sent no JSON", url.href);
  return body;
}

export const optimade = {
  structures: (params) => getJSON("/optimade/v1/structures", params),
  structure: (id) => getJSON(`/optimade/v1/structures/${encodeURIComponent(id)}`),
};

export const api = {
  campaigns: () => getJSON("/api/v1/campaigns"),
  campaign: (id) => getJSON(`/api/v1/campaigns/${encodeURIComponent(id)}`),
  ledgerHead: () => getJSON("/api/v1/ledger/head"),
  ledgerEntries: (limit) => getJSON("/api/v1/ledger/entries", { limit }),
  ledgerEntry: (seq) => getJSON(`/api/v1/ledger/entries/${encodeURIComponent(seq)}`),
  downloadUrl: (id, format) =>
    `${BASE}/api/v1/structures/${encodeURIComponent(id)}/download?format=${encodeURIComponent(format)}`,
};
