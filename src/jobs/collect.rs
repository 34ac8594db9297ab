//! The `collect` job: for each open, unpaid or pending invoice that is due for collection,
//! apply prepaid credit, then charge what is left through the gateway; retry failures on the
//! schedule; poll SEPA debits in flight; settle attempts whose outcome is unknown by sending
//! the same idempotency key again.
//!
//! Order of work for one attempt: the attempt row (outcome `unknown`) is committed before the
//! gateway is called, and the outcome is stored after. A crash in between leaves the attempt
//! unknown; the next run sends the same request with the same key, and Stripe answers with the
//! first result instead of charging again.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use tracing::{info, warn};

use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::config::{BadInput, GatewayChoice};
use crate::core::collection::AttemptOutcome;
use crate::core::collection::{
    AccountPaymentState, Decision, DeclineClass, InvoiceCollectionState, RetrySchedule, Trigger,
    classify_decline, decide, plan_collection, referral_applies, referral_reward,
};
use crate::core::ids::AccountId;
use crate::core::money::format_minor;
use crate::gateway::{
    ChargeOutcome, ChargeRequest, Gateway, OperatorError, RetryPolicy, SimulatedGateway,
    StripeGateway,
};
use crate::store::accounts::{self, AccountRow};
use crate::store::collection::{self as coll, AttemptRow, NewAttempt, PaymentMethodRow};
use crate::store::invoices::{self, InvoiceRow, InvoiceStatus};
use crate::store::outbox::{self, NewEmail};
use crate::store::{Tx, events};

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

