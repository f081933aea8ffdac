// townhall Sync API browser client: a replica of one collection kept live over SSE.
// EventSource resends Last-Event-ID by itself, so a reconnecting window misses nothing.

function mergePatch(target, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return structuredClone(patch);
  const result = target && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function unescape(token) { return token.replace(/~1/g, "/").replace(/~0/g, "~"); }

function walk(doc, path) {
  const parts = path.split("/").slice(1).map(unescape);
  const last = parts.pop();
  let parent = doc;
  for (const part of parts) parent = parent[part];
  return [parent, last];
}

function getAt(doc, path) {
  if (path === "") return doc;
  const [parent, key] = walk(doc, path);
  return parent[key];
}

function jsonPatch(doc, ops) {
  let root = structuredClone(doc);
  for (const op of ops) {
    if (op.path === "" && (op.op === "add" || op.op === "replace")) { root = structuredClone(op.value); continue; }
    const value = op.op === "copy" || op.op === "move" ? structuredClone(getAt(root, op.from)) : structuredClone(op.value);
    if (op.op === "move" || op.op === "remove") {
      const [parent, key] = walk(root, op.op === "move" ? op.from : op.path);
      if (Array.isArray(parent)) parent.splice(Number(key), 1); else delete parent[key];
      if (op.op === "remove") continue;
    }
    if (op.op === "test") continue; // the server already checked it
    const [parent, key] = walk(root, op.path);
    if (Array.isArray(parent)) {
      if (op.op === "replace") parent[Number(key)] = value;
      else parent.splice(key === "-" ? parent.length : Number(key), 0, value);
    } else parent[key] = value;
  }
  return root;
}

export function applyEvent(documents, event) {
  const current = documents.get(event.doc_id);
  if (event.op === "delete") documents.delete(event.doc_id);
  else if (event.op === "create" || event.op === "replace") documents.set(event.doc_id, structuredClone(event.patch));
  else if (event.op === "merge") documents.set(event.doc_id, mergePatch(current || {}, event.patch));
  else if (event.op === "patch") documents.set(event.doc_id, jsonPatch(current || {}, event.patch));
}

export class SyncCollection extends EventTarget {
  constructor(slug, { base = "/api/v1/sync/collections" } = {}) {
    super();
    this.slug = slug;
    this.url = `${base}/${encodeURIComponent(slug)}`;
    this.documents = new Map();
    this.seq = 0;
    this.source = null;
  }

  connect() {
    this.source = new EventSource(`${this.url}/events?since=${this.seq}`, { withCredentials: true });
    this.source.addEventListener("snapshot", (e) => {
      const snap = JSON.parse(e.data);
      this.documents = new Map(Object.entries(snap.documents || {}).map(([id, d]) => [id, d.data]));
      this.seq = snap.seq;
      this.dispatchEvent(new CustomEvent("change", { detail: { reset: true } }));
    });
    this.source.addEventListener("event", (e) => {
      const event = JSON.parse(e.data);
      if (event.seq <= this.seq) return;
      applyEvent(this.documents, event);
      this.seq = event.seq;
      this.dispatchEvent(new CustomEvent("change", { detail: event }));
    });
    this.source.addEventListener("open", () => this.dispatchEvent(new Event("online")));
    this.source.addEventListener("error", () => this.dispatchEvent(new Event("offline")));
    return this;
  }

  disconnect() { if (this.source) this.source.close(); this.source = null; }

  async request(method, path, body, contentType = "application/json", version = null) {
    const headers = { "Content-Type": contentType };
    if (version !== null) headers["If-Match"] = `"${version}"`;
    const response = await fetch(`${this.url}${path}`, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok && response.status !== 204) {
      const problem = await response.json().catch(() => ({ detail: response.statusText }));
      throw new Error(problem.detail || response.statusText);
    }
    return response.status === 204 ? null : response.json();
  }

  create(data, id) { return this.request("POST", "/documents", id ? { id, data } : { data }); }
  merge(id, patch, version = null) { return this.request("PATCH", `/documents/${encodeURIComponent(id)}`, patch, "application/merge-patch+json", version); }
  remove(id) { return this.request("DELETE", `/documents/${encodeURIComponent(id)}`); }
}
