import { defineConfig } from "vite";

// Built once, offline, into dist/ (embedded in wfh-agent by tauri-build).
export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "es2021", sourcemap: false },
  test: { environment: "jsdom" },
} as never);
