/** Test fixtures shared by the unit tests (not part of the app). */
import type { Snapshot, Status } from "./types";

export function status(over: Partial<Status> = {}): Status {
  return {
    server: "https://wfh.example.com",
    employee: "Ana Silva (employee 1, device 1)",
    token_store: "Secret Service keyring",
    token_present: true,
    last_heartbeat: "2026-12-01T09:00:00Z",
    logs_today_sent: 1,
    logs_per_day: 2,
    working_day: true,
    outbox_waiting: 0,
    outbox_set_aside: 0,
    outbox_bytes: 0,
    paused_until: null,
    consent_needed: false,
    consent_version: "abcd",
    pause_limit_minutes: 10_000,
    quit_allowed: true,
    policy_revision: 0,
    heartbeat_interval_secs: 300,
    ...over,
  };
}

export function snapshot(over: Partial<Snapshot> = {}, st: Partial<Status> = {}): Snapshot {
  return {
    state: "monitoring",
    summary: "Monitoring",
    status: status(st),
    delivery: { state: "connected" },
    engine_error: null,
    configured_server: null,
    configured_code: false,
    ...over,
  };
}
