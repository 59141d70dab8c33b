// WFH Monitor dashboard: a small single-page app over the admin JSON API.
// No framework and no build step: the server embeds this file as it is.
// Every value from the API is put on the page as text (never as HTML).

const state = {
  csrf: null,
  retentionDays: 30,
  interval: 300,
  employees: null, // cached list for names and filters
  timers: [],
};

const REFRESH_MS = 30_000;
const LOG_PAGE = 50;
const STATUS_ORDER = { online: 0, idle: 1, paused: 2, offline: 3 };
const MISSED = {
  not_running: "the agent was not running",
  paused: "monitoring was paused",
  capture_failed: "the screenshot failed",
};
const STATUS_TEXT = { online: "Online", idle: "Idle", paused: "Paused", offline: "Offline" };

class SignedOut extends Error {}
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- DOM helpers -----------------------------------------------------------

/** h("a", {href: "/"}, "text", child, ...): an element; strings become text. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    // Through the CSSOM: the Content-Security-Policy forbids style attributes.
    else if (k === "style") Object.assign(el.style, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function link(href, ...children) {
  return h("a", { href, "data-link": true }, ...children);
}

const main = () => document.getElementById("main");

function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes);
}

function setTitle(text) {
  document.title = text ? `${text} · WFH Monitor` : "WFH Monitor";
}

// ---- API -------------------------------------------------------------------

async function api(path, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = state.csrf || "";
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && !path.startsWith("/api/session")) {
    const here = location.pathname + location.search;
    go(`/login?next=${encodeURIComponent(here)}`, { replace: true });
    throw new SignedOut();
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      message = (await res.json()).error.message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, message);
  }
  return res.status === 204 ? null : res.json();
}

async function employees(force = false) {
  if (!state.employees || force) {
    const list = await api("/api/admin/employees");
    state.employees = list.employees;
    state.interval = list.heartbeat_interval_secs;
  }
  return state.employees;
}

function personName(e) {
  return e ? e.display_name || e.username : "unknown";
}

function employeeById(id) {
  return (state.employees || []).find((e) => e.id === id);
}

// ---- time ------------------------------------------------------------------

function relative(iso, now = Date.now()) {
  if (!iso) return "never";
  const secs = Math.round((now - Date.parse(iso)) / 1000);
  if (secs < 45) return "just now";
  const mins = Math.round(secs / 60);
  if (mins < 60) return `${mins} min ago`;
  const hours = Math.round(mins / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  return days === 1 ? "yesterday" : `${days} days ago`;
}

function absolute(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** The local date and time an agent reported, as it reported them. */
function deviceDate(ts) {
  return ts.slice(0, 10);
}
function deviceTime(ts) {
  return ts.slice(11, 16);
}
function deviceOffset(ts) {
  const m = ts.match(/([+-]\d\d:\d\d|Z)$/);
  return m ? (m[1] === "Z" ? "UTC" : `UTC${m[1]}`) : "";
}
function minutesOfDay(ts) {
  return Number(ts.slice(11, 13)) * 60 + Number(ts.slice(14, 16)) + Number(ts.slice(17, 19)) / 60;
}

function isoDay(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}
function addDays(day, n) {
  const d = new Date(`${day}T12:00:00`);
  d.setDate(d.getDate() + n);
  return isoDay(d);
}
function longDay(day) {
  return new Date(`${day}T12:00:00`).toLocaleDateString(undefined, {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
  });
}
function hoursMinutes(mins) {
  const m = Math.round(mins);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

// ---- small pieces ------------------------------------------------------------

function badge(status) {
  return h("span", { class: `badge status-${status}` }, STATUS_TEXT[status] || status);
}

function place(log) {
  const l = log.location;
  if (!l) return "unknown";
  return [l.city, l.country].filter(Boolean).join(", ") || "unknown";
}

function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, e.message || String(e));
}

function thumb(log) {
  const who = personName(employeeById(log.employee_id));
  const alt = `Screenshot of ${log.hostname} (${who}) at ${deviceTime(log.timestamp)} on ${deviceDate(log.timestamp)}`;
  return h(
    "button",
    {
      type: "button",
      class: "thumb",
      "aria-label": `Open ${alt}`,
      onclick: () => openViewer(log, alt),
    },
    h("img", {
      src: `/api/admin/logs/${log.id}/thumbnail`,
      alt,
      loading: "lazy",
      width: 192,
      height: 108,
      // A stored file the server cannot decode answers 422, not a picture.
      onerror: (ev) => ev.target.replaceWith(h("span", { class: "thumb-missing" }, "No preview")),
    }),
  );
}

function openViewer(log, alt) {
  const dialog = document.getElementById("viewer");
  const opener = document.activeElement;
  dialog.addEventListener("close", () => opener && opener.focus(), { once: true });
  const img = document.getElementById("viewer-img");
  img.src = log.image.url;
  img.alt = alt;
  document.getElementById("viewer-title").textContent = alt;
  document.getElementById("viewer-caption").textContent =
    `${log.image.width}×${log.image.height} ${log.image.format.toUpperCase()}, ${Math.round(log.image.bytes / 1024)} KB · public IP ${log.observed_ip} · ${place(log)}`;
  dialog.showModal();
}

