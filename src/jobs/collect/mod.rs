//! The `collect` job: for each open, unpaid or pending invoice that is due for collection,
//! apply prepaid credit, then charge what is left through the gateway; retry failures on the
//! schedule; poll SEPA debits in flight; settle attempts whose outcome is unknown by sending
//! the same idempotency key again.
//!
//! Order of work for one attempt: the attempt row (outcome `unknown`) is committed before the
//! gateway is called, and the outcome is stored after. A crash in between leaves the attempt
//! unknown; the next run sends the same request with the same key, and Stripe answers with the
//! first result instead of charging again.
//!
//! One concept a file: the run (here: paging, accounts in parallel, the report), the gateway
//! the settings ask for ([`gateway`]), one invoice's collection ([`attempt`]) and the one
//! settlement code of an answer ([`settlement`]).

mod attempt;
mod gateway;
mod settlement;

pub use attempt::idempotency_key;
pub use gateway::build_gateway;
pub use settlement::{Settled, Settlement};

use attempt::Ctx;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use tracing::warn;

use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::config::BadInput;
use crate::core::collection::{Decision, RetrySchedule};
use crate::core::ids::AccountId;
use crate::gateway::OperatorError;
use crate::store::accounts;
use crate::store::invoices::{self, InvoiceRow};

/// What the job did, or would do, with one invoice.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CollectionItem {
    pub invoice_id: i64,
    pub invoice_number: String,
    pub account_id: String,
    pub decision: Decision,
    pub amount_due_before: String,
    pub credit_applied: String,
    pub charge: String,
    /// `card`, `sepa_debit`, or `none` (no payment method).
    pub method: Option<String>,
    pub carried_forward: String,
    /// Below the €0.50 minimum on a closing account's invoice: written off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waived: Option<String>,
    pub outcome: CollectionOutcome,
    pub payment_intent: Option<String>,
    pub decline_code: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What the collect job did (or would do) with one invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionOutcome {
    /// Nothing: another run settled the invoice first, or nothing was due.
    None,
    /// A dry-run: what it would do.
    Planned,
    /// Paid.
    Succeeded,
    /// A SEPA debit on its way: settled by a later run.
    Processing,
    /// Declined.
    Failed,
    /// Below the €0.50 minimum: carried to the next invoice.
    CarriedForward,
    /// Below the €0.50 minimum on a closing account: written off.
    Waived,
    /// No conclusive answer from the gateway: settled by the next run.
    Unknown,
}

