// What to show, decided without the DOM (unit-tested in view.test.ts).
import type { Delivery, SentEntry, Snapshot, Status } from "./types";

export type Page = "setup" | "consent" | "enroll" | "status" | "sent" | "collected";

/** Where the window opens: set-up steps first, in order. */
export function startPage(s: Snapshot, asked: string | null): Page {
  if (s.state === "not_enrolled") {
    if (!s.configured_server && !s.status.server) return "setup";
    return s.status.consent_needed ? "consent" : "enroll";
  }
  if (s.status.consent_needed) return "consent";
  if (asked === "consent") return "collected";
  if (asked === "sent" || asked === "collected" || asked === "status") return asked;
  return "status";
}

/** "1 of 2 taken" — never when the next one is planned. */
export function logsToday(s: Status): string {
  if (!s.working_day) return "None today (not a working day)";
  return `${s.logs_today_sent} of ${s.logs_per_day} taken`;
}

export function connection(d: Delivery, s: Status): { text: string; tone: "ok" | "warn" | "bad" } {
  switch (d.state) {
    case "connected":
      return { text: `Connected to ${host(s.server)}`, tone: "ok" };
    case "starting":
      return { text: `Connecting to ${host(s.server)}…`, tone: "warn" };
    case "unreachable":
      return { text: `Cannot reach ${host(s.server)}; will retry (${d.error})`, tone: "bad" };
    case "token_rejected":
      return { text: "The server no longer accepts this computer: enrol again", tone: "bad" };
  }
}

function host(url: string | null): string {
  if (!url) return "the server";
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** Minutes left in a pause, rounded up; 0 when not paused. */
export function pauseLeft(until: string | null, now: Date): number {
  if (!until) return 0;
  const ms = new Date(until).getTime() - now.getTime();
  return ms > 0 ? Math.ceil(ms / 60000) : 0;
}

export function duration(minutes: number): string {
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** Pause choices the policy allows (limit in minutes; null = not allowed). */
export function pauseChoices(limit: number | null, now: Date = new Date()): { label: string; minutes: number | null }[] {
  if (limit === null) return [];
  const out: { label: string; minutes: number | null }[] = [];
  for (const m of [15, 60]) if (m <= limit) out.push({ label: `For ${duration(m)}`, minutes: m });
  out.push({ label: limit < minutesToMidnight(now) - 1 ? `For ${duration(limit)} (the most allowed)` : "Until tomorrow", minutes: null });
  return out;
}

function minutesToMidnight(now: Date): number {
  const midnight = new Date(now);
  midnight.setHours(24, 0, 0, 0);
  return Math.ceil((midnight.getTime() - now.getTime()) / 60000);
}

export function time(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

const KIND: Record<string, string> = {
  startup: "App started",
  shutdown: "App stopped",
  log_missed: "Planned detailed log not taken",
  consent_given: "Consent given",
};

/** A sent item as a title and the fields that were sent, in plain words. */
export function describe(e: SentEntry): { title: string; fields: [string, string][] } {
  const b = e.body as Record<string, any>;
  const fields: [string, string][] = [];
  const add = (label: string, v: unknown) => {
    if (v === undefined || v === null || v === "") return;
    fields.push([label, Array.isArray(v) ? v.join(", ") || "—" : String(v)]);
  };
  let title: string;
  if (e.kind === "heartbeat") {
    title = `Heartbeat: ${b.status}`;
    add("User name", b.username);
    add("Computer", b.hostname);
    add("Status", b.status);
    add("Time", time(b.timestamp));
  } else if (e.kind === "log") {
    title = "Detailed log with a screenshot";
    add("User name", b.username);
    add("Computer", b.hostname);
    add("Local IP addresses", b.local_ips);
    add("Public IP address", b.public_ip ?? "(seen by the server)");
    add("Location", "looked up by the server from the public IP address");
    add("Time", time(b.timestamp));
    if (e.image_bytes) add("Screenshot", `${Math.round(e.image_bytes / 1024)} KB`);
  } else if (e.kind === "activity") {
    title = "Activity summary";
    const minutes = (s: number) => `${Math.floor(s / 60)} min ${s % 60} s`;
    add("User name", b.username);
    add("Computer", b.hostname);
    add("From", time(b.start));
    add("Length", minutes(Number(b.duration_secs)));
    add("Observed", minutes(Number(b.observed_secs)));
    if (b.active_secs != null) add("Active", minutes(Number(b.active_secs)));
    if (b.idle_secs != null) add("Idle", minutes(Number(b.idle_secs)));
    const apps = (b.apps ?? []) as { app: string; title?: string; secs: number }[];
    if (apps.length) add("Applications", apps.map((a) => `${a.app}${a.title ? ` — ${a.title}` : ""}: ${minutes(a.secs)}`));
    const sites = (b.sites ?? []) as { domain: string; url?: string; secs: number }[];
    if (sites.length) add("Websites", sites.map((w) => `${w.url ?? w.domain}: ${minutes(w.secs)}`));
    if (b.key_presses != null) add("Key presses (count only)", b.key_presses);
  } else {
    const ev = (b.event ?? {}) as Record<string, any>;
    title = KIND[ev.kind] ?? String(ev.kind ?? "Event");
    add("User name", b.username);
    add("Computer", b.hostname);
    if (ev.kind === "startup") {
      add("Computer started", time(ev.boot_time));
      add("App version", ev.agent_version);
      add("System", ev.os);
    } else if (ev.kind === "shutdown") {
      add("Why", ev.reason === "session" ? "log-off or shutdown" : "stopped by hand");
    } else if (ev.kind === "log_missed") {
      add("Day", ev.day);
      add("Why", ev.reason);
      add("Detail", ev.detail);
    } else if (ev.kind === "consent_given") {
      add("Text version", ev.version);
    }
    add("Time", time(b.timestamp));
  }
  if (e.refused) {
    title = `Not accepted by the server: ${title}`;
    fields.push(["Server's reason", e.refused]);
  }
  return { title, fields };
}

/** Group by local day, newest first. */
export function byDay(entries: SentEntry[]): [string, SentEntry[]][] {
  const days = new Map<string, SentEntry[]>();
  for (const e of entries) {
    const d = new Date(e.sent_at);
    const key = d.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
    const list = days.get(key) ?? [];
    list.push(e);
    days.set(key, list);
  }
  return [...days.entries()];
}