/// Builds the gateway the settings ask for; refuses the simulator in production.
pub fn build_gateway(env: &Env) -> anyhow::Result<Gateway> {
    let s = &env.jobs.collect.settings;
    let production = env.production || s.production;
    let use_stripe = match s.gateway {
        GatewayChoice::Stripe => true,
        GatewayChoice::Simulated => false,
        GatewayChoice::Auto => env.stripe_key.is_some(),
    };
    if !use_stripe {
        if production {
            return Err(BadInput(
                "refusing the simulated payment gateway in production: set STRIPE_SECRET_KEY (and gateway = \"stripe\" or \"auto\" in jobs/collect.toml)".into(),
            )
            .into());
        }
        let latency = s
            .simulated_latency
            .parse::<crate::gateway::Latency>()
            .map_err(|e| {
                BadInput(format!(
                    "jobs/collect.toml: settings.simulated_latency: {e}"
                ))
            })?;
        env.stripe_limiter.set_rate(s.rate_limit_per_second);
        return Ok(Gateway::Simulated(SimulatedGateway::new(
            latency,
            s.simulated_fault_percent,
            env.stripe_limiter.clone(),
        )));
    }
    let key = env.stripe_key.as_ref().ok_or_else(|| {
        BadInput("jobs/collect.toml asks for Stripe but STRIPE_SECRET_KEY is not set".into())
    })?;
    let g = StripeGateway::new(
        &key.0,
        &s.stripe_base_url,
        Duration::from_secs(s.request_timeout_seconds),
        RetryPolicy {
            tries: s.transient_tries,
            first_backoff: Duration::from_millis(s.transient_backoff_ms),
        },
        {
            env.stripe_limiter.set_rate(s.rate_limit_per_second);
            env.stripe_limiter.clone()
        },
    )?;
    Ok(Gateway::Stripe(Box::new(g)))
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
            if matches!(r.status, "failed" | "unknown") {
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
    report.failures = failures.into_iter().map(|(_, f)| f).collect();
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

struct Ctx<'a> {
    env: &'a Env,
    gateway: &'a Gateway,
    schedule: &'a RetrySchedule,
    now: DateTime<Utc>,
    /// The invoice's account asked for its deletion (see `core::collection::plan_collection`).
    closing: bool,
}

fn item(inv: &InvoiceRow, decision: Decision) -> CollectionItem {
    CollectionItem {
        invoice_id: inv.id,
        invoice_number: inv.number.clone(),
        account_id: inv.account_id.to_string(),
        decision,
        amount_due_before: format_minor(inv.amount_due_minor),
        credit_applied: format_minor(0),
        charge: format_minor(0),
        method: None,
        carried_forward: format_minor(0),
        waived: None,
        outcome: CollectionOutcome::None,
        payment_intent: None,
        decline_code: None,
        next_attempt_at: inv.next_attempt_at,
    }
}

impl Ctx<'_> {
    async fn collect_one(&self, inv: &InvoiceRow, dry_run: bool) -> anyhow::Result<CollectionItem> {
        let db = &self.env.db;
        let attempts = coll::attempts(db, inv.id).await?;
        let pm = coll::payment_method(db, &inv.account_id).await?;
        let state = InvoiceCollectionState {
            status: inv.status,
            next_attempt_at: inv.next_attempt_at,
            collection_exhausted: inv.collection_exhausted_at.is_some(),
            last_attempt_at: attempts.last().map(|a| a.created_at),
            last_attempt_pm_version: attempts.last().and_then(|a| a.payment_method_version),
            blocked_pm_version: inv.blocked_pm_version,
            unknown_attempt: attempts
                .iter()
                .any(|a| a.outcome == AttemptOutcome::Unknown),
            processing_attempt: attempts
                .iter()
                .any(|a| a.outcome == AttemptOutcome::Processing),
        };
        let account = AccountPaymentState {
            credit_balance: coll::credit_balance(db, &inv.account_id).await?,
            pm_version: pm.as_ref().map(|p| p.version),
        };
        let decision = decide(&state, &account, self.now);
        let mut out = item(inv, decision);
        match decision {
            Decision::WaitUntilRetry | Decision::Exhausted => Ok(out),
            Decision::SettleUnknown | Decision::PollProcessing => {
                let attempt = attempts
                    .iter()
                    .find(|a| {
                        a.outcome == AttemptOutcome::Unknown
                            || a.outcome == AttemptOutcome::Processing
                    })
                    .context("attempt in flight")?;
                out.method = Some(attempt.method.clone());
                out.charge = format_minor(attempt.amount_minor);
                if dry_run {
                    out.outcome = CollectionOutcome::Planned;
                    return Ok(out);
                }
                let outcome = if decision == Decision::SettleUnknown {
                    self.gateway.charge(&request_of(inv, attempt)).await
                } else {
                    match &attempt.payment_intent_id {
                        Some(pi) => self.gateway.retrieve(pi).await,
                        None => self.gateway.charge(&request_of(inv, attempt)).await,
                    }
                };
                // An operator error leaves the attempt unknown: the next run sends it again.
                self.settle(inv, attempt, outcome?, &mut out).await?;
                Ok(out)
            }
            Decision::BlockedUntilPaymentMethodChanges => {
                out.method = pm.as_ref().map(|p| p.kind.clone());
                if dry_run {
                    out.outcome = CollectionOutcome::Planned;
                    return Ok(out);
                }
                let previous = attempts
                    .iter()
                    .rev()
                    .find(|a| a.outcome == AttemptOutcome::Failed);
                let code = previous
                    .and_then(|a| a.decline_code.clone())
                    .unwrap_or_else(|| "blocked".into());
                let mut tx = self.env.db.begin().await?;
                let Some(fresh) = self.fresh(&mut tx, inv, attempts.len()).await? else {
                    return Ok(out);
                };
                // The number the decision was made for: if another run took it, the insert below
                // conflicts on (invoice_id, number) and this run backs off.
                let number = attempts.len() as i32 + 1;
                let key = idempotency_key(inv.id, number);
                let msg = format!(
                    "not retried: the payment method was declined ({code}); waiting for a new one"
                );
                let inserted = coll::insert_attempt(
                    &mut tx,
                    &NewAttempt {
                        invoice_id: inv.id,
                        number,
                        trigger: Trigger::Retry,
                        method: pm.as_ref().map_or("none", |p| p.kind.as_str()),
                        pm: pm.as_ref(),
                        amount_minor: fresh.amount_due_minor,
                        idempotency_key: &key,
                        gateway: "none",
                        outcome: AttemptOutcome::Failed,
                        decline_code: Some(&code),
                        failure_message: Some(&msg),
                        at: self.now,
                    },
                )
                .await?;
                if inserted.is_none() {
                    tx.rollback().await?;
                    return Ok(out);
                }
                let next = self
                    .settlement()
                    .fail(
                        &mut tx,
                        &fresh,
                        Trigger::Retry,
                        DeclineClass::Hard,
                        pm.as_ref(),
                        &code,
                    )
                    .await?;
                tx.commit().await?;
                out.outcome = CollectionOutcome::Failed;
                out.decline_code = Some(code);
                out.next_attempt_at = next;
                Ok(out)
            }
            Decision::Collect(trigger) => {
                self.collect(
                    inv,
                    trigger,
                    pm,
                    account.credit_balance,
                    attempts.len(),
                    dry_run,
                    out,
                )
                .await
            }
        }
    }

    /// Re-reads the invoice inside the transaction; `None` when it is no longer collectable
    /// (another run got there first).
    async fn fresh(
        &self,
        tx: &mut Tx,
        inv: &InvoiceRow,
        expected_attempts: usize,
    ) -> anyhow::Result<Option<InvoiceRow>> {
        // The decision was made on `expected_attempts` attempts: if another run made one since,
        // this run must not act on a stale decision (it would charge again).
        if coll::attempts(&mut *tx, inv.id).await?.len() != expected_attempts {
            return Ok(None);
        }
        let Some(fresh) = invoices::get(&mut *tx, inv.id).await? else {
            return Ok(None);
        };
        match fresh.status {
            InvoiceStatus::Open | InvoiceStatus::Unpaid | InvoiceStatus::Pending
                if fresh.amount_due_minor > 0 =>
            {
                Ok(Some(fresh))
            }
            InvoiceStatus::Open
            | InvoiceStatus::Unpaid
            | InvoiceStatus::Pending
            | InvoiceStatus::Paid
            | InvoiceStatus::CarriedForward
            // Fully credited: nothing is owed, its dunning has stopped (issue 22).
            | InvoiceStatus::Void => Ok(None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn collect(
        &self,
        inv: &InvoiceRow,
        trigger: Trigger,
        pm: Option<PaymentMethodRow>,
        credit_balance: i64,
        expected_attempts: usize,
        dry_run: bool,
        mut out: CollectionItem,
    ) -> anyhow::Result<CollectionItem> {
        let plan = plan_collection(inv.amount_due_minor, credit_balance, self.closing);
        out.credit_applied = format_minor(plan.credit_to_apply);
        out.charge = format_minor(plan.charge);
        out.carried_forward = format_minor(plan.carry_forward);
        out.waived = (plan.waive > 0).then(|| format_minor(plan.waive));
        out.method = Some(match (&pm, plan.charge) {
            (_, 0) => "credit".to_string(),
            (Some(p), _) => p.kind.clone(),
            (None, _) => "none".to_string(),
        });
        if dry_run {
            out.outcome = CollectionOutcome::Planned;
            return Ok(out);
        }

        let mut tx = self.env.db.begin().await?;
        let Some(fresh) = self.fresh(&mut tx, inv, expected_attempts).await? else {
            tx.rollback().await?;
            out.outcome = CollectionOutcome::None;
            return Ok(out);
        };
        // Credit first: it pays the invoice total including VAT.
        let plan = plan_collection(fresh.amount_due_minor, credit_balance, self.closing);
        let applied = coll::apply_credit(
            &mut tx,
            &fresh.account_id,
            fresh.id,
            plan.credit_to_apply,
            self.now,
        )
        .await?;
        out.credit_applied = format_minor(applied);
        if applied > 0 {
            events::record(
                &mut tx,
                &fresh.account_id,
                self.now,
                "credit.applied",
                Some(crate::core::ids::InvoiceId(fresh.id)),
                &format!(
                    "Prepaid credit of {} EUR applied to invoice {}",
                    format_minor(applied),
                    fresh.number
                ),
            )
            .await?;
        }
        let due = fresh.amount_due_minor - applied;
        if due == 0 {
            invoices::mark_settled(&mut tx, fresh.id).await?;
            self.settlement()
                .on_paid(&mut tx, &fresh, "credit", applied, None)
                .await?;
            tx.commit().await?;
            out.outcome = CollectionOutcome::Succeeded;
            out.method = Some("credit".into());
            out.charge = format_minor(0);
            return Ok(out);
        }
        let plan = plan_collection(due, 0, self.closing);
        if plan.waive > 0 {
            coll::record_transfer(&mut tx, fresh.id, &fresh.account_id, plan.waive, self.now)
                .await?;
            coll::waive_transfer(&mut tx, fresh.id, self.now).await?;
            invoices::carry_forward(&mut tx, fresh.id, plan.waive).await?;
            events::record(&mut tx, &fresh.account_id, self.now, "invoice.waived", Some(crate::core::ids::InvoiceId(fresh.id)),
                &format!("{} EUR left on invoice {} is below the €0.50 minimum charge and the account is closing: waived", format_minor(plan.waive), fresh.number)).await?;
            tx.commit().await?;
            out.outcome = CollectionOutcome::Waived;
            out.charge = format_minor(0);
            out.waived = Some(format_minor(plan.waive));
            return Ok(out);
        }
        if plan.carry_forward > 0 {
            coll::record_transfer(
                &mut tx,
                fresh.id,
                &fresh.account_id,
                plan.carry_forward,
                self.now,
            )
            .await?;
            invoices::carry_forward(&mut tx, fresh.id, plan.carry_forward).await?;
            events::record(&mut tx, &fresh.account_id, self.now, "invoice.carried_forward", Some(crate::core::ids::InvoiceId(fresh.id)),
                &format!("{} EUR left on invoice {} is below the €0.50 minimum charge: carried to the next invoice", format_minor(plan.carry_forward), fresh.number)).await?;
            tx.commit().await?;
            out.outcome = CollectionOutcome::CarriedForward;
            out.charge = format_minor(0);
            out.carried_forward = format_minor(plan.carry_forward);
            return Ok(out);
        }

        // The number the decision was made for (not a fresh count: under READ COMMITTED another
        // run's attempt may have committed since); a taken number makes the insert back off.
        let number = expected_attempts as i32 + 1;
        let key = idempotency_key(fresh.id, number);
        let Some(pm) = pm else {
            // Neither a payment method nor enough credit: unpaid, and the account is told.
            let msg = "no payment method and not enough prepaid credit";
            let inserted = coll::insert_attempt(
                &mut tx,
                &NewAttempt {
                    invoice_id: fresh.id,
                    number,
                    trigger,
                    method: "none",
                    pm: None,
                    amount_minor: due,
                    idempotency_key: &key,
                    gateway: "none",
                    outcome: AttemptOutcome::Failed,
                    decline_code: Some("no_payment_method"),
                    failure_message: Some(msg),
                    at: self.now,
                },
            )
            .await?;
            if inserted.is_none() {
                tx.rollback().await?;
                return Ok(out);
            }
            let next = self
                .settlement()
                .fail(
                    &mut tx,
                    &fresh,
                    trigger,
                    DeclineClass::Soft,
                    None,
                    "no_payment_method",
                )
                .await?;
            tx.commit().await?;
            out.outcome = CollectionOutcome::Failed;
            out.decline_code = Some("no_payment_method".into());
            out.next_attempt_at = next;
            return Ok(out);
        };
        let inserted = coll::insert_attempt(
            &mut tx,
            &NewAttempt {
                invoice_id: fresh.id,
                number,
                trigger,
                method: &pm.kind,
                pm: Some(&pm),
                amount_minor: due,
                idempotency_key: &key,
                gateway: self.gateway.label(),
                outcome: AttemptOutcome::Unknown,
                decline_code: None,
                failure_message: None,
                at: self.now,
            },
        )
        .await?;
        let Some(attempt_id) = inserted else {
            tx.rollback().await?;
            return Ok(out);
        };
        invoices::set_status(&mut tx, fresh.id, InvoiceStatus::Pending).await?;
        // The attempt is committed before the gateway is called.
        tx.commit().await?;

        let attempt = coll::attempts(&self.env.db, fresh.id)
            .await?
            .into_iter()
            .find(|a| a.id == attempt_id)
            .context("attempt just written")?;
        // An operator error (a wrong key…) is no answer about this payment: the attempt stays
        // `unknown`, nothing is said to the customer, and the next run sends the same request
        // with the same key (Stripe stored nothing under it: 4xx before execution).
        let outcome = self.gateway.charge(&request_of(&fresh, &attempt)).await?;
        self.settle(&fresh, &attempt, outcome, &mut out).await?;
        Ok(out)
    }

    /// Stores a gateway outcome for an attempt, in a transaction of its own, through the one
    /// settlement code ([`Settlement::settle`], which Stripe's webhooks use too).
    async fn settle(
        &self,
        inv: &InvoiceRow,
        attempt: &AttemptRow,
        outcome: ChargeOutcome,
        out: &mut CollectionItem,
    ) -> anyhow::Result<()> {
        out.charge = format_minor(attempt.amount_minor);
        let mut tx = self.env.db.begin().await?;
        let settled = self
            .settlement()
            .settle(&mut tx, inv, attempt, &outcome)
            .await?;
        tx.commit().await?;
        let payment_intent = payment_intent_of(&outcome);
        match settled {
            // Another run (or a webhook) settled this attempt first.
            Settled::AlreadySettled => out.outcome = CollectionOutcome::None,
            Settled::Succeeded => {
                info!(invoice.id = inv.id, account.id = %inv.account_id, amount_minor = attempt.amount_minor, "payment succeeded");
                out.outcome = CollectionOutcome::Succeeded;
                out.payment_intent = payment_intent;
                out.next_attempt_at = None;
            }
            Settled::Processing => {
                out.outcome = CollectionOutcome::Processing;
                out.payment_intent = payment_intent;
            }
            Settled::Failed {
                decline_code,
                next_attempt_at,
            } => {
                info!(invoice.id = inv.id, account.id = %inv.account_id, amount_minor = attempt.amount_minor, decline_code = %decline_code, "payment declined");
                out.outcome = CollectionOutcome::Failed;
                out.payment_intent = payment_intent;
                out.decline_code = Some(decline_code);
                out.next_attempt_at = next_attempt_at;
            }
            Settled::Unknown => {
                let reason = match &outcome {
                    ChargeOutcome::Unknown { reason } => reason.as_str(),
                    ChargeOutcome::Succeeded { .. }
                    | ChargeOutcome::Processing { .. }
                    | ChargeOutcome::Failed { .. } => "",
                };
                warn!(invoice.id = inv.id, account.id = %inv.account_id, reason = %reason, "payment outcome unknown; settled next run");
                out.outcome = CollectionOutcome::Unknown;
            }
        }
        Ok(())
    }

    fn settlement(&self) -> Settlement<'_> {
        Settlement {
            schedule: self.schedule,
            now: self.now,
        }
    }
}

/// What [`Settlement::settle`] did with a gateway's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The attempt was settled already (another run, or a webhook, got there first): nothing
    /// was written.
    AlreadySettled,
    /// Paid: the invoice's payment, the timeline, the receipt email, the referral reward.
    Succeeded,
    /// A SEPA debit on its way: the invoice is pending.
    Processing,
    /// Declined: the dunning schedule moved on and the account is told.
    Failed {
        decline_code: String,
        next_attempt_at: Option<DateTime<Utc>>,
    },
    /// No conclusive answer: the attempt stays in flight, the invoice pending.
    Unknown,
}

/// Settling an attempt with what the gateway says of it, in the caller's transaction, with
/// every follow-up (invoice status and payment, timeline, emails in the outbox, dunning
/// schedule, referral reward). The one settlement code: the collect job calls it with a
/// charge's or a poll's answer, Stripe's webhooks (`crate::webhooks`) with an event's.
pub struct Settlement<'a> {
    pub schedule: &'a RetrySchedule,
    pub now: DateTime<Utc>,
}

