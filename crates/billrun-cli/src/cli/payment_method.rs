//! `billrun payment-method set`: the account's default payment method.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};

use billrun::config::BadInput;
use billrun::store::{collection, events};

use super::charge::charge_owed_now;
use super::parse::{parse_time, reference_arg};
use super::{StoreArgs, env, require_account};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodKind {
    Card,
    #[value(name = "sepa_debit")]
    SepaDebit,
}

#[derive(Debug, Subcommand)]
pub enum PaymentMethodCommand {
    /// Set the default payment method; the account's owed invoices are charged to it at once
    /// (seeds: "the new payment method will be charged right away"), through the collect job.
    Set {
        #[arg(long)]
        account: String,
        #[arg(long, value_enum)]
        kind: MethodKind,
        #[arg(long, value_parser = reference_arg)]
        stripe_customer: String,
        #[arg(long, value_parser = reference_arg)]
        stripe_payment_method: String,
        /// The clock (RFC 3339): when it was set, and when owed invoices are charged; default:
        /// now. `--at` is the older name.
        #[arg(long = "now", visible_alias = "at", value_parser = parse_time)]
        at: Option<DateTime<Utc>>,
        /// Only record the method; leave owed invoices to the next collect run.
        #[arg(long)]
        no_charge: bool,
        /// The SEPA mandate reference (RUM) of a `sepa_debit` method: written on the invoices
        /// issued while it is on file (EN 16931 BT-89).
        #[arg(long, value_parser = reference_arg)]
        mandate: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs a parsed `PaymentMethodCommand`; returns the process exit code.
pub(super) async fn run(cmd: PaymentMethodCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PaymentMethodCommand::Set {
            account,
            kind,
            stripe_customer,
            stripe_payment_method,
            at,
            no_charge,
            mandate,
            store,
        } => {
            let env = env(&store).await?;
            let row = require_account(&env.db, &account).await?;
            if kind == MethodKind::SepaDebit {
                billrun::core::collection::sepa_debit_allowed(&row.country).map_err(|why| {
                    BadInput(format!("--kind sepa_debit for account `{account}`: {why}"))
                })?;
            }
            if mandate.is_some() && kind != MethodKind::SepaDebit {
                return Err(BadInput(
                    "--mandate: a mandate reference belongs to a sepa_debit method".into(),
                )
                .into());
            }
            if !stripe_customer.starts_with("cus_") {
                return Err(BadInput(format!(
                    "--stripe-customer: `{stripe_customer}` is not a Stripe customer id (cus_…)"
                ))
                .into());
            }
            if !stripe_payment_method.starts_with("pm_") {
                return Err(BadInput(format!("--stripe-payment-method: `{stripe_payment_method}` is not a Stripe payment method id (pm_…)")).into());
            }
            let kind = match kind {
                MethodKind::Card => "card",
                MethodKind::SepaDebit => "sepa_debit",
            };
            let at = at.unwrap_or_else(|| billrun::core::period::whole_seconds(Utc::now()));
            let mut tx = env.db.begin().await?;
            let changed = collection::set_payment_method(
                &mut tx,
                &account,
                kind,
                &stripe_customer,
                &stripe_payment_method,
                at,
            )
            .await?;
            // The mandate (BT-89) goes with the method: a new method without one clears it.
            let mandate_changed =
                collection::set_sepa_mandate(&mut tx, &account, mandate.as_deref()).await?;
            if changed || mandate_changed {
                events::record(
                    &mut tx,
                    &account,
                    at,
                    billrun::core::timeline::TimelineKind::PaymentMethodSet,
                    None,
                    &format!("Default payment method set: {kind}"),
                )
                .await?;
            }
            tx.commit().await?;
            println!(
                "{}",
                if changed {
                    "payment method set"
                } else if mandate_changed {
                    "SEPA mandate reference set"
                } else {
                    "same payment method: nothing changed"
                }
            );
            if changed && !no_charge {
                charge_owed_now(&env, &account, at).await?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
