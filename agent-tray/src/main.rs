//! `wfh-agent`: the WFH Monitor agent. With no command it opens the tray app
//! (when built with the `tray` feature and a desktop is there); `wfh-agent
//! run` is the same engine headless.

use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    wfh_agent::system::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WFH_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    if wfh_agent::browser::launched_as_host(&args) {
        // Started by a browser for its extension: serve it, then exit.
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(wfh_agent::cli::browser_host());
    }
    let cli = wfh_agent::cli::Cli::parse();
    #[cfg(feature = "tray")]
    if cli.command.is_none() && wfh_agent::system::has_desktop() {
        return wfh_agent::tray::run(cli);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(wfh_agent::cli::main(cli))
}