impl CollectionOutcome {
    /// The outcome's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionOutcome::None => "none",
            CollectionOutcome::Planned => "planned",
            CollectionOutcome::Succeeded => "succeeded",
            CollectionOutcome::Processing => "processing",
            CollectionOutcome::Failed => "failed",
            CollectionOutcome::CarriedForward => "carried_forward",
            CollectionOutcome::Waived => "waived",
            CollectionOutcome::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for CollectionOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub async fn run(env: &Env, opts: &RunOptions) -> anyhow::Result<JobReport> {
    let mut report = JobReport::new(JobName::Collect, opts);
    let gateway = build_gateway(env)?;
    report.gateway = Some(gateway.label());
    let schedule = RetrySchedule {
        offsets_days: env.jobs.collect.settings.retry_offsets_days.clone(),
    };
    // Credit notes' refunds with no conclusive answer (a crash after the credit note was
    // committed, a timeout, a 5xx): asked again under the same key, so each is made once.
    if !opts.dry_run {
        for r in crate::credit_notes::retry_open_refunds(env, &gateway, opts.now).await? {
            use crate::core::credit_note::GatewayRefundStatus as G;
            let not_made = match r.status {
                G::Failed | G::Unknown => true,
                G::Requested | G::Pending | G::Succeeded | G::Rerouted => false,
            };
            if not_made {
                report.failures.push(Failure {
                    item: format!("refund of {} on {}", r.amount, r.payment_intent),
                    error: format!("{}: {}", r.status, r.message.unwrap_or_default()),
                });
            }
        }
    }

    // Named accounts: their invoices, read at once (a handful). Otherwise every collectable
    // invoice (or a scale-out range), read a page at a time so that memory stays flat
    // whatever the platform's size.
    let mut named: Option<Vec<InvoiceRow>> = None;
    if opts.range.is_none() && !opts.accounts.is_empty() {
        let mut rows = Vec::new();
        for a in &opts.accounts {
            if accounts::get_account(&env.db, a.as_str()).await?.is_none() {
                return Err(BadInput(format!("unknown account `{a}`")).into());
            }
            rows.extend(invoices::collectable(&env.db, Some(a.as_str())).await?);
        }
        opts.progress.total(rows.len() as u64);
        named = Some(rows);
    } else {
        let range = opts.range.as_ref().map(|(f, l)| (f.as_str(), l.as_str()));
        opts.progress
            .total(invoices::count_collectable(&env.db, range).await?.max(0) as u64);
    }
    // Accounts with a deletion request: their small balances are waived, not carried.
    let closing = crate::store::deletion::closing_accounts(&env.db).await?;

    // Several accounts at once, on either store: a charge waits a few hundred milliseconds on
    // Stripe, and the rate limit, not billrun, should bound the pace. An account's invoices
    // stay in order, one after the other (credit, balances carried forward), and each
    // invoice's own transaction re-checks what another worker may have changed, as it does
    // for concurrent runs. SQLite's single writer only serializes the short transactions
    // (`BEGIN IMMEDIATE`), never a gateway call. Pages are read as the workers need them, so
    // no page boundary makes them wait for one another; a page never splits an account.
    let width = env.jobs.collect.settings.concurrency.max(1) as usize;
    let page_size = i64::from(env.jobs.collect.settings.batch_size.max(1));
    // Set at the first operator error (a wrong key is wrong for every invoice): no further
    // invoice is started, and the run ends with that error.
    let halt = &std::sync::atomic::AtomicBool::new(false);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<(usize, InvoiceRow)>>(width * 2);
    let reader = async move {
        let sender = sender;
        if let Some(rows) = named {
            for group in group_by_account(rows, 0) {
                if sender.send(group).await.is_err() {
                    break;
                }
            }
            return Ok::<(), anyhow::Error>(());
        }
        let (mut after, mut next_index) = (None::<(AccountId, i64)>, 0usize);
        loop {
            // Workers finish what they hold; no page is read after a stop or an operator error.
            if opts.stop.requested() || halt.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            let (rows, last_page) = next_page(env, opts.range.clone(), after.clone(), page_size)
                .await
                .context("reading the invoices to collect")?;
            after = rows.last().map(|r| (r.account_id.clone(), r.id)).or(after);
            let count = rows.len();
            for group in group_by_account(rows, next_index) {
                if sender.send(group).await.is_err() {
                    // The workers stopped (shutdown or an operator error): read no further.
                    return Ok(());
                }
            }
            next_index += count;
            if last_page || count == 0 {
                return Ok(());
            }
        }
    };
    let pages = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|group| (group, receiver))
    });
    let (gateway, schedule, closing) = (&gateway, &schedule, &closing);
    let outcomes = pages
        .map(|group| async move {
            let mut done = Vec::with_capacity(group.len());
            for (i, inv) in group {
                if opts.stop.requested() || halt.load(std::sync::atomic::Ordering::SeqCst) {
                    return (done, true);
                }
                opts.progress.advance(1);
                let ctx = Ctx {
                    env,
                    gateway,
                    schedule,
                    now: opts.now,
                    closing: closing.contains(inv.account_id.as_str()),
                };
                let outcome = ctx.collect_one(&inv, opts.dry_run).await;
                if outcome
                    .as_ref()
                    .is_err_and(|e| e.downcast_ref::<OperatorError>().is_some())
                {
                    halt.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                done.push((i, inv.number, inv.id, inv.account_id, outcome));
            }
            (done, false)
        })
        .buffer_unordered(width);
    // Only what the report shows is kept: the items (not under `counts_only`), in the
    // candidates' order whatever order the accounts finished in, and the failures.
    let mut items: Vec<(usize, CollectionItem)> = Vec::new();
    let mut failures: Vec<(usize, Failure)> = Vec::new();
    let mut stopped = false;
    let mut operator_error: Option<(usize, String, anyhow::Error)> = None;
    let workers = async {
        let mut outcomes = std::pin::pin!(outcomes);
        while let Some((done, stop)) = outcomes.next().await {
            stopped |= stop;
            for (i, number, invoice_id, account_id, outcome) in done {
                match outcome {
                    Err(e) if e.downcast_ref::<OperatorError>().is_some() => {
                        if operator_error.as_ref().is_none_or(|(j, _, _)| i < *j) {
                            operator_error = Some((i, number, e));
                        }
                    }
                    Ok(item) => {
                        report.bump(counter(&item));
                        if item.outcome == CollectionOutcome::Unknown {
                            failures.push((i, Failure {
                                item: format!("invoice {number}"),
                                error: "the payment gateway gave no conclusive answer; the attempt is settled on the next run with the same idempotency key".into(),
                            }));
                        }
                        if item.decision != Decision::WaitUntilRetry
                            && item.decision != Decision::Exhausted
                            && !opts.counts_only
                        {
                            items.push((i, item));
                        }
                    }
                    Err(e) => {
                        warn!(invoice.id = invoice_id, account.id = %account_id, error = %format!("{e:#}"), "cannot collect invoice");
                        failures.push((
                            i,
                            Failure {
                                item: format!("invoice {number}"),
                                error: format!("{e:#}"),
                            },
                        ));
                    }
                }
            }
        }
    };
    let (read, ()) = futures_util::join!(reader, workers);
    read?;
    items.sort_by_key(|(i, _)| *i);
    failures.sort_by_key(|(i, _)| *i);
    report.collections = items.into_iter().map(|(_, item)| item).collect();
    // After the refunds retried first (a failed one is a failure of the run: exit 1).
    report.failures.extend(failures.into_iter().map(|(_, f)| f));
    let operator_error = operator_error.map(|(_, number, e)| (number, e));
    if let Some((number, e)) = operator_error {
        // Logged once, where it is handled: by the caller that prints it and exits 3.
        return Err(e.context(format!(
            "collect stopped at invoice {number}: no customer was charged, declined or emailed for it, and the next run carries on from there"
        )));
    }
    if stopped {
        report.stop_early();
    }
    Ok(report)
}

