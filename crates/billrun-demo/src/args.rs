//! `billrun demo`'s arguments.

use chrono::{DateTime, Utc};
use clap::Args;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the generated platform: the same seed gives the same platform and invoices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of accounts to generate.
    #[arg(long, default_value_t = 240)]
    pub accounts: usize,
    /// The demo's clock; the month before it is billed.
    #[arg(long, value_parser = billrun::core::period::parse_time_arg, default_value = "2026-11-01T06:00:00Z")]
    pub now: DateTime<Utc>,
    /// Where to seed (default: a fresh sqlite://billrun-demo.db; this flag ignores
    /// BILLRUN_DATABASE_URL on purpose, so a demo never seeds a production store).
    #[arg(long)]
    pub database_url: Option<String>,
}