impl Settlement<'_> {
    /// Settles `attempt` of `inv` with `outcome`. Only an attempt still in flight (`unknown`
    /// or `processing`) is settled (`coll::settle_attempt` is conditional), so whoever comes
    /// second changes nothing and gets [`Settled::AlreadySettled`].
    pub async fn settle(
        &self,
        tx: &mut Tx,
        inv: &InvoiceRow,
        attempt: &AttemptRow,
        outcome: &ChargeOutcome,
    ) -> anyhow::Result<Settled> {
        let iid = Some(crate::core::ids::InvoiceId(inv.id));
        match outcome {
            ChargeOutcome::Succeeded { payment_intent } => {
                if !coll::settle_attempt(
                    tx,
                    attempt.id,
                    AttemptOutcome::Succeeded,
                    Some(payment_intent.as_str()),
                    None,
                    None,
                    self.now,
                )
                .await?
                {
                    return Ok(Settled::AlreadySettled);
                }
                invoices::record_payment(tx, inv.id, attempt.amount_minor).await?;
                let fresh = invoices::get(&mut *tx, inv.id).await?.context("invoice")?;
                self.on_paid(
                    tx,
                    &fresh,
                    &attempt.method,
                    attempt.amount_minor,
                    Some(payment_intent.as_str()),
                )
                .await?;
                Ok(Settled::Succeeded)
            }
            ChargeOutcome::Processing { payment_intent } => {
                if !coll::settle_attempt(
                    tx,
                    attempt.id,
                    AttemptOutcome::Processing,
                    Some(payment_intent.as_str()),
                    None,
                    None,
                    self.now,
                )
                .await?
                {
                    return Ok(Settled::AlreadySettled);
                }
                invoices::set_status(tx, inv.id, InvoiceStatus::Pending).await?;
                if attempt.outcome != AttemptOutcome::Processing {
                    events::record(
                        tx,
                        &inv.account_id,
                        self.now,
                        "payment.processing",
                        iid,
                        &format!(
                            "SEPA debit of {} EUR for invoice {} is processing",
                            format_minor(attempt.amount_minor),
                            inv.number
                        ),
                    )
                    .await?;
                }
                Ok(Settled::Processing)
            }
            ChargeOutcome::Failed {
                payment_intent,
                code,
                decline_code,
                message,
            } => {
                let class = classify_decline(code.as_deref(), decline_code.as_deref());
                let shown = decline_code
                    .clone()
                    .or(code.clone())
                    .unwrap_or_else(|| "declined".into());
                let trigger = attempt.trigger;
                let pm = coll::payment_method(&mut *tx, &inv.account_id)
                    .await?
                    .filter(|p| Some(p.version) == attempt.payment_method_version);
                if !coll::settle_attempt(
                    tx,
                    attempt.id,
                    AttemptOutcome::Failed,
                    payment_intent.as_deref(),
                    Some(&shown),
                    Some(message.as_str()),
                    self.now,
                )
                .await?
                {
                    return Ok(Settled::AlreadySettled);
                }
                let fresh = invoices::get(&mut *tx, inv.id).await?.context("invoice")?;
                let next = self
                    .fail(tx, &fresh, trigger, class, pm.as_ref(), &shown)
                    .await?;
                Ok(Settled::Failed {
                    decline_code: shown,
                    next_attempt_at: next,
                })
            }
            ChargeOutcome::Unknown { reason: _ } => {
                invoices::set_status(tx, inv.id, InvoiceStatus::Pending).await?;
                events::record(tx, &inv.account_id, self.now, "payment.unknown", iid,
                    &format!("Payment of invoice {} (attempt {}): no conclusive answer from the gateway; settled on the next run with the same idempotency key", inv.number, attempt.number)).await?;
                Ok(Settled::Unknown)
            }
        }
    }

    /// Records a failure: the schedule moves on for scheduled attempts; hard declines block
    /// retries until the payment method changes; the account is told.
    #[allow(clippy::too_many_arguments)]
    async fn fail(
        &self,
        tx: &mut Tx,
        inv: &InvoiceRow,
        trigger: Trigger,
        class: DeclineClass,
        pm: Option<&PaymentMethodRow>,
        code: &str,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let (failures, next, exhausted) = if trigger.is_scheduled() {
            let failures = inv.scheduled_failures + 1;
            let next = self.schedule.next_after(failures as u32, self.now);
            (failures, next, next.is_none().then_some(self.now))
        } else {
            (
                inv.scheduled_failures,
                inv.next_attempt_at,
                inv.collection_exhausted_at,
            )
        };
        let blocked = match class {
            DeclineClass::Hard | DeclineClass::AuthenticationRequired => {
                pm.map(|p| p.version).or(inv.blocked_pm_version)
            }
            DeclineClass::Soft => None,
        };
        invoices::record_failure(tx, inv.id, failures, next, exhausted, self.now, blocked).await?;
        let iid = Some(crate::core::ids::InvoiceId(inv.id));
        let retry_text = match (next, exhausted) {
            (_, Some(_)) => "no retry left".to_string(),
            (Some(t), None) => format!("next attempt {}", t.format("%Y-%m-%d")),
            (None, None) => "no retry scheduled".to_string(),
        };
        events::record(
            tx,
            &inv.account_id,
            self.now,
            "payment.failed",
            iid,
            &format!(
                "Payment of invoice {} failed: {code} ({retry_text})",
                inv.number
            ),
        )
        .await?;
        let account = accounts::get_account(&mut *tx, &inv.account_id)
            .await?
            .context("account")?;
        let kind = match (class, code) {
            (_, "no_payment_method") => "action_required",
            (DeclineClass::Soft, _) => "payment_failed",
            (DeclineClass::Hard | DeclineClass::AuthenticationRequired, _) => "action_required",
        };
        let attempts = coll::attempts(&mut *tx, inv.id).await?.len();
        self.email(
            tx,
            &account,
            kind,
            &format!("{kind}:{}:{}", inv.id, attempts),
            Some(inv),
            serde_json::json!({
                "invoice_number": inv.number,
                "amount_due": format_minor(inv.amount_due_minor),
                "reason": code,
                "decline_class": class,
                "next_attempt_at": next.map(|t| t.format("%Y-%m-%d").to_string()),
                "retries_exhausted": exhausted.is_some(),
            }),
        )
        .await?;
        Ok(next)
    }

    /// After an invoice is fully paid: the timeline, the receipt email and the referrer's
    /// reward.
    async fn on_paid(
        &self,
        tx: &mut Tx,
        inv: &InvoiceRow,
        method: &str,
        amount: i64,
        payment_intent: Option<&str>,
    ) -> anyhow::Result<()> {
        let iid = Some(crate::core::ids::InvoiceId(inv.id));
        events::record(
            tx,
            &inv.account_id,
            self.now,
            "invoice.paid",
            iid,
            &format!(
                "Invoice {} paid ({} EUR by {method})",
                inv.number,
                format_minor(amount)
            ),
        )
        .await?;
        let account = accounts::get_account(&mut *tx, &inv.account_id)
            .await?
            .context("account")?;
        self.email(
            tx,
            &account,
            "payment_succeeded",
            &format!("payment_succeeded:{}", inv.id),
            Some(inv),
            serde_json::json!({
                "invoice_number": inv.number,
                "amount": format_minor(amount),
                "method": method,
                "payment_intent": payment_intent,
            }),
        )
        .await?;
        self.grant_referral(tx, &account, inv).await
    }

    async fn grant_referral(
        &self,
        tx: &mut Tx,
        invitee: &AccountRow,
        inv: &InvoiceRow,
    ) -> anyhow::Result<()> {
        let Some(referrer) = &invitee.referred_by else {
            return Ok(());
        };
        let period = inv.period;
        if !referral_applies(invitee.created_at, period) {
            return Ok(());
        }
        let reward = referral_reward(inv.taxable_base_minor());
        if reward == 0 {
            return Ok(());
        }
        if coll::grant_reward(
            tx,
            referrer,
            &invitee.id,
            &invitee.name,
            inv.id,
            &inv.period.to_string(),
            reward,
            self.now,
        )
        .await?
        {
            events::record(
                tx,
                referrer,
                self.now,
                "referral.earned",
                None,
                &format!(
                    "Referral reward of {} EUR earned: {} paid invoice {}",
                    format_minor(reward),
                    invitee.name,
                    inv.number
                ),
            )
            .await?;
        }
        Ok(())
    }

    async fn email(
        &self,
        tx: &mut Tx,
        account: &AccountRow,
        kind: &str,
        dedupe: &str,
        inv: Option<&InvoiceRow>,
        data: serde_json::Value,
    ) -> anyhow::Result<()> {
        outbox::enqueue(
            tx,
            &NewEmail {
                account_id: &account.id,
                kind,
                dedupe_key: dedupe.to_string(),
                language: account.language,
                to_address: &account.email,
                invoice_id: inv.map(|i| i.id),
                data,
                at: self.now,
            },
        )
        .await?;
        Ok(())
    }
}

/// The PaymentIntent an answer names, if any.
fn payment_intent_of(outcome: &ChargeOutcome) -> Option<String> {
    match outcome {
        ChargeOutcome::Succeeded { payment_intent }
        | ChargeOutcome::Processing { payment_intent } => Some(payment_intent.clone()),
        ChargeOutcome::Failed { payment_intent, .. } => payment_intent.clone(),
        ChargeOutcome::Unknown { .. } => None,
    }
}

/// The idempotency key of an attempt: derived from the invoice and the attempt number, so the
/// same attempt sent again is the same request to Stripe.
pub fn idempotency_key(invoice_id: i64, attempt: i32) -> String {
    format!("billrun-invoice-{invoice_id}-attempt-{attempt}")
}

fn request_of(inv: &InvoiceRow, a: &AttemptRow) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: a.idempotency_key.clone(),
        amount_minor: a.amount_minor,
        customer: a.stripe_customer.clone().unwrap_or_default(),
        payment_method: a.stripe_payment_method.clone().unwrap_or_default(),
        sepa: a.method == "sepa_debit",
        invoice_id: inv.id,
        invoice_number: inv.number.clone(),
    }
}
