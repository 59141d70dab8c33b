//! `wfh-agent`: the WFH Monitor agent (headless engine and commands).

use clap::Parser as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WFH_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    wfh_agent::cli::main(wfh_agent::cli::Cli::parse()).await
}
