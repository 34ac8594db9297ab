//! `billrun app delete`: the dashboard tells billrun an app was deleted or transferred.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::parse::parse_time;
use super::{StoreArgs, env};

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Record that the owner deleted the app (or transferred it away): its running usage ends,
    /// the platform is told, and it no longer blocks the account's deletion.
    Delete {
        id: String,
        /// The clock (RFC 3339); default: now. `--at` is the older name.
        #[arg(long = "now", visible_alias = "at", value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a parsed `AppCommand`; returns the process exit code.
pub(super) async fn run(cmd: AppCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AppCommand::Delete { id, at, store } => {
            let env = env(&store).await?;
            let at = at.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now()));
            if billrun::closing::delete_app(&env, &id, at).await? {
                println!("app {id} deleted");
            } else {
                println!("app {id} was already deleted: nothing changed");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