function publicIp(log) {
  const r = log.reported_public_ip;
  if (r && r !== log.observed_ip) {
    return [log.observed_ip, h("br"), h("span", { class: "muted" }, `agent saw ${r}`)];
  }
  return log.observed_ip;
}

function logsTable(logs, { showEmployee = true } = {}) {
  const head = h(
    "tr",
    {},
    h("th", { scope: "col" }, "Screenshot"),
    h("th", { scope: "col" }, "Time"),
    showEmployee ? h("th", { scope: "col" }, "Employee") : null,
    h("th", { scope: "col" }, "Computer"),
    h("th", { scope: "col" }, "Local IPs"),
    h("th", { scope: "col" }, "Public IP"),
    h("th", { scope: "col" }, "Location"),
  );
  const rows = logs.map((log) => {
    const e = employeeById(log.employee_id);
    return h(
      "tr",
      { "data-log": log.id },
      h("td", {}, thumb(log)),
      h(
        "td",
        {},
        h("time", { datetime: log.timestamp, title: absolute(log.timestamp) }, deviceTime(log.timestamp)),
        h("br"),
        h("span", { class: "muted" }, deviceOffset(log.timestamp)),
      ),
      showEmployee
        ? h(
            "td",
            {},
            link(`/employees/${log.employee_id}/${deviceDate(log.timestamp)}`, personName(e)),
            h("br"),
            h("span", { class: "muted" }, `as ${log.username}`),
          )
        : null,
      h("td", {}, log.hostname),
      h("td", { class: "mono" }, log.local_ips.length ? log.local_ips.join(", ") : "none"),
      h("td", { class: "mono" }, publicIp(log)),
      h("td", {}, place(log)),
    );
  });
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { class: "logs" }, h("thead", {}, head), h("tbody", {}, rows)),
  );
}

/** Logs grouped by the day the employee's device reported. */
function logsByDay(logs, options) {
  const days = new Map();
  for (const log of logs) {
    const d = deviceDate(log.timestamp);
    if (!days.has(d)) days.set(d, []);
    days.get(d).push(log);
  }
  return [...days].map(([day, list]) =>
    h(
      "section",
      { class: "day", "aria-label": longDay(day) },
      h("h2", {}, longDay(day), " ", h("span", { class: "muted" }, `· ${list.length} log${list.length === 1 ? "" : "s"}`)),
      logsTable(list, options),
    ),
  );
}

// ---- views -------------------------------------------------------------------

