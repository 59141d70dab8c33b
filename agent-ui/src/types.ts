// What the tray app's commands answer (agent-tray/src/tray/controller.rs).

export type TrayState =
  | "not_enrolled"
  | "consent_needed"
  | "error"
  | "paused"
  | "offline"
  | "monitoring";

export interface Status {
  server: string | null;
  employee: string | null;
  token_store: string;
  token_present: boolean;
  last_heartbeat: string | null;
  logs_today_sent: number;
  logs_per_day: number;
  working_day: boolean;
  outbox_waiting: number;
  outbox_set_aside: number;
  outbox_bytes: number;
  paused_until: string | null;
  consent_needed: boolean;
  consent_version: string;
  pause_limit_minutes: number | null;
  quit_allowed: boolean;
  policy_revision: number;
  heartbeat_interval_secs: number;
}

export type Delivery =
  | { state: "starting" }
  | { state: "connected" }
  | { state: "unreachable"; error: string }
  | { state: "token_rejected" };

export interface Snapshot {
  state: TrayState;
  summary: string;
  status: Status;
  delivery: Delivery;
  engine_error: string | null;
  configured_server: string | null;
  configured_code: boolean;
}

export interface ConsentSection {
  heading: string;
  items: string[];
}

export interface ConsentView {
  consent: { version: string; title: string; sections: ConsentSection[] };
  policy: { organisation: string; retention_days: number };
  accepted: boolean;
  accepted_at: string | null;
  server: string | null;
}

export interface SentEntry {
  event_id: string;
  kind: "heartbeat" | "log" | "event" | "activity";
  body: Record<string, unknown>;
  image_bytes: number | null;
  /** When it was delivered, or refused. */
  sent_at: string;
  /** The server's reason, when it refused this item for good. */
  refused: string | null;
  has_thumbnail: boolean;
}

/** Everything the window asks of the app. */
export interface Api {
  snapshot(): Promise<Snapshot>;
  consent(server?: string): Promise<ConsentView>;
  acceptConsent(version: string): Promise<void>;
  enroll(server: string, code: string): Promise<void>;
  pause(minutes: number | null): Promise<string>;
  resume(): Promise<void>;
  sent(days: number): Promise<SentEntry[]>;
  thumbnail(eventId: string): Promise<string | null>;
  takePage(): Promise<string | null>;
}
