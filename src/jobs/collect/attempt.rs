//! One invoice's collection: credit, then a charge (its attempt row committed first), or the
//! settlement of an attempt in flight by sending its key again.

use anyhow::Context;
use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::settlement::{Settled, Settlement, payment_intent_of};
use super::{CollectionItem, CollectionOutcome};
use crate::core::collection::{
    AccountPaymentState, AttemptOutcome, Decision, DeclineClass, InvoiceCollectionState,
    RetrySchedule, Trigger, decide, plan_collection,
};
use crate::core::money::format_minor;
use crate::core::timeline::TimelineKind;
use crate::gateway::{ChargeOutcome, ChargeRequest, Gateway};
use crate::jobs::Env;
use crate::store::collection::{self as coll, AttemptRow, NewAttempt, PaymentMethodRow};
use crate::store::invoices::{self, InvoiceRow, InvoiceStatus};
use crate::store::{Tx, events};

pub(super) struct Ctx<'a> {
    pub(super) env: &'a Env,
    pub(super) gateway: &'a Gateway,
    pub(super) schedule: &'a RetrySchedule,
    pub(super) now: DateTime<Utc>,
    /// The invoice's account asked for its deletion (see `core::collection::plan_collection`).
    pub(super) closing: bool,
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
    pub(super) async fn collect_one(
        &self,
        inv: &InvoiceRow,
        dry_run: bool,
    ) -> anyhow::Result<CollectionItem> {
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
                TimelineKind::CreditApplied,
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
            events::record(&mut tx, &fresh.account_id, self.now, TimelineKind::InvoiceWaived, Some(crate::core::ids::InvoiceId(fresh.id)),
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
            events::record(&mut tx, &fresh.account_id, self.now, TimelineKind::InvoiceCarriedForward, Some(crate::core::ids::InvoiceId(fresh.id)),
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
