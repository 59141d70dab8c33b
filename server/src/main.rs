use clap::Parser as _;
use wfh_server::cli::{self, Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    let config = args.load_config()?;
    wfh_server::telemetry::init(config.log_format);
    let mut out = std::io::stdout();
    cli::run(args.command.unwrap_or(Command::Serve), config, &mut out).await?;
    Ok(())
}
