// townhall Sync API browser client: a replica of one collection kept live over SSE or WebSocket.
// EventSource resends Last-Event-ID by itself and the WebSocket transport resubscribes from the
// replica's seq, so a reconnecting window misses nothing.

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
  // transport "sse" (EventSource, resumes with Last-Event-ID by itself) or "ws" (WebSocket,
  // resubscribes from this.seq after a drop, with backoff).
  constructor(slug, { base = "/api/v1/sync/collections", transport = "sse" } = {}) {
    super();
    this.slug = slug;
    this.url = `${base}/${encodeURIComponent(slug)}`;
    this.transport = transport;
    this.documents = new Map();
    this.seq = 0;
    this.source = null;
    this.socket = null;
    this.closed = true;
  }

  reset(snap) {
    this.documents = new Map(Object.entries(snap.documents || {}).map(([id, d]) => [id, d.data]));
    this.seq = snap.seq;
    this.dispatchEvent(new CustomEvent("change", { detail: { reset: true } }));
  }

  receive(event) {
    if (event.seq <= this.seq) return;
    applyEvent(this.documents, event);
    this.seq = event.seq;
    this.dispatchEvent(new CustomEvent("change", { detail: event }));
  }

  connect() {
    this.closed = false;
    return this.transport === "ws" ? this.connectSocket(250) : this.connectEventSource();
  }

  connectEventSource() {
    this.source = new EventSource(`${this.url}/events?since=${this.seq}`, { withCredentials: true });
    this.source.addEventListener("snapshot", (e) => this.reset(JSON.parse(e.data)));
    this.source.addEventListener("event", (e) => this.receive(JSON.parse(e.data)));
    this.source.addEventListener("open", () => this.dispatchEvent(new Event("online")));
    this.source.addEventListener("error", (e) => {
      if (e.data) this.dispatchEvent(new CustomEvent("problem", { detail: JSON.parse(e.data) }));
      this.dispatchEvent(new Event("offline"));
    });
    return this;
  }

  connectSocket(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = (this.socket = new WebSocket(`${scheme}://${location.host}/api/v1/sync/ws`));
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "subscribe", streams: { [this.slug]: this.seq } }));
    });
    socket.addEventListener("message", (m) => {
      const message = JSON.parse(m.data);
      if (message.type === "subscribed") { delay = 250; this.dispatchEvent(new Event("online")); }
      else if (message.type === "snapshot") this.reset(message);
      else if (message.type === "event") this.receive(message);
      else if (message.type === "error") {
        this.dispatchEvent(new CustomEvent("problem", { detail: message }));
        if (message.resubscribe) socket.close(); // reconnect and resubscribe from this.seq
      }
    });
    socket.addEventListener("close", () => {
      this.dispatchEvent(new Event("offline"));
      if (!this.closed && this.socket === socket) {
        setTimeout(() => { if (!this.closed) this.connectSocket(Math.min(delay * 2, 5000)); }, delay);
      }
    });
    return this;
  }

  disconnect() {
    this.closed = true;
    if (this.source) this.source.close();
    if (this.socket) this.socket.close();
    this.source = this.socket = null;
  }

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
