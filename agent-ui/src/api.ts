// The real Api: the tray app's commands, over Tauri's IPC.
import { invoke } from "@tauri-apps/api/core";
import type { Api, ConsentView, SentEntry, Snapshot } from "./types";

export const tauriApi: Api = {
  snapshot: () => invoke<Snapshot>("snapshot"),
  consent: (server) => invoke<ConsentView>("consent", { server: server ?? null }),
  acceptConsent: (version) => invoke("accept_consent", { version }),
  enroll: (server, code) => invoke("enroll", { server, code }),
  pause: (minutes) => invoke<string>("pause", { minutes }),
  resume: () => invoke("resume"),
  sent: (days) => invoke<SentEntry[]>("sent", { days }),
  thumbnail: (eventId) => invoke<string | null>("thumbnail", { eventId }),
  takePage: () => invoke<string | null>("take_page"),
};
