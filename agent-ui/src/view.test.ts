import { describe, expect, it } from "vitest";
import type { SentEntry } from "./types";
import { snapshot, status } from "./fixtures";
import { byDay, connection, describe as describeSent, logsToday, pauseChoices, pauseLeft, startPage } from "./view";

describe("startPage", () => {
  it("asks for the server first when none is known", () => {
    expect(startPage(snapshot({ state: "not_enrolled" }, { server: null, consent_needed: true }), null)).toBe("setup");
  });
  it("asks for consent before the enrolment code", () => {
    const s = snapshot({ state: "not_enrolled", configured_server: "https://wfh.example.com" }, { server: null, consent_needed: true });
    expect(startPage(s, null)).toBe("consent");
    expect(startPage({ ...s, status: { ...s.status, consent_needed: false } }, null)).toBe("enroll");
  });
  it("asks for consent again when the policy changed, whatever page was asked for", () => {
    expect(startPage(snapshot({ state: "consent_needed" }, { consent_needed: true }), "sent")).toBe("consent");
  });
  it("opens the page a menu item asked for", () => {
    expect(startPage(snapshot(), "sent")).toBe("sent");
    expect(startPage(snapshot(), "collected")).toBe("collected");
    expect(startPage(snapshot(), null)).toBe("status");
  });
});

describe("status lines", () => {
  it("counts today's screenshots without saying when the next one is", () => {
    expect(logsToday(status())).toBe("1 of 2 taken");
    expect(logsToday(status({ working_day: false }))).toMatch(/not a working day/);
  });
  it("says whether the server is reachable", () => {
    expect(connection({ state: "connected" }, status())).toEqual({ text: "Connected to wfh.example.com", tone: "ok" });
    expect(connection({ state: "unreachable", error: "connection refused" }, status()).tone).toBe("bad");
  });
  it("rounds the pause left up to the minute and ends it on time", () => {
    const now = new Date("2026-12-01T10:00:00Z");
    expect(pauseLeft("2026-12-01T10:14:01Z", now)).toBe(15);
    expect(pauseLeft("2026-12-01T09:59:00Z", now)).toBe(0);
    expect(pauseLeft(null, now)).toBe(0);
  });
  it("offers only the pauses the policy allows", () => {
    expect(pauseChoices(null)).toEqual([]);
    const morning = new Date(2026, 11, 1, 10, 0);
    expect(pauseChoices(30, morning).map((c) => c.minutes)).toEqual([15, null]);
    expect(pauseChoices(30, morning)[1].label).toBe("For 30 min (the most allowed)");
    expect(pauseChoices(10_000, morning).map((c) => c.label)).toEqual(["For 15 min", "For 1 h", "Until tomorrow"]);
    // Ten minutes before midnight, the most allowed outlasts the day.
    expect(pauseChoices(30, new Date(2026, 11, 1, 23, 50))[1].label).toBe("Until tomorrow");
  });
});

describe("the sent log", () => {
  const log: SentEntry = {
    event_id: "e1",
    kind: "log",
    body: { username: "ana", hostname: "ana-laptop", local_ips: ["10.0.0.5"], public_ip: null, timestamp: "2026-12-01T10:31:00+01:00", event_id: "e1" },
    image_bytes: 300 * 1024,
    sent_at: "2026-12-01T09:31:02Z",
    refused: null,
    has_thumbnail: true,
  };
  it("says plainly what the server refused, and why", () => {
    const d = describeSent({ ...log, refused: "the server answered 422 Unprocessable Entity: expired: older than the retention period" });
    expect(d.title).toBe("Not accepted by the server: Detailed log with a screenshot");
    expect(d.fields[d.fields.length - 1]).toEqual(["Server's reason", "the server answered 422 Unprocessable Entity: expired: older than the retention period"]);
  });
  it("names every field that was sent", () => {
    const d = describeSent(log);
    expect(d.title).toMatch(/screenshot/);
    const labels = d.fields.map(([k]) => k);
    expect(labels).toEqual(["User name", "Computer", "Local IP addresses", "Public IP address", "Location", "Time", "Screenshot"]);
    expect(d.fields.find(([k]) => k === "Screenshot")?.[1]).toBe("300 KB");
  });
  it("describes events in plain words", () => {
    const ev: SentEntry = { ...log, kind: "event", image_bytes: null, has_thumbnail: false, body: { username: "ana", hostname: "h", timestamp: "t", event: { kind: "consent_given", version: "abcd" } } };
    expect(describeSent(ev).title).toBe("Consent given");
    expect(describeSent(ev).fields).toContainEqual(["Text version", "abcd"]);
  });
  it("shows every part of an activity summary, titles and key count included", () => {
    const act: SentEntry = {
      ...log,
      kind: "activity",
      image_bytes: null,
      has_thumbnail: false,
      body: {
        username: "ana", hostname: "h", start: "2026-12-01T09:00:00+01:00", duration_secs: 300, observed_secs: 290,
        active_secs: 200, idle_secs: 90, key_presses: 42,
        apps: [{ app: "code", title: "main.rs", secs: 200 }, { app: "firefox", secs: 90 }],
        sites: [{ domain: "example.com", secs: 90 }],
      },
    };
    const d = describeSent(act);
    expect(d.title).toBe("Activity summary");
    const f = Object.fromEntries(d.fields);
    expect(f["Applications"]).toBe("code — main.rs: 3 min 20 s, firefox: 1 min 30 s");
    expect(f["Websites"]).toBe("example.com: 1 min 30 s");
    expect(f["Key presses (count only)"]).toBe("42");
    expect(f["Idle"]).toBe("1 min 30 s");
  });
  it("groups by day, newest first", () => {
    const days = byDay([log, { ...log, event_id: "e0", sent_at: "2026-11-30T09:00:00Z" }]);
    expect(days).toHaveLength(2);
    expect(days[0][1][0].event_id).toBe("e1");
  });
});
