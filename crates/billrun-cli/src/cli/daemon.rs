//! `billrun daemon`: the jobs on their schedules, with /healthz and /metrics.

use std::process::ExitCode;

use clap::Args;

use super::{StoreArgs, env};

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address of /healthz, /metrics and POST /webhooks/stripe (with STRIPE_WEBHOOK_SECRET).
    #[arg(long, env = "BILLRUN_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// Seconds to wait for the runs in hand after SIGTERM/SIGINT before exiting anyway.
    #[arg(long, default_value_t = 60)]
    pub shutdown_timeout: u64,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs the daemon until SIGTERM/SIGINT.
pub(super) async fn run(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let env = env(&args.store).await?;
    billrun::daemon::run(
        env,
        billrun::daemon::DaemonOptions {
            listen: args.listen,
            shutdown_timeout: std::time::Duration::from_secs(args.shutdown_timeout),
            webhook_secret: std::env::var("STRIPE_WEBHOOK_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .map(billrun::jobs::Secret),
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
