//! `billrun credit`: prepaid credit bought outside billrun, and its history.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use billrun::config::BadInput;
use billrun::store::{collection, events};
use billrun::views;

use super::charge::charge_owed_now;
use super::parse::{amount_arg, parse_time, reference_arg};
use super::{OutputFormat, StoreArgs, env, print_json, require_account};

#[derive(Debug, Subcommand)]
pub enum CreditCommand {
    /// Record a credit purchase; idempotent by reference (the PayPal transaction id).
    Add {
        #[arg(long)]
        account: String,
        /// In euros: 50.00
        #[arg(long, value_parser = amount_arg)]
        amount: String,
        #[arg(long, value_parser = reference_arg)]
        reference: String,
        /// The clock (RFC 3339): when it was bought, and when owed invoices are charged;
        /// default: now. `--at` is the older name.
        #[arg(long = "now", visible_alias = "at", value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        /// Only record the credit; leave owed invoices to the next collect run.
        #[arg(long)]
        no_charge: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The balance and its history.
    Show {
        #[arg(long)]
        account: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a parsed `CreditCommand`; returns the process exit code.
pub(super) async fn run(cmd: CreditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CreditCommand::Add {
            account,
            amount,
            reference,
            at,
            no_charge,
            store,
        } => {
            let env = env(&store).await?;
            let minor = billrun::core::money::parse_major(&amount)
                .map_err(|e| BadInput(format!("--amount: {e}")))?;
            if minor <= 0 {
                return Err(BadInput(format!("--amount: `{amount}` must be positive")).into());
            }
            if reference.trim().is_empty() {
                return Err(BadInput("--reference must not be empty".into()).into());
            }
            require_account(&env.db, &account).await?;
            let at = at.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now()));
            let mut tx = env.db.begin().await?;
            let added = collection::add_credit(&mut tx, &account, minor, &reference, at).await?;
            if added {
                events::record(
                    &mut tx,
                    &account,
                    at,
                    billrun::core::timeline::TimelineKind::CreditPurchased,
                    None,
                    &format!(
                        "Prepaid credit of {} EUR bought ({reference})",
                        billrun::core::money::format_minor(minor)
                    ),
                )
                .await?;
            }
            tx.commit().await?;
            let balance = collection::credit_balance(&env.db, &account).await?;
            println!(
                "{}: balance {} EUR",
                if added {
                    "credit recorded"
                } else {
                    "already recorded (same reference): nothing changed"
                },
                billrun::core::money::format_minor(balance)
            );
            if added && !no_charge {
                charge_owed_now(&env, &account, at).await?;
            }
        }
        CreditCommand::Show {
            account,
            format,
            store,
        } => {
            let env = env(&store).await?;
            require_account(&env.db, &account).await?;
            let balance = collection::credit_balance(&env.db, &account).await?;
            let ledger = collection::ledger(&env.db, &account).await?;
            match format {
                OutputFormat::Json => print_json(&serde_json::json!({
                    "account_id": account,
                    "balance": billrun::core::money::format_minor(balance),
                    "currency": "EUR",
                    "history": ledger.iter().map(|l| serde_json::json!({
                        "at": l.at, "kind": l.kind, "amount": billrun::core::money::format_minor(l.amount_minor),
                        "reference": l.reference, "invoice_id": l.invoice_id,
                        "balance_after": billrun::core::money::format_minor(l.balance_after_minor),
                    })).collect::<Vec<_>>(),
                }))?,
                OutputFormat::Table => {
                    println!(
                        "Prepaid credit of {account}: {} EUR",
                        billrun::core::money::format_minor(balance)
                    );
                    let rows: Vec<Vec<String>> = ledger
                        .iter()
                        .map(|l| {
                            vec![
                                l.at.to_rfc3339(),
                                l.kind.clone(),
                                billrun::core::money::format_minor(l.amount_minor),
                                billrun::core::money::format_minor(l.balance_after_minor),
                                l.reference.clone(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        views::table(&["AT", "KIND", "AMOUNT", "BALANCE", "REFERENCE"], &rows)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
