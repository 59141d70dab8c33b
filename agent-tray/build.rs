//! Embeds the tray app's web UI (agent-ui/dist) and Tauri's generated code
//! when the `tray` feature is on. Either way, rebuilds when the agent's
//! migrations change (`sqlx::migrate!` embeds them; cargo cannot tell).

fn main() {
    println!("cargo:rerun-if-changed=../migrations/agent");
    #[cfg(feature = "tray")]
    {
        let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent-ui/dist/index.html");
        if !dist.exists() {
            panic!(
                "the tray app's UI is not built: run `npm ci && npm run build` in agent-ui/ \
                 (scripts/test and scripts/build-agent do), or build without it: --no-default-features"
            );
        }
        tauri_build::build();
    }
}
