//! `billrun payment dispute`: records a dispute (chargeback) on a paid invoice.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use billrun::config::BadInput;
use billrun::core::dispute::DisputeStatus;

use super::parse::{amount_arg, parse_time, reference_arg};
use super::{OutputFormat, StoreArgs, env, print_json};

#[derive(Debug, Subcommand)]
pub enum PaymentCommand {
    /// Record a dispute (chargeback) or its outcome. Lost: the amount is owed again (the
    /// invoice is unpaid and collected from now); won: nothing changes. Never a credit note.
    Dispute {
        /// The invoice's number (2026-000001) or id.
        #[arg(long)]
        invoice: String,
        /// In euros: what the bank took back.
        #[arg(long, value_parser = amount_arg)]
        amount: String,
        /// Stripe's dispute id (dp_…): a dispute is recorded once, then its status moves.
        #[arg(long, value_parser = reference_arg)]
        stripe_dispute: String,
        #[arg(long, value_parser = dispute_status, default_value = "open")]
        status: DisputeStatus,
        /// The clock (RFC 3339); default: now.
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn dispute_status(s: &str) -> Result<DisputeStatus, String> {
    DisputeStatus::parse(s)
        .ok_or_else(|| format!("`{s}` is not a dispute status: open, won or lost"))
}

/// Runs a parsed `PaymentCommand`; returns the process exit code.
pub(super) async fn run(cmd: PaymentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PaymentCommand::Dispute {
            invoice,
            amount,
            stripe_dispute,
            status,
            now,
            format,
            store,
        } => {
            let amount_minor = billrun::core::money::parse_major(&amount)
                .map_err(|e| BadInput(format!("--amount: {e}")))?;
            let env = env(&store).await?;
            let r = billrun::disputes::record(
                &env,
                &billrun::disputes::Request {
                    invoice,
                    stripe_dispute,
                    amount_minor,
                    status,
                    now: now.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now())),
                },
            )
            .await?;
            match format {
                OutputFormat::Json => print_json(&r)?,
                OutputFormat::Table => println!(
                    "dispute {} on invoice {} ({}): {} ({:?}); invoice {} owes {}",
                    r.stripe_dispute,
                    r.invoice_number,
                    r.amount,
                    r.status.as_str(),
                    r.effect,
                    r.invoice_status,
                    r.amount_due
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
