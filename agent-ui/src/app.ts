// The employee's window: set-up (server, consent, code), status, the sent
// log and "what is collected". Plain DOM, no framework: a handful of pages.
import type { Api, ConsentView, SentEntry, Snapshot } from "./types";
import { byDay, connection, describe, duration, logsToday, pauseChoices, pauseLeft, startPage, time, type Page } from "./view";

type Child = Node | string | null | undefined | false;

export function h(tag: string, attrs: Record<string, string | boolean | EventListener> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false) el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export class App {
  private page: Page = "status";
  private snap: Snapshot | null = null;
  private server = "";
  private timer: ReturnType<typeof setInterval> | null = null;
  private sentDays = 1;
  private sentKind = "all";

  constructor(private root: HTMLElement, private api: Api) {}

  async start(): Promise<void> {
    (window as any).wfhNavigate = (p: string) => void this.go(p as Page);
    this.snap = await this.api.snapshot();
    this.server = this.snap.status.server ?? this.snap.configured_server ?? "";
    const asked = await this.api.takePage();
    await this.go(startPage(this.snap, asked));
    this.timer = setInterval(() => void this.refresh(), 2000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Re-read the state; the status page redraws, set-up pages move on. */
  async refresh(): Promise<void> {
    try {
      this.snap = await this.api.snapshot();
    } catch {
      return;
    }
    if (this.page === "status") this.renderStatus();
  }

  async go(page: Page): Promise<void> {
    this.page = page;
    this.root.dataset.page = page;
    switch (page) {
      case "setup":
        return this.renderSetup();
      case "consent":
      case "collected":
        return this.renderConsent(page === "collected");
      case "enroll":
        return this.renderEnroll();
      case "status":
        return this.renderStatus();
      case "sent":
        return this.renderSent();
    }
  }

  private nav(): HTMLElement | null {
    if (!this.snap || this.snap.state === "not_enrolled") return null;
    const link = (p: Page, label: string) =>
      h("button", { class: p === this.page ? "tab current" : "tab", "aria-current": p === this.page ? "page" : "false", "data-go": p, onclick: () => void this.go(p) }, label);
    return h("nav", { "aria-label": "Pages" }, link("status", "Status"), link("sent", "What was sent"), link("collected", "What is collected"));
  }

  private show(...children: Child[]): void {
    const main = h("main", { id: "main" }, ...children);
    this.root.replaceChildren(h("header", {}, h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), "WFH Monitor"), this.nav()), main);
  }

  private error(e: unknown): HTMLElement {
    return h("p", { class: "error", role: "alert" }, String(e));
  }

  private steps(current: number): HTMLElement {
    const names = ["Server", "What is collected", "Enrolment code"];
    return h("ol", { class: "steps", "aria-label": "Set-up steps" }, ...names.map((n, i) => h("li", { class: i === current ? "current" : i < current ? "done" : "", "aria-current": i === current ? "step" : "false" }, n)));
  }

  private renderSetup(): void {
    const input = h("input", { id: "server", type: "url", required: true, placeholder: "https://wfh.example.com", value: this.server, autocomplete: "url" }) as HTMLInputElement;
    const status = h("div", { "aria-live": "polite" });
    const form = h(
      "form",
      {
        onsubmit: async (ev: Event) => {
          ev.preventDefault();
          status.replaceChildren("Asking the server for its monitoring policy…");
          try {
            const url = input.value.trim();
            await this.api.consent(url);
            this.server = url;
            await this.go("consent");
          } catch (e) {
            status.replaceChildren(this.error(e));
          }
        },
      },
      h("label", { for: "server" }, "Your employer's WFH Monitor server"),
      input,
      h("p", { class: "hint" }, "Your IT department gives you this address together with an enrolment code."),
      h("button", { type: "submit", class: "primary" }, "Continue"),
      status,
    );
    this.show(this.steps(0), h("h1", {}, "Set up WFH Monitor"), h("p", {}, "Nothing is collected until you have read and accepted what your employer's policy asks for."), form);
  }

  private async renderConsent(readOnly: boolean): Promise<void> {
    let view: ConsentView;
    try {
      view = await this.api.consent(this.server || undefined);
    } catch (e) {
      this.show(h("h1", {}, "What is collected"), this.error(e));
      return;
    }
    const sections = view.consent.sections.map((s) =>
      h("section", { class: "consent-section" }, h("h2", {}, s.heading), h("ul", {}, ...s.items.map((i) => h("li", {}, i)))),
    );
    const footer: Child[] = [];
    const settingUp = this.snap?.state === "not_enrolled";
    if (view.accepted) {
      footer.push(h("p", { class: "accepted" }, `You accepted this on ${time(view.accepted_at)} (text version ${view.consent.version}).`));
    } else if (!readOnly || this.snap?.status.consent_needed) {
      const status = h("div", { "aria-live": "polite" });
      footer.push(
        h(
          "div",
          { class: "actions" },
          h(
            "button",
            {
              class: "primary",
              id: "accept",
              onclick: async () => {
                try {
                  await this.api.acceptConsent(view.consent.version);
                  this.snap = await this.api.snapshot();
                  await this.go(this.snap.state === "not_enrolled" ? "enroll" : "status");
                } catch (e) {
                  status.replaceChildren(this.error(e));
                }
              },
            },
            "I have read this and accept",
          ),
        ),
        h("p", { class: "hint" }, `Text version ${view.consent.version}. If you do not accept, nothing is collected; talk to your employer.`),
        status,
      );
    }
    this.show(
      settingUp ? this.steps(1) : null,
      h("h1", { id: "consent-title" }, view.consent.title),
      view.server ? h("p", { class: "hint" }, `Policy of ${view.server}`) : null,
      ...sections,
      ...footer,
    );
  }

  private renderEnroll(): void {
    const server = h("input", { id: "enroll-server", type: "url", required: true, value: this.server, placeholder: "https://wfh.example.com" }) as HTMLInputElement;
    const code = h("input", { id: "code", required: true, autocomplete: "one-time-code", spellcheck: "false", placeholder: "the code from your IT department" }) as HTMLInputElement;
    const status = h("div", { "aria-live": "polite" });
    const form = h(
      "form",
      {
        onsubmit: async (ev: Event) => {
          ev.preventDefault();
          status.replaceChildren("Enrolling…");
          try {
            await this.api.enroll(server.value.trim(), code.value.trim());
            this.snap = await this.api.snapshot();
            await this.go(this.snap.status.consent_needed ? "consent" : "status");
          } catch (e) {
            status.replaceChildren(this.error(e));
          }
        },
      },
      h("label", { for: "enroll-server" }, "Server"),
      server,
      h("label", { for: "code" }, "Enrolment code"),
      code,
      h("p", { class: "hint" }, "The code is used once; this computer then gets its own key, kept in your system's keyring."),
      h("button", { type: "submit", class: "primary", id: "enroll" }, "Connect this computer"),
      status,
    );
    this.show(this.steps(2), h("h1", {}, "Connect this computer"), form);
  }

  private renderStatus(): void {
    const s = this.snap;
    if (!s) return;
    const st = s.status;
    const conn = connection(s.delivery, st);
    const left = pauseLeft(st.paused_until, new Date());
    const row = (label: string, value: Child, id: string, tone = "") =>
      h("div", { class: `row ${tone}` }, h("dt", {}, label), h("dd", { id }, value));
    const actions: Child[] = [];
    if (s.delivery.state === "token_rejected") {
      actions.push(h("button", { class: "primary", id: "enrol-again", onclick: () => void this.go("enroll") }, "Connect this computer again"));
    } else if (left > 0) {
      actions.push(h("button", { class: "primary", id: "resume", onclick: async () => { await this.api.resume(); await this.refresh(); } }, "Resume monitoring"));
    } else if (!st.consent_needed) {
      const choices = pauseChoices(st.pause_limit_minutes);
      if (choices.length === 0) actions.push(h("p", { class: "hint" }, "Pausing is turned off by your employer."));
      for (const c of choices) {
        actions.push(h("button", { class: "pause", "data-minutes": String(c.minutes ?? "tomorrow"), onclick: async () => { await this.api.pause(c.minutes); await this.refresh(); } }, `Pause ${c.label.toLowerCase()}`));
      }
    }
    const active = s.state === "monitoring";
    this.show(
      h("div", { class: `banner ${s.state}`, role: "status", id: "state" }, h("strong", {}, stateTitle(s)), h("span", {}, s.summary)),
      h(
        "dl",
        { class: "facts" },
        row("Connection", conn.text, "connection", conn.tone),
        row("Signed in as", st.employee ?? "—", "employee"),
        row("Last heartbeat", st.last_heartbeat ? time(st.last_heartbeat) : "none sent yet", "last-heartbeat"),
        row("Heartbeats", `every ${duration(Math.max(1, Math.round(st.heartbeat_interval_secs / 60)))}${st.heartbeat_interval_secs < 60 ? ` (${st.heartbeat_interval_secs} s)` : ""}`, "interval"),
        row("Today's screenshots", logsToday(st), "logs-today"),
        row("Waiting to be sent", st.outbox_waiting === 0 ? "nothing" : `${st.outbox_waiting} (${Math.max(1, Math.round(st.outbox_bytes / 1024))} KB)`, "outbox"),
        row("Monitoring", left > 0 ? `paused, ${duration(left)} left (until ${time(st.paused_until)})` : active || s.state === "offline" ? "on" : s.state.replace("_", " "), "paused"),
      ),
      h("div", { class: "actions" }, ...actions),
    );
  }

  private async renderSent(): Promise<void> {
    let entries: SentEntry[];
    try {
      entries = await this.api.sent(this.sentDays);
    } catch (e) {
      this.show(h("h1", {}, "What was sent"), this.error(e));
      return;
    }
    const shown = this.sentKind === "all" ? entries : entries.filter((e) => e.kind === this.sentKind);
    const select = (id: string, label: string, value: string, options: [string, string][], set: (v: string) => void) =>
      h("label", { for: id }, label, h("select", { id, onchange: (ev: Event) => { set((ev.target as HTMLSelectElement).value); void this.renderSent(); } }, ...options.map(([v, l]) => h("option", { value: v, selected: v === value }, l))));
    const counts = { heartbeat: 0, log: 0, event: 0 } as Record<string, number>;
    for (const e of entries) counts[e.kind] = (counts[e.kind] ?? 0) + 1;
    const days = byDay(shown).map(([day, list]) =>
      h("section", { class: "day" }, h("h2", {}, day), h("ol", { class: "sent" }, ...list.map((e) => this.sentItem(e)))),
    );
    this.show(
      h("h1", {}, "What was sent"),
      h("p", {}, "Everything this computer sent to your employer's server, with your own screenshots. Kept here for 30 days."),
      h(
        "div",
        { class: "filters" },
        select("days", "Period", String(this.sentDays), [["1", "Last 24 hours"], ["7", "Last 7 days"], ["30", "Last 30 days"]], (v) => (this.sentDays = Number(v))),
        select("kind", "Show", this.sentKind, [["all", "Everything"], ["log", "Detailed logs"], ["heartbeat", "Heartbeats"], ["activity", "Activity"], ["event", "App events"]], (v) => (this.sentKind = v)),
      ),
      h("p", { class: "hint", id: "sent-counts" }, `${counts.log} detailed logs, ${counts.heartbeat} heartbeats, ${counts.event} app events.`),
      ...(days.length ? days : [h("p", { class: "empty" }, "Nothing was sent in this period.")]),
    );
  }

  private sentItem(e: SentEntry): HTMLElement {
    const d = describe(e);
    const fields = h("dl", {}, ...d.fields.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    const item = h("li", { class: `sent-item ${e.kind}${e.refused ? " refused" : ""}`, "data-event": e.event_id }, h("h3", {}, h("time", { datetime: e.sent_at }, new Date(e.sent_at).toLocaleTimeString()), " ", d.title), fields);
    if (e.has_thumbnail) {
      const img = h("img", { class: "thumb", alt: `Your screenshot sent at ${time(e.sent_at)}` }) as HTMLImageElement;
      item.prepend(img);
      void this.api.thumbnail(e.event_id).then((url) => {
        if (url) img.src = url;
        else img.replaceWith(h("p", { class: "hint" }, "(no preview kept)"));
      });
    }
    return item;
  }
}

function stateTitle(s: Snapshot): string {
  switch (s.state) {
    case "monitoring":
      return "Monitoring";
    case "paused":
      return "Paused";
    case "offline":
      return "Offline — nothing is lost";
    case "consent_needed":
      return "Waiting for your consent";
    case "error":
      return "Needs attention";
    case "not_enrolled":
      return "Not set up";
  }
}
