import { beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./app";
import type { Api, ConsentView, SentEntry, Snapshot } from "./types";
import { snapshot } from "./fixtures";

const consent: ConsentView = {
  consent: { version: "0123456789abcdef", title: "Acme uses WFH Monitor on this computer", sections: [{ heading: "What is collected", items: ["A heartbeat every 5 minutes"] }] },
  policy: { organisation: "Acme", retention_days: 30 },
  accepted: false,
  accepted_at: null,
  server: "https://wfh.example.com",
};

function fakeApi(snap: Snapshot, over: Partial<Api> = {}): Api & { calls: string[] } {
  const calls: string[] = [];
  const api: Api = {
    snapshot: vi.fn(async () => snap),
    consent: vi.fn(async () => consent),
    acceptConsent: vi.fn(async (v: string) => {
      calls.push(`accept ${v}`);
      snap = { ...snap, status: { ...snap.status, consent_needed: false } };
    }),
    enroll: vi.fn(async (s: string, c: string) => {
      calls.push(`enroll ${s} ${c}`);
      snap = { ...snap, state: "monitoring" };
    }),
    pause: vi.fn(async (m: number | null) => {
      calls.push(`pause ${m}`);
      return "";
    }),
    resume: vi.fn(async () => void calls.push("resume")),
    sent: vi.fn(async () => [] as SentEntry[]),
    thumbnail: vi.fn(async () => "data:image/jpeg;base64,AAAA"),
    takePage: vi.fn(async () => null),
    ...over,
  };
  return Object.assign(api, { calls });
}

const flush = () => new Promise((r) => setTimeout(r, 0));
let root: HTMLElement;

beforeEach(() => {
  document.body.innerHTML = '<div id="app"></div>';
  root = document.getElementById("app")!;
});

describe("first run", () => {
  it("goes server → consent → code, and accepts the version that was shown", async () => {
    const api = fakeApi(snapshot({ state: "not_enrolled" }, { server: null, consent_needed: true, token_present: false }));
    const app = new App(root, api);
    await app.start();
    expect(root.dataset.page).toBe("setup");
    (root.querySelector("#server") as HTMLInputElement).value = "https://wfh.example.com";
    root.querySelector("form")!.dispatchEvent(new Event("submit"));
    await flush();
    await flush();
    expect(root.dataset.page).toBe("consent");
    expect(root.querySelector("h1")!.textContent).toBe(consent.consent.title);
    (root.querySelector("#accept") as HTMLButtonElement).click();
    await flush();
    await flush();
    expect(api.calls).toContain("accept 0123456789abcdef");
    expect(root.dataset.page).toBe("enroll");
    (root.querySelector("#code") as HTMLInputElement).value = " ABCD-1234 ";
    root.querySelector("form")!.dispatchEvent(new Event("submit"));
    await flush();
    await flush();
    expect(api.calls).toContain("enroll https://wfh.example.com ABCD-1234");
    expect(root.dataset.page).toBe("status");
    app.stop();
  });

  it("shows the server's refusal and stays on the page", async () => {
    const api = fakeApi(snapshot({ state: "not_enrolled" }, { server: null, consent_needed: true }), {
      consent: vi.fn(async () => {
        throw "cannot reach https://nowhere.invalid";
      }),
    });
    const app = new App(root, api);
    await app.start();
    (root.querySelector("#server") as HTMLInputElement).value = "https://nowhere.invalid";
    root.querySelector("form")!.dispatchEvent(new Event("submit"));
    await flush();
    expect(root.dataset.page).toBe("setup");
    expect(root.querySelector("[role=alert]")!.textContent).toMatch(/cannot reach/);
    app.stop();
  });
});

describe("status", () => {
  it("shows today's logs as a count, the outbox and the pause choices", async () => {
    const api = fakeApi(snapshot({}, { outbox_waiting: 3, outbox_bytes: 4096 }));
    const app = new App(root, api);
    await app.start();
    expect(root.querySelector("#logs-today")!.textContent).toBe("1 of 2 taken");
    expect(root.querySelector("#outbox")!.textContent).toBe("3 (4 KB)");
    expect(root.textContent).not.toMatch(/next screenshot/i);
    const pause = [...root.querySelectorAll("button.pause")] as HTMLButtonElement[];
    expect(pause.map((b) => b.textContent)).toEqual(["Pause for 15 min", "Pause for 1 h", "Pause until tomorrow"]);
    pause[0].click();
    await flush();
    expect(api.calls).toContain("pause 15");
    app.stop();
  });

  it("shows time left and Resume while paused", async () => {
    const until = new Date(Date.now() + 59.5 * 60000).toISOString();
    const api = fakeApi(snapshot({ state: "paused" }, { paused_until: until }));
    const app = new App(root, api);
    await app.start();
    expect(root.querySelector("#paused")!.textContent).toMatch(/^paused, 1 h left/);
    (root.querySelector("#resume") as HTMLButtonElement).click();
    await flush();
    expect(api.calls).toContain("resume");
    app.stop();
  });
});

describe("a revoked device", () => {
  it("offers to connect again", async () => {
    const api = fakeApi(snapshot({ state: "error", delivery: { state: "token_rejected" } }));
    const app = new App(root, api);
    await app.start();
    (root.querySelector("#enrol-again") as HTMLButtonElement).click();
    await flush();
    expect(root.dataset.page).toBe("enroll");
    app.stop();
  });
});

describe("what was sent", () => {
  it("lists every item with its fields and a thumbnail of each screenshot", async () => {
    const entries: SentEntry[] = [
      { event_id: "l1", kind: "log", body: { username: "ana", hostname: "h", local_ips: ["10.0.0.5"], public_ip: "203.0.113.7", timestamp: "2026-12-01T10:31:00+01:00" }, image_bytes: 1024, sent_at: "2026-12-01T09:31:02Z", refused: null, has_thumbnail: true },
      { event_id: "h1", kind: "heartbeat", body: { username: "ana", hostname: "h", status: "online", timestamp: "2026-12-01T10:30:00+01:00" }, image_bytes: null, sent_at: "2026-12-01T09:30:01Z", refused: null, has_thumbnail: false },
    ];
    const api = fakeApi(snapshot(), { sent: vi.fn(async () => entries), takePage: vi.fn(async () => "sent") });
    const app = new App(root, api);
    await app.start();
    await flush();
    expect(root.dataset.page).toBe("sent");
    expect(root.querySelectorAll(".sent-item")).toHaveLength(2);
    expect(root.querySelector("#sent-counts")!.textContent).toBe("1 detailed logs, 1 heartbeats, 0 app events.");
    const img = root.querySelector(".sent-item.log img") as HTMLImageElement;
    expect(img.src).toMatch(/^data:image\/jpeg/);
    expect(img.alt).toMatch(/Your screenshot/);
    expect(root.querySelector(".sent-item.log")!.textContent).toContain("203.0.113.7");
    const kind = root.querySelector("#kind") as HTMLSelectElement;
    kind.value = "heartbeat";
    kind.dispatchEvent(new Event("change"));
    await flush();
    expect(root.querySelectorAll(".sent-item")).toHaveLength(1);
    app.stop();
  });
});
