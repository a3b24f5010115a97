// The dashboard: served as a file under a strict CSP (no inline script); renders text nodes only.
"use strict";
const TOKEN_KEY = "scanguard.token";
const $ = (sel) => document.querySelector(sel);
// family: the events panel's filter ("" = every event); the stream and the list both ask the server for it
const state = { jobs: new Map(), libraries: new Map(), family: "job", stream: null, timers: [] };
const UNKNOWN = "\u2013";  // a field this server does not report (yet): shown as unknown, never as an error

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;  // CSSOM: a style attribute would break the CSP
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function toast(message, isError = false) {
  const t = $("#toast");
  t.textContent = message;
  t.className = isError ? "error" : "";
  t.style.display = "block";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.style.display = "none"; }, 4000);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status; this.code = body?.error?.code;
  }
}

async function api(method, path, body) {
  const headers = { "Authorization": `Bearer ${token()}` };
  const init = { method, headers };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => null);
  if (response.status === 401) { logout("The token was refused."); throw new ApiError(401, data); }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function fmtEta(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function action(label, name, handler, cls) {
  return el("button", { "data-action": name, class: cls || "", onclick: handler }, label);
}

async function run(promise, ok) {
  try { await promise; if (ok) toast(ok); } catch (err) { if (err.status !== 401) toast(err.message, true); }
  refreshSoon();
}

// "whole library", or the first path and "+N more"; the title lists every path
function scopeCell(scope) {
  if (!Array.isArray(scope)) return el("td", { class: "scope muted", title: "scope not reported by this server" }, UNKNOWN);
  if (scope.length === 0) return el("td", { class: "scope", title: "the whole library" }, "whole library");
  const cell = el("td", { class: "scope", title: scope.join("\n") }, el("span", { class: "clip" }, `${scope[0]}`));
  if (scope.length > 1) cell.append(" ", el("span", { class: "more muted" }, `+${scope.length - 1} more`));
  return cell;
}

function processedText(job) {
  let text = `${job.files_processed}`;
  if (job.files_skipped) text += ` (+${job.files_skipped} skipped)`;
  if (job.files_moved) text += ` \u00b7 ${job.files_moved} moved`;
  return text;
}

function renderJobs() {
  const body = $("#jobs");
  const jobs = [...state.jobs.values()].sort((a, b) => b.id - a.id).slice(0, 30);
  body.replaceChildren(...jobs.map((job) => {
    const lib = state.libraries.get(job.library_id);
    const pct = Math.max(0, Math.min(100, job.progress || 0));
    const buttons = el("td", { class: "actions" });
    if (job.status === "running" || job.status === "pending")
      buttons.append(action("Pause", "pause", () => run(api("POST", `/api/admin/scanner/safe/pause/${job.id}`), `Job ${job.id} paused`)));
    if (job.status === "paused")
      buttons.append(action("Resume", "resume", () => run(api("POST", `/api/admin/scanner/safe/resume/${job.id}`), `Job ${job.id} resumed`)));
    buttons.append(" ", action("Delete", "delete", () => {
      if (confirm(`Delete job ${job.id} and the media files it discovered?`))
        run(api("DELETE", `/api/admin/scanner/safe/jobs/${job.id}`).then(() => state.jobs.delete(job.id)), `Job ${job.id} deleted`);
    }, "danger"));
    return el("tr", { "data-job-id": job.id, "data-status": job.status },
      el("td", { class: "num" }, `#${job.id}`),
      el("td", { class: "name", title: lib ? lib.name : "" }, el("span", { class: "clip" }, lib ? lib.name : `#${job.library_id}`)),
      el("td", { class: "trigger" }, job.trigger ?? UNKNOWN),
      scopeCell(job.scope),
      el("td", {}, el("span", { class: `status ${job.status}` }, job.status)),
      el("td", {}, el("div", { class: "bar", "data-progress": pct.toFixed(2) },
        el("span", { style: `width:${pct}%` }), el("em", {}, `${pct.toFixed(1)}%`))),
      el("td", { class: "num files" }, processedText(job)),
      el("td", { class: job.errors ? "num failed warn" : "num failed",
        title: job.errors ? `GET /api/admin/libraries/${job.library_id}/files?errors=true lists them` : "" }, `${job.errors || 0}`),
      el("td", { class: "num rate" }, job.files_per_second ? job.files_per_second.toFixed(0) : "–"),
      el("td", { class: "num eta" }, fmtEta(job.eta_seconds)),
      el("td", { class: "muted reason", title: job.last_error || "" }, el("div", { class: "clamp" }, job.pause_reason || job.last_error || "")),
      buttons);
  }));
  $("#no-jobs").hidden = jobs.length > 0;
}

const DEGRADED = new Set(["polling", "unavailable"]);

// The library's watcher: its state, the reason when degraded, the changed paths waiting for the next scan
function watchCell(watch) {
  if (!watch || typeof watch !== "object")
    return el("td", { class: "watch muted", "data-watch-state": "unknown", title: "watch state not reported by this server" }, UNKNOWN);
  const stateName = watch.enabled === false ? "off" : (watch.state || "unknown");
  const degraded = DEGRADED.has(stateName);
  const since = watch.since ? `since ${watch.since.replace("T", " ").slice(0, 19)}` : "";
  const cell = el("td", { class: degraded ? "watch warn" : "watch", "data-watch-state": stateName,
    title: [stateName, watch.reason, since].filter(Boolean).join(" \u00b7 ") },
    el("span", { class: `watch-state ${stateName}` }, stateName));
  if (watch.reason && stateName !== "watching" && stateName !== "off") cell.append(" ", el("span", { class: "reason" }, watch.reason));
  if (watch.pending) cell.append(" ", el("span", { class: "pending muted" }, `${watch.pending} pending`));
  return cell;
}

function renderLibraries() {
  const libs = [...state.libraries.values()].sort((a, b) => a.id - b.id);
  $("#libraries").replaceChildren(...libs.map((lib) => el("tr", { "data-library-id": lib.id },
    el("td", { class: "num" }, `${lib.id}`), el("td", { class: "name", title: lib.name }, el("span", { class: "clip" }, lib.name)),
    el("td", { class: "muted path" }, lib.path),
    el("td", {}, lib.kind), el("td", { class: "num" }, `${lib.media_files}`),
    watchCell(lib.watch),
    el("td", { class: "actions" },
      action("Start scan", "start", () => run(api("POST", `/api/admin/scanner/safe/start/${lib.id}`), `Scan of ${lib.name} started`)),
      " ",
      action("Remove", "remove", () => {
        if (confirm(`Remove library ${lib.name}, its jobs and its files from the database?`))
          run(api("DELETE", `/api/admin/libraries/${lib.id}`).then(() => state.libraries.delete(lib.id)), `Library ${lib.name} removed`);
      }, "danger")))));
}

function fmtAge(s) {
  if (s === null || s === undefined) return "not taken yet";
  return s < 1 ? "just now" : `${fmtEta(s)} ago`;
}

// Two moments, each said once: scans and jobs are read now; status, database and alerts come from the
// health checker's last snapshot, shown with its age.
function renderHealth(s) {
  const h = s.health || {};
  const db = h.database || {};
  const now = s.scans || {};
  const alerts = h.alerts || [];
  const rows = [
    ["live scans", el("span", { id: "health-live" }, `${now.live ?? "–"} (db running: ${now.db_running ?? "–"})`)],
    ["jobs", el("span", { id: "health-jobs" }, Object.entries(s.jobs || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "–")],
    ["instance", s.instance || "–"],
    ["snapshot", el("span", { id: "health-age" }, fmtAge(s.health_age_seconds))],
    ["status", el("span", { class: s.healthy ? "healthy" : "unhealthy", id: "health-status" }, s.healthy ? "healthy" : "unhealthy")],
    ["database", db.reachable ? `reachable, ${db.latency_ms} ms` : `unreachable ${db.error || ""}`],
    ["alerts", alerts.length ? alerts.map((a) => a.alert || JSON.stringify(a)).join(", ") : "none"],
  ];
  const dl = el("dl");
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", {}, v));
  $("#health-body").replaceChildren(dl);
}

function renderInstances(list) {
  $("#instances").replaceChildren(...list.map((i) => el("tr", { "data-instance-id": i.id, "data-live": i.live },
    el("td", { class: "instance", title: i.id }, el("code", {}, i.id)), el("td", { class: "host" }, i.host),
    el("td", { class: "num" }, `${i.pid}`),
    el("td", {}, i.version), el("td", { class: "muted" }, (i.heartbeat_at || "").replace("T", " ").slice(0, 19)),
    el("td", {}, el("span", { class: i.live ? "healthy" : "unhealthy" }, i.live ? "live" : "gone")),
    el("td", { class: "jobs" }, i.jobs.length ? i.jobs.map((j) => `#${j}`).join(" ") : "–"))));
}

const WARN_KINDS = ["watch.degraded", "job.failed", "alert.", "supervisor.abandoned", "watchdog.stalled"];

// One line a person reads: the kinds whose data has a shape are said in words, the others as key=value
function describe(event) {
  const d = event.data || {};
  switch (event.kind) {
    case "file.moved": return `${d.from ?? "?"} \u2192 ${d.to ?? "?"}`;
    case "file.quarantined": return `${d.path ?? "?"}: ${d.reason ?? "error"}${d.error ? " \u2014 " + d.error : ""}`;
    case "watch.degraded": return `watching degraded: ${d.reason ?? "unknown reason"}${d.message ? " \u2014 " + d.message : ""}`;
    case "watch.recovered": return `watching again${d.reason ? " (was " + d.reason + ")" : ""}${d.message ? " \u2014 " + d.message : ""}`;
    default:
      return Object.entries(d).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
  }
}

function addEventRow(event) {
  const list = $("#events");
  const warn = WARN_KINDS.some((k) => (k.endsWith(".") ? event.kind.startsWith(k) : event.kind === k));
  const where = [event.job_id ? `job ${event.job_id}` : "", event.library_id ? `lib ${event.library_id}` : ""].filter(Boolean).join(" ");
  list.prepend(el("li", { "data-event-id": event.id, "data-kind": event.kind, class: warn ? "warn" : "" },
    el("span", { class: "muted at" }, `${(event.at || "").replace("T", " ").slice(0, 19)}`),
    el("code", {}, event.kind), el("span", { class: "where" }, where),
    el("span", { class: "what" }, describe(event))));
  while (list.children.length > 100) list.lastChild.remove();
  $("#no-events").hidden = true;
}

async function refresh() {
  const [libs, current, recent] = await Promise.all([
    api("GET", "/api/admin/libraries"),
    api("GET", "/api/admin/scanner/current-jobs"),
    api("GET", "/api/admin/scanner/jobs?limit=20"),
  ]);
  state.libraries = new Map(libs.libraries.map((l) => [l.id, l]));
  state.jobs = new Map([...recent.jobs, ...current.jobs].map((j) => [j.id, j]));
  renderLibraries(); renderJobs();
}

function renderWebhooks(hooks) {
  const when = (t) => (t || "–").replace("T", " ").slice(0, 19);
  $("#webhooks").replaceChildren(...hooks.map((h) => el("tr", { "data-webhook": h.name },
    el("td", {}, h.name === h.url ? h.url : `${h.name} (${h.url})`), el("td", {}, h.kinds.join(" ")),
    el("td", { class: "num" }, `${h.cursor}`), el("td", { class: "num" }, `${h.lag}`),
    el("td", { class: "num" }, `${h.delivered}`), el("td", {}, when(h.last_success_at)),
    el("td", { class: h.last_error ? "unhealthy" : "" }, h.last_failure_at ? `${when(h.last_failure_at)} ${h.last_error || ""}` : "–"),
    el("td", { class: h.dead ? "num unhealthy" : "num" }, `${h.dead}`))));
  $("#no-webhooks").hidden = hooks.length > 0;
}

async function refreshWebhooks() {
  try { renderWebhooks((await api("GET", "/api/admin/webhooks")).webhooks); }
  catch (err) { if (err.status !== 401) $("#no-webhooks").textContent = `unavailable: ${err.message}`; }
}

async function refreshHealth() {
  refreshWebhooks();
  try { renderHealth(await api("GET", "/api/admin/scanner/safeguards/status")); }
  catch (err) { if (err.status !== 401) $("#health-body").textContent = `unavailable: ${err.message}`; }
  try { renderInstances((await api("GET", "/api/admin/instances")).instances); }
  catch (err) { if (err.status !== 401) console.warn(err); }
}

function refreshSoon() {
  clearTimeout(refreshSoon.timer);
  refreshSoon.timer = setTimeout(() => {
    refresh().catch((err) => err.status !== 401 && toast(err.message, true));
    refreshHealth();
  }, 150);
}

function handleFrame(stream, frame) {
  if (frame.id) stream.lastEventId = frame.id;
  if (!frame.data) return;
  const data = JSON.parse(frame.data);
  if (frame.event === "progress") {
    for (const job of data.jobs) state.jobs.set(job.id, job);
    renderJobs();
    return;
  }
  if (!$(`#events li[data-event-id="${data.id}"]`)) addEventRow(data);
  if (["job.", "library.", "watch.", "watchdog.", "supervisor.", "alert."].some((k) => data.kind.startsWith(k))) refreshSoon();
}

function familyQuery(family) { return family ? `family=${encodeURIComponent(family)}` : ""; }

// Server-Sent Events over fetch, so the token travels in the Authorization header (not in the URL); the
// server filters by the panel's family, so per-file events do not even cross the wire while jobs are shown.
// From `lastEventId` on: the stream replays what the list did not show, so nothing falls between them.
async function streamEvents(family, lastEventId) {
  const stream = { closed: false, controller: new AbortController(), lastEventId };
  state.stream = stream;
  while (!stream.closed) {
    try {
      const headers = { "Authorization": `Bearer ${token()}`, "Accept": "text/event-stream" };
      if (stream.lastEventId !== null) headers["Last-Event-ID"] = stream.lastEventId;
      const query = familyQuery(family);
      const response = await fetch(`/api/admin/events/stream${query ? "?" + query : ""}`,
        { headers, signal: stream.controller.signal });
      if (response.status === 401) { logout("The token was refused."); return; }
      if (!response.ok) throw new Error(`stream: HTTP ${response.status}`);
      $("#conn").textContent = "live"; $("#conn").className = "live";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stream.closed) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const frame = { event: "message", data: "", id: null };
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const i = line.indexOf(":");
            const field = i < 0 ? line : line.slice(0, i);
            const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
            if (field === "data") frame.data += (frame.data ? "\n" : "") + val;
            else if (field === "event") frame.event = val;
            else if (field === "id") frame.id = val;
          }
          if (stream.closed) break;
          try { handleFrame(stream, frame); } catch (err) { console.error(err); }
        }
      }
    } catch (err) {
      if (stream.closed) return;
      console.warn(err);
    }
    if (stream.closed) return;
    $("#conn").textContent = "reconnecting…"; $("#conn").className = "";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function stopStream() {
  if (state.stream) { state.stream.closed = true; state.stream.controller.abort(); state.stream = null; }
}

