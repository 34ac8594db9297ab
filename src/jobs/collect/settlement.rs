//! Settling an attempt with what the gateway says of it: the one settlement code, shared by
//! the collect job and Stripe's webhooks.

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::core::collection::{
    AttemptOutcome, DeclineClass, RetrySchedule, Trigger, classify_decline, referral_applies,
    referral_reward,
};
use crate::core::email::EmailKind;
use crate::core::money::format_minor;
use crate::core::timeline::TimelineKind;
use crate::gateway::ChargeOutcome;
use crate::store::accounts::{self, AccountRow};
use crate::store::collection::{self as coll, AttemptRow, PaymentMethodRow};
use crate::store::invoices::{self, InvoiceRow, InvoiceStatus};
use crate::store::outbox::{self, NewEmail};
use crate::store::{Tx, events};

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
                        TimelineKind::PaymentProcessing,
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
                events::record(tx, &inv.account_id, self.now, TimelineKind::PaymentUnknown, iid,
                    &format!("Payment of invoice {} (attempt {}): no conclusive answer from the gateway; settled on the next run with the same idempotency key", inv.number, attempt.number)).await?;
                Ok(Settled::Unknown)
            }
        }
    }

    /// Records a failure: the schedule moves on for scheduled attempts; hard declines block
    /// retries until the payment method changes; the account is told.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fail(
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
            TimelineKind::PaymentFailed,
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
            (_, "no_payment_method") => EmailKind::ActionRequired,
            (DeclineClass::Soft, _) => EmailKind::PaymentFailed,
            (DeclineClass::Hard | DeclineClass::AuthenticationRequired, _) => {
                EmailKind::ActionRequired
            }
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
    pub(super) async fn on_paid(
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
            TimelineKind::InvoicePaid,
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
            EmailKind::PaymentSucceeded,
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
                TimelineKind::ReferralEarned,
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
        kind: EmailKind,
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
pub(super) fn payment_intent_of(outcome: &ChargeOutcome) -> Option<String> {
    match outcome {
        ChargeOutcome::Succeeded { payment_intent }
        | ChargeOutcome::Processing { payment_intent } => Some(payment_intent.clone()),
        ChargeOutcome::Failed { payment_intent, .. } => payment_intent.clone(),
        ChargeOutcome::Unknown { .. } => None,
    }
}