async function viewLogin(params) {
  document.getElementById("top").hidden = true;
  setTitle("Sign in");
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
    "aria-describedby": "token-help",
  });
  const form = h(
    "form",
    {
      class: "card signin",
      onsubmit: async (ev) => {
        ev.preventDefault();
        error.hidden = true;
        try {
          const s = await api("/api/session", { method: "POST", body: { token: input.value } });
          state.csrf = s.csrf_token;
          state.retentionDays = s.retention_days;
          state.interval = s.heartbeat_interval_secs;
          const next = params.get("next");
          go(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
        } catch (e) {
          error.textContent =
            e.status === 401 || e.status === 403
              ? "That is not a valid admin token."
              : `Could not sign in: ${e.message}`;
          error.hidden = false;
          input.focus();
        }
      },
    },
    h("h1", {}, h("img", { src: "/assets/icon.svg", alt: "", width: 28, height: 28 }), " WFH Monitor"),
    h("label", { for: "token" }, "Admin token"),
    input,
    h(
      "p",
      { id: "token-help", class: "muted" },
      "Create one on the server with ",
      h("code", {}, "wfh-server admin-token create"),
      ".",
    ),
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  show(form);
  input.focus();
}

async function viewBoard(params) {
  setTitle("Team");
  const search = h("input", {
    id: "search",
    type: "search",
    placeholder: "Name or username",
    value: params.get("q") || "",
    autocomplete: "off",
  });
  const counts = h("p", { class: "counts", "aria-live": "polite" });
  const updated = h("p", { class: "muted small", "aria-live": "polite" });
  const body = h("tbody");
  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "board" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Employee"),
          h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Last seen"),
          h("th", { scope: "col" }, "Computer"),
          h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Links")),
        ),
      ),
      body,
    ),
  );
  let list = [];
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = list.filter(
      (e) => !q || e.username.toLowerCase().includes(q) || (e.display_name || "").toLowerCase().includes(q),
    );
    const today = isoDay(new Date());
    body.replaceChildren(
      ...shown.map((e) =>
        h(
          "tr",
          { "data-employee": e.username, class: e.active ? "" : "inactive" },
          h(
            "th",
            { scope: "row" },
            link(`/employees/${e.id}/${today}`, personName(e)),
            h("br"),
            h("span", { class: "muted" }, e.username, e.active ? "" : " · disabled"),
          ),
          h("td", {}, badge(e.status)),
          h("td", {}, e.last_seen ? h("time", { datetime: e.last_seen, title: absolute(e.last_seen) }, relative(e.last_seen)) : "never"),
          h("td", {}, e.last_hostname || "—"),
          h("td", { class: "links" }, link(`/logs?employee_id=${e.id}`, "Logs")),
        ),
      ),
    );
    if (!shown.length) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "muted" }, q ? "No employee matches." : "No employees yet: add one under Administration.")));
    }
    const by = (s) => list.filter((e) => e.active && e.status === s).length;
    counts.replaceChildren(
      ...["online", "idle", "paused", "offline"].map((s) => h("span", { class: `count status-${s}` }, h("b", {}, by(s)), ` ${STATUS_TEXT[s].toLowerCase()}`)),
    );
  };
  const refresh = async () => {
    try {
      const all = await employees(true);
      list = [...all].sort(
        (a, b) =>
          Number(b.active) - Number(a.active) ||
          STATUS_ORDER[a.status] - STATUS_ORDER[b.status] ||
          personName(a).localeCompare(personName(b)),
      );
      render();
      updated.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`;
    } catch (e) {
      if (!(e instanceof SignedOut)) updated.replaceChildren(errorBox(e));
    }
  };
  search.addEventListener("input", () => {
    const u = new URL(location.href);
    if (search.value) u.searchParams.set("q", search.value);
    else u.searchParams.delete("q");
    history.replaceState(null, "", u);
    render();
  });
  show(
    h("div", { class: "heading" }, h("h1", {}, "Team"), counts),
    h("div", { class: "toolbar" }, h("label", { for: "search" }, "Search"), search, updated),
    table,
  );
  await refresh();
  state.timers.push(setInterval(refresh, REFRESH_MS));
}

function logFilter(params) {
  const today = isoDay(new Date());
  return {
    employee_id: params.get("employee_id") || "",
    from: params.get("from") || addDays(today, -6),
    to: params.get("to") || today,
    cursor: params.get("cursor") || "",
  };
}

function query(obj) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  return q.toString();
}

async function viewLogs(params) {
  setTitle("Logs");
  const people = await employees();
  const f = logFilter(params);
  const today = isoDay(new Date());
  const oldest = addDays(today, -state.retentionDays);
  const select = h(
    "select",
    { id: "employee", name: "employee_id" },
    h("option", { value: "" }, "Everyone"),
    [...people]
      .sort((a, b) => personName(a).localeCompare(personName(b)))
      .map((e) => h("option", { value: e.id, selected: String(e.id) === f.employee_id }, `${personName(e)} (${e.username})`)),
  );
  const from = h("input", { id: "from", name: "from", type: "date", value: f.from, min: oldest, max: today, required: true });
  const to = h("input", { id: "to", name: "to", type: "date", value: f.to, min: oldest, max: today, required: true });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (ev) => {
        ev.preventDefault();
        if (from.value > to.value) {
          problem.textContent = "The start date is after the end date.";
          problem.hidden = false;
          return;
        }
        go(`/logs?${query({ employee_id: select.value, from: from.value, to: to.value })}`);
      },
    },
    h("div", {}, h("label", { for: "employee" }, "Employee"), select),
    h("div", {}, h("label", { for: "from" }, "From"), from),
    h("div", {}, h("label", { for: "to" }, "To"), to),
    h("div", {}, h("button", { type: "submit" }, "Show")),
    problem,
  );
  // The same filter as the exports: whole days in UTC.
  const apiFilter = { employee_id: f.employee_id, from: f.from, to: f.to };
  const exportQuery = query({ employee_id: f.employee_id, from: f.from, to: f.to });
  const exports = h(
    "div",
    { class: "exports" },
    h("a", { class: "button quiet", href: `/api/admin/logs/export/logs.csv?${exportQuery}`, download: true }, "Export CSV"),
    h("a", { class: "button quiet", href: `/api/admin/logs/export/logs.pdf?${exportQuery}`, download: true }, "Export PDF"),
  );
  const results = h("div", { class: "results", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
  show(h("div", { class: "heading" }, h("h1", {}, "Detailed logs"), exports), form, results);
  try {
    const page = await api(`/api/admin/logs?${query({ ...apiFilter, limit: LOG_PAGE, cursor: f.cursor })}`);
    const logs = page.items;
    const nav = h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      f.cursor ? link(`/logs?${query({ employee_id: f.employee_id, from: f.from, to: f.to })}`, "← Newest") : null,
      page.next_cursor ? link(`/logs?${query({ ...f, cursor: page.next_cursor })}`, "Older →") : null,
    );
    results.replaceChildren(
      ...(logs.length ? logsByDay(logs) : [h("p", { class: "empty" }, "No detailed logs for this filter.")]),
      nav,
    );
  } catch (e) {
    if (!(e instanceof SignedOut)) results.replaceChildren(errorBox(e));
  }
}

/** All pages of a listing. */
async function everything(path, filter) {
  const items = [];
  let cursor = "";
  for (;;) {
    const page = await api(`${path}?${query({ ...filter, limit: 1000, cursor })}`);
    items.push(...page.items);
    if (!page.next_cursor) return items;
    cursor = page.next_cursor;
  }
}

/** Segments of a day from its heartbeats (ascending), in minutes of the day. */
function timeline(beats, intervalSecs) {
  const step = intervalSecs / 60;
  const segments = [];
  let prev = null;
  for (const b of beats) {
    const at = minutesOfDay(b.timestamp);
    if (prev) {
      const gap = at - prev.at;
      if (gap > 2 * step) {
        segments.push({ status: prev.status, from: prev.at, to: prev.at + step });
        segments.push({ status: "offline", from: prev.at + step, to: at });
      } else {
        segments.push({ status: prev.status, from: prev.at, to: at });
      }
    } else if (at > 0) {
      segments.push({ status: "offline", from: 0, to: at });
    }
    prev = { at, status: b.status };
  }
  if (prev) {
    const end = Math.min(prev.at + step, 24 * 60);
    segments.push({ status: prev.status, from: prev.at, to: end });
    if (end < 24 * 60) segments.push({ status: "none", from: end, to: 24 * 60 });
  }
  // Merge neighbours of the same status.
  const merged = [];
  for (const s of segments) {
    const last = merged[merged.length - 1];
    if (last && last.status === s.status && Math.abs(last.to - s.from) < 0.01) last.to = s.to;
    else if (s.to > s.from) merged.push({ ...s });
  }
  return merged;
}

function clock(mins) {
  const m = Math.min(Math.round(mins), 24 * 60);
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

function eventText(ev) {
  const e = ev.event;
  switch (e.kind) {
    case "startup":
      return `Agent started (computer booted ${absolute(e.boot_time)}, agent ${e.agent_version} on ${e.os})`;
    case "shutdown":
      return e.reason === "session" ? "Agent stopped: log-off or shutdown" : "Agent stopped by hand";
    case "log_missed":
      return `Detailed log ${e.slot + 1} of the day not taken: ${MISSED[e.reason] || e.reason}${e.detail ? ` (${e.detail})` : ""}`;
    case "consent_given":
      return `Consent given (text version ${e.version})`;
    default:
      return e.kind;
  }
}

async function viewDay(id, day) {
  const people = await employees();
  const e = people.find((p) => p.id === id);
  if (!e) {
    show(h("h1", {}, "Not found"), h("p", {}, "No such employee."));
    return;
  }
  setTitle(`${personName(e)} · ${day}`);
  const filter = { employee_id: id, from: addDays(day, -1), to: addDays(day, 1) };
  const dateInput = h("input", { id: "day", type: "date", value: day, max: isoDay(new Date()) });
  dateInput.addEventListener("change", () => dateInput.value && go(`/employees/${id}/${dateInput.value}`));
  const header = h(
    "div",
    { class: "heading" },
    h("h1", {}, personName(e), " ", h("span", { class: "muted" }, `· ${longDay(day)}`)),
    h(
      "nav",
      { class: "daynav", "aria-label": "Days" },
      link(`/employees/${id}/${addDays(day, -1)}`, "← Previous day"),
      h("label", { for: "day", class: "sr-only" }, "Day"),
      dateInput,
      link(`/employees/${id}/${addDays(day, 1)}`, "Next day →"),
    ),
  );
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  show(header, body);
  try {
    const [beats, logs, events] = await Promise.all([
      everything("/api/admin/heartbeats", filter),
      everything("/api/admin/logs", filter),
      everything("/api/admin/events", filter),
    ]);
    const mine = (x) => deviceDate(x.timestamp) === day;
    const dayBeats = beats.filter(mine).sort((a, b) => minutesOfDay(a.timestamp) - minutesOfDay(b.timestamp));
    const dayLogs = logs.filter(mine);
    const dayEvents = events.filter(mine).sort((a, b) => minutesOfDay(a.timestamp) - minutesOfDay(b.timestamp));
    const segs = timeline(dayBeats, state.interval);
    const total = (s) => segs.filter((x) => x.status === s).reduce((n, x) => n + x.to - x.from, 0);
    const bar = h(
      "div",
      { class: "timeline", role: "img", "aria-label": segs.filter((s) => s.status !== "none").map((s) => `${clock(s.from)}–${clock(s.to)} ${s.status}`).join(", ") || "no heartbeats" },
      segs.map((s) =>
        h("span", {
          class: `seg status-${s.status}`,
          style: { left: `${(s.from / 1440) * 100}%`, width: `${((s.to - s.from) / 1440) * 100}%` },
          title: `${clock(s.from)}–${clock(s.to)} ${s.status === "none" ? "no data" : STATUS_TEXT[s.status]}`,
        }),
      ),
    );
    const ticks = h(
      "div",
      { class: "ticks", "aria-hidden": "true" },
      [0, 3, 6, 9, 12, 15, 18, 21, 24].map((hr) => h("span", { style: { left: `${(hr / 24) * 100}%` } }, `${String(hr).padStart(2, "0")}:00`)),
    );
    const legend = h(
      "ul",
      { class: "legend" },
      ["online", "idle", "paused", "offline"].map((s) => h("li", {}, h("span", { class: `swatch status-${s}` }), STATUS_TEXT[s])),
    );
    const facts = dayBeats.length
      ? h(
          "dl",
          { class: "facts" },
          h("div", {}, h("dt", {}, "First heartbeat"), h("dd", {}, deviceTime(dayBeats[0].timestamp), " ", h("span", { class: "muted" }, deviceOffset(dayBeats[0].timestamp)))),
          h("div", {}, h("dt", {}, "Last heartbeat"), h("dd", {}, deviceTime(dayBeats[dayBeats.length - 1].timestamp))),
          h("div", {}, h("dt", {}, "Online"), h("dd", {}, hoursMinutes(total("online")))),
          h("div", {}, h("dt", {}, "Idle"), h("dd", {}, hoursMinutes(total("idle")))),
          h("div", {}, h("dt", {}, "Paused"), h("dd", {}, hoursMinutes(total("paused")))),
          h("div", {}, h("dt", {}, "Heartbeats"), h("dd", {}, dayBeats.length)),
        )
      : h("p", { class: "empty" }, "No heartbeats on this day.");
    body.replaceChildren(
      h("section", { "aria-labelledby": "tl" }, h("h2", { id: "tl" }, "Timeline"), h("div", { class: "tl-wrap" }, bar, ticks), legend, facts),
      h(
        "section",
        { "aria-labelledby": "dl" },
        h("h2", { id: "dl" }, `Detailed logs (${dayLogs.length})`),
        dayLogs.length ? logsTable(dayLogs, { showEmployee: false }) : h("p", { class: "empty" }, "No detailed logs on this day."),
      ),
      h(
        "section",
        { "aria-labelledby": "ev" },
        h("h2", { id: "ev" }, "Agent events"),
        dayEvents.length
          ? h("ul", { class: "events" }, dayEvents.map((ev) => h("li", {}, h("time", { datetime: ev.timestamp }, deviceTime(ev.timestamp)), " ", eventText(ev))))
          : h("p", { class: "empty" }, "None."),
      ),
    );
  } catch (err) {
    if (!(err instanceof SignedOut)) body.replaceChildren(errorBox(err));
  }
}

async function viewAdmin() {
  setTitle("Administration");
  const notice = h("div", { "aria-live": "polite" });
  const username = h("input", { id: "new-username", name: "username", required: true, autocomplete: "off", pattern: "[^\\s].*" });
  const displayName = h("input", { id: "new-name", name: "display_name", autocomplete: "off" });
  const addForm = h(
    "form",
    {
      class: "card add",
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const created = await api("/api/admin/employees", {
            method: "POST",
            body: { username: username.value.trim(), display_name: displayName.value.trim() || null },
          });
          username.value = "";
          displayName.value = "";
          notice.replaceChildren(codeCard(created.employee, created.enrollment));
          await refresh();
        } catch (e) {
          if (!(e instanceof SignedOut)) notice.replaceChildren(errorBox(e));
        }
      },
    },
    h("h2", {}, "Add an employee"),
    h("div", { class: "row" }, h("div", {}, h("label", { for: "new-username" }, "Username"), username), h("div", {}, h("label", { for: "new-name" }, "Full name (optional)"), displayName), h("div", {}, h("button", { type: "submit" }, "Add"))),
  );
  const body = h("tbody");
  const refresh = async () => {
    const list = [...(await employees(true))].sort((a, b) => personName(a).localeCompare(personName(b)));
    body.replaceChildren(...list.map((e) => employeeRow(e)));
  };
  const act = async (fn) => {
    try {
      await fn();
      await refresh();
    } catch (e) {
      if (!(e instanceof SignedOut)) notice.replaceChildren(errorBox(e));
    }
  };
  const employeeRow = (e) => {
    const devices = h(
      "td",
      { class: "devices" },
      h(
        "button",
        {
          type: "button",
          class: "quiet",
          onclick: () =>
            loadDevices(e, devices).catch((err) => {
              if (!(err instanceof SignedOut)) notice.replaceChildren(errorBox(err));
            }),
        },
        "Show devices",
      ),
    );
    return h(
      "tr",
      { "data-employee": e.username },
      h("th", { scope: "row" }, personName(e), h("br"), h("span", { class: "muted" }, e.username)),
      h("td", {}, e.active ? badge(e.status) : h("span", { class: "badge disabled" }, "Disabled")),
      devices,
      h(
        "td",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            class: "quiet",
            onclick: () =>
              act(async () => {
                const code = await api(`/api/admin/employees/${e.id}/enrollment-codes`, { method: "POST" });
                notice.replaceChildren(codeCard(e, code));
              }),
          },
          "New enrolment code",
        ),
        e.active
          ? h(
              "button",
              {
                type: "button",
                class: "danger",
                onclick: () => confirm(`Disable ${personName(e)}? Their devices stop being accepted until you enable them again.`) && act(() => api(`/api/admin/employees/${e.id}/disable`, { method: "POST" })),
              },
              "Disable",
            )
          : h("button", { type: "button", class: "quiet", onclick: () => act(() => api(`/api/admin/employees/${e.id}/enable`, { method: "POST" })) }, "Enable"),
      ),
    );
  };
  const loadDevices = async (e, cell) => {
    const list = await api(`/api/admin/employees/${e.id}/devices`);
    cell.replaceChildren(
      list.length
        ? h(
            "ul",
            { class: "device-list" },
            list.map((d) =>
              h(
                "li",
                {},
                `${d.hostname} (${d.username}), enrolled ${new Date(d.created_at).toLocaleDateString()} `,
                d.revoked_at
                  ? h("span", { class: "badge disabled" }, "Revoked")
                  : h(
                      "button",
                      {
                        type: "button",
                        class: "danger small",
                        onclick: async () => {
                          if (!confirm(`Revoke ${d.hostname}? Its token stops working at once.`)) return;
                          try {
                            await api(`/api/admin/devices/${d.id}/revoke`, { method: "POST" });
                            await loadDevices(e, cell);
                          } catch (err) {
                            if (!(err instanceof SignedOut)) notice.replaceChildren(errorBox(err));
                          }
                        },
                      },
                      "Revoke",
                    ),
              ),
            ),
          )
        : h("span", { class: "muted" }, "No devices yet"),
    );
  };
  const tokens = adminTokens();
  show(
    h("div", { class: "heading" }, h("h1", {}, "Administration")),
    addForm,
    notice,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "admin" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Employee"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Devices"), h("th", { scope: "col" }, "Actions"))),
        body,
      ),
    ),
    tokens.section,
  );
  await Promise.all([refresh(), tokens.refresh()]);
}

/** The admin tokens: who may use the admin API and this dashboard. */
function adminTokens() {
  const notice = h("div", { "aria-live": "polite" });
  const label = h("input", { id: "token-label", name: "label", required: true, autocomplete: "off", maxlength: 100 });
  const days = h("input", { id: "token-days", name: "expires_days", type: "number", min: 1, max: 3650, placeholder: "never" });
  const body = h("tbody");
  const state = (t) => (t.revoked_at ? "Revoked" : t.expires_at && new Date(t.expires_at) <= new Date() ? "Expired" : "Active");
  const refresh = async () => {
    const list = await api("/api/admin/admin-tokens");
    body.replaceChildren(
      ...list.map((t) =>
        h(
          "tr",
          { "data-token-id": t.id },
          h("td", {}, t.label),
          h("td", {}, absolute(t.created_at)),
          h("td", {}, t.last_used_at ? relative(t.last_used_at) : "never"),
          h("td", {}, t.expires_at ? absolute(t.expires_at) : "never"),
          h("td", {}, state(t) === "Active" ? h("span", { class: "badge status-online" }, "Active") : h("span", { class: "badge disabled" }, state(t))),
          h(
            "td",
            {},
            state(t) === "Active"
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "danger",
                    onclick: async () => {
                      if (!confirm(`Revoke the admin token "${t.label}"? It and every dashboard session signed in with it stop working at once.`)) return;
                      try {
                        await api(`/api/admin/admin-tokens/${t.id}/revoke`, { method: "POST" });
                        await refresh();
                      } catch (e) {
                        if (!(e instanceof SignedOut)) notice.replaceChildren(errorBox(e));
                      }
                    },
                  },
                  "Revoke",
                )
              : null,
          ),
        ),
      ),
    );
  };
  const form = h(
    "form",
    {
      class: "card add",
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const created = await api("/api/admin/admin-tokens", {
            method: "POST",
            body: { label: label.value.trim(), expires_days: days.value ? Number(days.value) : null },
          });
          label.value = "";
          days.value = "";
          notice.replaceChildren(
            h(
              "div",
              { class: "card code", role: "status" },
              h("h2", {}, `Admin token "${created.label}"`),
              h("p", { class: "code-value" }, created.token),
              h("p", { class: "muted" }, "Copy it now: it is shown only once. Anyone who has it can use the admin API and this dashboard until it is revoked or expires."),
            ),
          );
          await refresh();
        } catch (e) {
          if (!(e instanceof SignedOut)) notice.replaceChildren(errorBox(e));
        }
      },
    },
    h("h2", {}, "Create an admin token"),
    h("div", { class: "row" }, h("div", {}, h("label", { for: "token-label" }, "What it is for"), label), h("div", {}, h("label", { for: "token-days" }, "Expires after (days)"), days), h("div", {}, h("button", { type: "submit" }, "Create"))),
  );
  const section = h(
    "section",
    { class: "tokens", "aria-labelledby": "tokens-heading" },
    h("h2", { id: "tokens-heading" }, "Admin tokens"),
    form,
    notice,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "admin" },
        h("thead", {}, h("tr", {}, ...["Label", "Created", "Last used", "Expires", "State", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
        body,
      ),
    ),
  );
  return { section, refresh };
}

function codeCard(e, code) {
  const cmd = `wfh-agent enroll --server ${location.origin} --code ${code.code}`;
  return h(
    "div",
    { class: "card code", role: "status" },
    h("h2", {}, `Enrolment code for ${personName(e)}`),
    h("p", { class: "code-value", "data-code": code.code }, code.code),
    h("p", {}, "On the employee's computer, run:"),
    h("pre", {}, cmd),
    h("p", { class: "muted" }, `Single use; expires ${absolute(code.expires_at)}. It is shown only now.`),
  );
}

// ---- summaries ---------------------------------------------------------------

const PERIODS = { day: "Day", week: "Week", month: "Month" };

function hours(secs) {
  const m = Math.round(secs / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")}`;
}

function named(list, n = 3) {
  return list.slice(0, n).map((x) => `${x.name} ${hours(x.secs)}`).join(", ") || "—";
}

function shortTime(iso) {
  return iso ? iso.slice(11, 16) : "—";
}

/** Move a period by `n` periods from the day `date`. */
function shiftPeriod(period, date, n) {
  if (period === "day") return addDays(date, n);
  if (period === "week") return addDays(date, 7 * n);
  const d = new Date(`${date.slice(0, 7)}-01T12:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + n);
  return isoDay(d);
}

function activeIdle(f) {
  const source = { activity: "measured input", heartbeats: "heartbeat status", mixed: "input and heartbeats", none: "" }[f.active_idle_source];
  return `${hours(f.active_secs)} / ${hours(f.idle_secs)}${source ? ` (${source})` : ""}`;
}

function figureList(f) {
  const rows = [
    ["Online", hours(f.online_secs)],
    ["Active / idle", activeIdle(f)],
    ["Paused", hours(f.paused_secs)],
    ["First and last seen", f.first_seen ? `${f.first_seen.slice(0, 16).replace("T", " ")} – ${f.last_seen.slice(0, 16).replace("T", " ")}` : "—"],
    ["Detailed logs", `${f.logs_taken} of ${f.logs_expected} expected`],
    ["Top applications", named(f.top_apps, 5)],
    ["Top websites", named(f.top_sites, 5)],
  ];
  if (f.key_presses !== null && f.key_presses !== undefined) rows.push(["Key presses (count only)", String(f.key_presses)]);
  if (f.boots.length) rows.push(["Computer started", f.boots.map((b) => b.slice(0, 16).replace("T", " ")).join(", ")]);
  return h("dl", { class: "figures" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

async function viewSummary(params) {
  setTitle("Summaries");
  const people = await employees();
  const period = PERIODS[params.get("period")] ? params.get("period") : "week";
  const date = params.get("date") || isoDay(new Date());
  const employeeId = params.get("employee_id") || "";
  const team = params.get("team") || "";
  const teams = [...new Set(people.map((e) => e.team).filter(Boolean))].sort();
  const scope = h(
    "select",
    { id: "scope", name: "scope" },
    h("option", { value: "" }, "Everyone"),
    teams.length ? h("optgroup", { label: "Teams" }, teams.map((t) => h("option", { value: `team:${t}`, selected: t === team }, t))) : null,
    h(
      "optgroup",
      { label: "Employees" },
      [...people]
        .sort((a, b) => personName(a).localeCompare(personName(b)))
        .map((e) => h("option", { value: `employee:${e.id}`, selected: String(e.id) === employeeId }, personName(e))),
    ),
  );
  const periodSelect = h(
    "select",
    { id: "period", name: "period" },
    Object.entries(PERIODS).map(([v, label]) => h("option", { value: v, selected: v === period }, label)),
  );
  const day = h("input", { id: "date", name: "date", type: "date", value: date, required: true });
  const here = (extra) => {
    const [kind, value] = scope.value.split(":");
    return `/summary?${query({ period: periodSelect.value, date: day.value, employee_id: kind === "employee" ? value : "", team: kind === "team" ? value : "", ...extra })}`;
  };
  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (ev) => {
        ev.preventDefault();
        go(here({}));
      },
    },
    h("div", {}, h("label", { for: "scope" }, "Who"), scope),
    h("div", {}, h("label", { for: "period" }, "Period"), periodSelect),
    h("div", {}, h("label", { for: "date" }, "Containing"), day),
    h("div", {}, h("button", { type: "submit" }, "Show")),
  );
  const apiQuery = query({ period, date, employee_id: employeeId, team });
  const results = h("div", { class: "results", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
  const exports = h(
    "div",
    { class: "exports" },
    h("a", { class: "button quiet", href: `/api/admin/summary?${apiQuery}&format=csv`, download: true }, "Export CSV"),
    h("a", { class: "button quiet", href: `/api/admin/summary?${apiQuery}&format=pdf`, download: true }, "Export PDF"),
  );
  show(h("div", { class: "heading" }, h("h1", {}, "Summaries"), exports), form, results);
  try {
    const s = await api(`/api/admin/summary?${apiQuery}`);
    const move = (n) => `/summary?${query({ period, date: shiftPeriod(period, date, n), employee_id: employeeId, team })}`;
    const caption = h(
      "div",
      { class: "period" },
      link(move(-1), "← Previous"),
      h("h2", { id: "period-label" }, `${PERIODS[period]} ${s.label}`, h("span", { class: "muted" }, ` · ${s.start.slice(0, 10)} to ${shiftPeriod("day", s.end.slice(0, 10), -1)} · ${s.timezone}`)),
      link(move(1), "Next →"),
    );
    const parts = [caption];
    if (s.team_totals) {
      parts.push(h("section", { class: "card", "aria-labelledby": "team-h" }, h("h3", { id: "team-h" }, `Team ${s.team}: everyone together`), figureList(s.team_totals)));
    }
    if (s.employees.length === 1 && employeeId) {
      const e = s.employees[0];
      parts.push(h("section", { class: "card", "aria-labelledby": "total-h" }, h("h3", { id: "total-h" }, `${personName(employeeById(e.employee.id) || e.employee)}: the ${period}`), figureList(e.totals)));
      parts.push(
        h(
          "div",
          { class: "table-wrap" },
          h(
          "table",
          { class: "summary-days" },
          h("caption", {}, "Day by day (company time)"),
          h("thead", {}, h("tr", {}, ["Day", "First seen", "Last seen", "Online", "Active / idle", "Paused", "Logs", "Top applications"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            e.days.map((d) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, link(`/employees/${e.employee.id}/${d.date}`, longDay(d.date)), d.hours !== 24 ? h("span", { class: "muted" }, ` (${d.hours} h)`) : null),
                ...(d.figures.first_seen || d.figures.logs_expected
                  ? [
                      h("td", {}, shortTime(d.figures.first_seen)),
                      h("td", {}, shortTime(d.figures.last_seen)),
                      h("td", {}, hours(d.figures.online_secs)),
                      h("td", {}, `${hours(d.figures.active_secs)} / ${hours(d.figures.idle_secs)}`),
                      h("td", {}, hours(d.figures.paused_secs)),
                      h("td", {}, `${d.figures.logs_taken} / ${d.figures.logs_expected}`),
                      h("td", {}, named(d.figures.top_apps)),
                    ]
                  : [h("td", { colspan: 7, class: "muted" }, "Not seen")]),
              ),
            ),
          ),
          ),
        ),
      );
    } else {
      parts.push(
        h(
          "div",
          { class: "table-wrap" },
          h(
          "table",
          { class: "summary-people" },
          h("caption", {}, `${s.employees.length} ${s.employees.length === 1 ? "person" : "people"}`),
          h("thead", {}, h("tr", {}, ["Employee", "Team", "Online", "Active / idle", "Paused", "Logs", "Top applications"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            s.employees.map((e) =>
              h(
                "tr",
                {},
                h("th", { scope: "row" }, link(`/summary?${query({ period, date, employee_id: e.employee.id })}`, personName(employeeById(e.employee.id) || e.employee))),
                h("td", {}, e.team || "—"),
                h("td", {}, hours(e.totals.online_secs)),
                h("td", {}, `${hours(e.totals.active_secs)} / ${hours(e.totals.idle_secs)}`),
                h("td", {}, hours(e.totals.paused_secs)),
                h("td", {}, `${e.totals.logs_taken} / ${e.totals.logs_expected}`),
                h("td", {}, named(e.totals.top_apps)),
              ),
            ),
          ),
          ),
        ),
      );
    }
    results.replaceChildren(...parts);
  } catch (e) {
    if (!(e instanceof SignedOut)) results.replaceChildren(errorBox(e));
  }
}

// ---- router ------------------------------------------------------------------

const routes = [
  [/^\/login$/, (p) => viewLogin(p), "login"],
  [/^\/$/, (p) => viewBoard(p), "board"],
  [/^\/logs$/, (p) => viewLogs(p), "logs"],
  [/^\/summary$/, (p) => viewSummary(p), "summary"],
  [/^\/admin$/, () => viewAdmin(), "admin"],
  [/^\/employees\/(\d+)\/(\d{4}-\d\d-\d\d)$/, (p, m) => viewDay(Number(m[1]), m[2]), "board"],
];

async function render() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  const route = routes.find(([re]) => re.test(path));
  if (!route) {
    show(h("h1", {}, "Not found"), h("p", {}, link("/", "Back to the team board")));
    return;
  }
  const [re, view, nav] = route;
  if (nav !== "login") {
    if (!state.csrf) {
      try {
        const s = await api("/api/session");
        state.csrf = s.csrf_token;
        state.retentionDays = s.retention_days;
        state.interval = s.heartbeat_interval_secs;
      } catch {
        go(`/login?next=${encodeURIComponent(path + location.search)}`, { replace: true });
        return;
      }
    }
    document.getElementById("top").hidden = false;
    for (const a of document.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }
  try {
    await view(params, path.match(re));
  } catch (e) {
    if (!(e instanceof SignedOut)) show(errorBox(e));
  }
  document.body.dataset.ready = path;
}

function go(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  delete document.body.dataset.ready;
  render().then(() => main().focus({ preventScroll: true }));
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", () => render());
document.getElementById("sign-out").addEventListener("click", async () => {
  try {
    await api("/api/session", { method: "DELETE" });
  } finally {
    state.csrf = null;
    state.employees = null;
    go("/login", { replace: true });
  }
});

render();
