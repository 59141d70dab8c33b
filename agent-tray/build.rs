//! Embeds the tray app's web UI (agent-ui/dist) and Tauri's generated code
//! when the `tray` feature is on. Either way, rebuilds when the agent's
//! migrations change (`sqlx::migrate!` embeds them; cargo cannot tell).

fn main() {
    println!("cargo:rerun-if-changed=../migrations/agent");
    #[cfg(feature = "tray")]
    {
        // The variable at run time: `env!` would bake in the checkout the
        // build script was first compiled in, and cargo shares a compiled
        // build script between checkouts that use one target directory.
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let dist = std::path::Path::new(&manifest).join("../agent-ui/dist/index.html");
        if !dist.exists() {
            panic!(
                "the tray app's UI is not built: run `npm ci && npm run build` in agent-ui/ \
                 (scripts/test and scripts/build-agent do), or build without it: --no-default-features"
            );
        }
        tauri_build::build();
    }
}