/// The next page of collectable invoices after `after`, cut at an account boundary (the last
/// account of a full page is left to the next one, unless it fills the page alone: then all of
/// its invoices are read at once). `true` with the last page.
async fn next_page(
    env: &Env,
    range: Option<(String, String)>,
    after: Option<(AccountId, i64)>,
    page_size: i64,
) -> anyhow::Result<(Vec<InvoiceRow>, bool)> {
    let range = range.as_ref().map(|(f, l)| (f.as_str(), l.as_str()));
    let after_ref = after.as_ref().map(|(a, i)| (a.as_str(), *i));
    let mut rows = invoices::collectable_page(&env.db, range, after_ref, page_size).await?;
    if (rows.len() as i64) < page_size {
        return Ok((rows, true));
    }
    let last_account = rows
        .last()
        .map(|r| r.account_id.clone())
        .unwrap_or_else(|| AccountId(String::new()));
    if rows.first().is_some_and(|r| r.account_id == last_account) {
        // One account fills the page: take the rest of its invoices too.
        let last_id = rows.last().map_or(0, |r| r.id);
        let rest = invoices::collectable(&env.db, Some(&last_account)).await?;
        rows.extend(rest.into_iter().filter(|r| r.id > last_id));
        return Ok((rows, false));
    }
    rows.retain(|r| r.account_id != last_account);
    Ok((rows, false))
}

/// An account's invoices as one group, in order; `first_index` numbers them in the run.
fn group_by_account(rows: Vec<InvoiceRow>, first_index: usize) -> Vec<Vec<(usize, InvoiceRow)>> {
    let mut groups: Vec<Vec<(usize, InvoiceRow)>> = Vec::new();
    for (k, inv) in rows.into_iter().enumerate() {
        match groups.last_mut() {
            Some(g)
                if g.last()
                    .is_some_and(|(_, l)| l.account_id == inv.account_id) =>
            {
                g.push((first_index + k, inv));
            }
            _ => groups.push(vec![(first_index + k, inv)]),
        }
    }
    groups
}

fn counter(item: &CollectionItem) -> Count {
    match (item.decision, item.outcome) {
        (Decision::WaitUntilRetry, _) => Count::WaitingForRetry,
        (Decision::Exhausted, _) => Count::RetriesExhausted,
        (_, CollectionOutcome::Planned) => Count::WouldCollect,
        (_, CollectionOutcome::Succeeded) => Count::Paid,
        (_, CollectionOutcome::Processing) => Count::Pending,
        (_, CollectionOutcome::Failed) => Count::FailedAttempts,
        (_, CollectionOutcome::CarriedForward) => Count::CarriedForward,
        (_, CollectionOutcome::Waived) => Count::Waived,
        (_, CollectionOutcome::Unknown) => Count::OutcomeUnknown,
        (_, CollectionOutcome::None) => Count::HandledByAnotherRun,
    }
}
