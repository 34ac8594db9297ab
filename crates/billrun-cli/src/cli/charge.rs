//! Charging what an account owes at once, after `credit add` or `payment-method set`.

use anyhow::Context;
use chrono::{DateTime, Utc};

use billrun::jobs::collect::CollectionOutcome;
use billrun::jobs::{self, Env, JobName, RunOptions};

/// Charges what the account owes at once, through the collect job for that one account (seeds:
/// a new payment method or new credit "will be charged right away"), and prints each outcome.
/// An operator's Stripe error is returned (exit 3); a customer's decline is printed, and the
/// command still succeeds: the method or the credit was recorded.
pub(super) async fn charge_owed_now(
    env: &Env,
    account: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut opts = RunOptions::at(now);
    opts.accounts = vec![billrun::core::ids::AccountId(account.to_string())];
    let report = jobs::run(env, JobName::Collect, &opts)
        .await
        .context("recorded, but charging the owed invoices failed; the next collect run retries")?;
    if report.collections.is_empty() {
        println!("nothing owed: no charge");
    }
    for c in &report.collections {
        let how = match c.method.as_deref() {
            Some("credit") | None => "prepaid credit".to_string(),
            Some(m) => m.replace('_', " "),
        };
        let what = match c.outcome {
            CollectionOutcome::Succeeded => format!(
                "paid: {} EUR by {how}, {} EUR of credit",
                c.charge, c.credit_applied
            ),
            CollectionOutcome::Processing => format!("{} EUR by {how}: processing", c.charge),
            CollectionOutcome::Failed => format!(
                "not paid: {} EUR by {how} declined ({})",
                c.charge,
                c.decline_code.as_deref().unwrap_or("declined")
            ),
            CollectionOutcome::Unknown => format!(
                "{} EUR by {how}: no conclusive answer, settled by the next collect run",
                c.charge
            ),
            CollectionOutcome::CarriedForward => format!(
                "{} EUR left is below the €0.50 minimum: carried to the next invoice",
                c.carried_forward
            ),
            CollectionOutcome::Waived => format!(
                "{} EUR left is below the €0.50 minimum: waived",
                c.waived.as_deref().unwrap_or("0.00")
            ),
            other @ (CollectionOutcome::None | CollectionOutcome::Planned) => other.to_string(),
        };
        println!("invoice {}: {what}", c.invoice_number);
    }
    for f in &report.failures {
        println!("{}: {}", f.item, f.error);
    }
    Ok(())
}