// The panel shows one family: its newest events from the list, then the stream from the newest one shown
async function showFamily(family) {
  state.family = family;
  for (const b of document.querySelectorAll("#event-families button"))
    b.setAttribute("aria-pressed", String(b.dataset.family === family));
  stopStream();
  $("#events").replaceChildren();
  let after = null;
  try {
    const query = familyQuery(family);
    const r = await api("GET", `/api/admin/events?limit=50&newest_first=true${query ? "&" + query : ""}`);
    if (family !== state.family) return;  // another family was chosen meanwhile
    r.events.slice().reverse().forEach(addEventRow);
    $("#no-events").hidden = r.events.length > 0;
    after = r.events.length ? `${r.events[0].id}` : "0";
  } catch (err) {
    if (err.status === 401 || family !== state.family) return;
    toast(err.message, true);
  }
  streamEvents(family, after);
}

function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#cleanup-btn").hidden = false;
  $("#logout-btn").hidden = false;
  refresh().catch((err) => err.status !== 401 && toast(err.message, true));
  refreshHealth();
  showFamily(state.family);
  // the panel may show another family than the tables follow: they are read again every 10 s too
  state.timers.push(setInterval(refreshSoon, 10000));
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopStream();
  state.timers.forEach(clearInterval); state.timers = [];
  $("#app").hidden = true; $("#cleanup-btn").hidden = true; $("#logout-btn").hidden = true;
  $("#login").hidden = false;
  $("#conn").textContent = "offline"; $("#conn").className = "";
  const e = $("#login-error");
  e.hidden = !message; e.textContent = message || "";
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
  $("#token-input").value = "";
  try { await api("GET", "/api/admin/scanner/current-jobs"); start(); } catch (err) { if (err.status !== 401) toast(err.message, true); }
});

$("#add-library").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = { path: $("#lib-path").value.trim(), kind: $("#lib-kind").value };
  const name = $("#lib-name").value.trim();
  if (name) body.name = name;
  run(api("POST", "/api/admin/libraries", body).then((r) => {
    state.libraries.set(r.library.id, r.library); renderLibraries(); $("#add-library").reset();
  }), "Library added");
});

$("#cleanup-btn").addEventListener("click", () => {
  if (!confirm("Emergency cleanup pauses every active scan and removes orphaned data. Continue?")) return;
  run(api("POST", "/api/admin/scanner/emergency/cleanup"), "Emergency cleanup done");
});

$("#logout-btn").addEventListener("click", () => logout());

for (const b of document.querySelectorAll("#event-families button"))
  b.addEventListener("click", () => { if (b.dataset.family !== state.family || !state.stream) showFamily(b.dataset.family); });

if (token()) start(); else logout();
