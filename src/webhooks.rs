//! Stripe webhooks, the I/O part (issue 23 §3): an event is stored by its id and applied in
//! one transaction, through the collect job's own settlement code
//! ([`crate::jobs::collect::Settlement`]). The daemon's `POST /webhooks/stripe` (signature
//! checked) and `billrun webhooks replay` (events the operator exported) both call [`apply`].
//!
//! - Stripe API "Handle duplicate events": an event id stored already is acknowledged and
//!   changes nothing (`UNIQUE (event_id)`, `ON CONFLICT DO NOTHING`).
//! - Stripe API "Event ordering": events may arrive out of order; an attempt only moves forward
//!   (`stripe_webhook::moves_forward`), so an event older than the state it describes changes
//!   nothing.
//! - `charge.dispute.created` / `.closed` record the dispute through `billrun payment
//!   dispute`'s own code ([`crate::disputes::record_in`], issue 22): a lost one makes the amount
//!   owed again. `charge.refunded` settles billrun's own refunds Stripe accepted as `pending`;
//!   one made in Stripe's dashboard is recorded, for the operator to record as a credit note.

use anyhow::Context;
use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::core::collection::{AttemptOutcome, RetrySchedule};
use crate::gateway::ChargeOutcome;
use crate::jobs::collect::{Settled, Settlement};
use crate::store::collection::AttemptRow;
use crate::store::webhooks::{self as store, NewEvent, Source};
use crate::store::{Db, invoices};
use crate::stripe_webhook::{Action, Event, EventOutcome, moves_forward};

/// What an event would do, decided from the stored state (shared by [`apply`] and [`plan`]).
enum Judged {
    Outcome(EventOutcome, Option<i64>),
    Settle(Box<AttemptRow>, ChargeOutcome),
}

/// The answer about a payment a `payment_intent.*` event carries, as the gateway would give
/// it; `None` for the other events.
fn charge_outcome(event: &Event, action: &Action) -> Option<ChargeOutcome> {
    match action {
        Action::PaymentSucceeded { payment_intent } => Some(ChargeOutcome::Succeeded {
            payment_intent: payment_intent.clone(),
        }),
        Action::PaymentProcessing { payment_intent } => Some(ChargeOutcome::Processing {
            payment_intent: payment_intent.clone(),
        }),
        Action::PaymentFailed {
            payment_intent,
            code,
            decline_code,
        } => Some(ChargeOutcome::Failed {
            payment_intent: Some(payment_intent.clone()),
            code: code.clone(),
            decline_code: decline_code.clone(),
            // Stored for the operator; customers only ever see the decline code, worded by
            // the templates.
            message: format!("declined (Stripe event {})", event.id),
        }),
        Action::ChargeRefunded { .. }
        | Action::DisputeCreated { .. }
        | Action::DisputeClosed { .. }
        | Action::Ignored => None,
    }
}

async fn judge(
    conn: impl Into<crate::store::Conn<'_>>,
    event: &Event,
    action: &Action,
) -> anyhow::Result<Judged> {
    let (Some((payment_intent, reported)), Some(charge)) =
        (action.payment_state(), charge_outcome(event, action))
    else {
        return Ok(match action {
            // Stored with no effect until issue 22's credit-note and dispute code takes them.
            Action::ChargeRefunded { .. }
            | Action::DisputeCreated { .. }
            | Action::DisputeClosed { .. } => Judged::Outcome(EventOutcome::Recorded, None),
            Action::Ignored
            | Action::PaymentSucceeded { .. }
            | Action::PaymentProcessing { .. }
            | Action::PaymentFailed { .. } => Judged::Outcome(EventOutcome::Ignored, None),
        });
    };
    let Some(attempt) =
        store::attempt_for_payment_intent(conn, payment_intent, event.invoice_hint()).await?
    else {
        return Ok(Judged::Outcome(EventOutcome::Unmatched, None));
    };
    if !moves_forward(attempt.outcome, reported) {
        if attempt.outcome == AttemptOutcome::Failed && reported == AttemptOutcome::Succeeded {
            // billrun never confirms a PaymentIntent again: money arriving for an attempt it
            // recorded as failed is for the operator to look at in Stripe's dashboard.
            warn!(event.id = %event.id, attempt.id = attempt.id, invoice.id = attempt.invoice_id,
                "Stripe says a PaymentIntent succeeded whose attempt billrun recorded as failed: left as it is; check it in Stripe's dashboard");
        }
        return Ok(Judged::Outcome(EventOutcome::NoChange, Some(attempt.id)));
    }
    Ok(Judged::Settle(Box::new(attempt), charge))
}

/// Stores `event` and applies it, in one transaction committed before this returns (the
/// daemon answers Stripe after it). `now` is the clock of the settlement (dunning schedule,
/// timeline) and of `received_at`.
pub async fn apply(
    db: &Db,
    schedule: &RetrySchedule,
    event: &Event,
    action: &Action,
    source: Source,
    now: DateTime<Utc>,
) -> anyhow::Result<EventOutcome> {
    let created = event
        .created_at()
        .with_context(|| format!("event {}: `created` is not a time", event.id))?;
    let object_id = event.object_id();
    let mut tx = db.begin().await?;
    // Looked up first, so that a duplicate takes no sequence value; the insert's `ON CONFLICT`
    // settles two deliveries of one event at once.
    let inserted = if store::exists(&mut tx, &event.id).await? {
        None
    } else {
        store::insert(
            &mut tx,
            &NewEvent {
                event_id: &event.id,
                kind: &event.kind,
                object_id: object_id.as_deref(),
                created,
                received_at: now,
                source,
            },
        )
        .await?
    };
    let Some(row) = inserted else {
        tx.rollback().await?;
        info!(event.id = %event.id, event.kind = %event.kind, "Stripe event received again: nothing to do");
        return Ok(EventOutcome::Duplicate);
    };
    if let Action::ChargeRefunded {
        payment_intent: Some(pi),
        amount_refunded,
    } = action
    {
        // Stripe API "Refunds": a refund accepted as `pending` is paid out later, which
        // `charge.refunded` tells; billrun's own pending refunds on that PaymentIntent that
        // the amount refunded covers are settled (issue 22). A refund made in Stripe's
        // dashboard settles none: recorded, for the operator to record as a credit note.
        let settled =
            crate::store::credit_notes::settle_pending_refunds(&mut tx, pi, *amount_refunded, now)
                .await?;
        let outcome = if settled > 0 {
            EventOutcome::Applied
        } else {
            EventOutcome::Recorded
        };
        let applied_at = (outcome == EventOutcome::Applied).then_some(now);
        store::finish(&mut tx, row, outcome, None, applied_at).await?;
        tx.commit().await?;
        info!(event.id = %event.id, event.kind = %event.kind, outcome = %outcome, refunds = settled, "Stripe refund event stored");
        return Ok(outcome);
    }
    if let Some((outcome, attempt_id)) = apply_dispute(&mut tx, event, action, now).await? {
        let applied_at = (outcome == EventOutcome::Applied).then_some(now);
        store::finish(&mut tx, row, outcome, attempt_id, applied_at).await?;
        tx.commit().await?;
        info!(event.id = %event.id, event.kind = %event.kind, outcome = %outcome, "Stripe dispute event stored");
        return Ok(outcome);
    }
    let (outcome, attempt_id) = match judge(&mut tx, event, action).await? {
        Judged::Outcome(outcome, attempt) => (outcome, attempt),
        Judged::Settle(attempt, charge) => {
            let inv = invoices::get(&mut tx, attempt.invoice_id)
                .await?
                .context("the attempt's invoice")?;
            let settlement = Settlement { schedule, now };
            let settled = settlement.settle(&mut tx, &inv, &attempt, &charge).await?;
            let outcome = match settled {
                Settled::Succeeded | Settled::Processing | Settled::Failed { .. } => {
                    EventOutcome::Applied
                }
                // The collect job settled it between the read and the update.
                Settled::AlreadySettled => EventOutcome::NoChange,
                Settled::Unknown => anyhow::bail!("a webhook event settled an attempt as unknown"),
            };
            (outcome, Some(attempt.id))
        }
    };
    let applied_at = (outcome == EventOutcome::Applied).then_some(now);
    store::finish(&mut tx, row, outcome, attempt_id, applied_at).await?;
    tx.commit().await?;
    match outcome {
        EventOutcome::Unmatched => warn!(
            event.id = %event.id, event.kind = %event.kind, object.id = object_id.as_deref().unwrap_or(""),
            "Stripe event about a PaymentIntent no payment attempt has: recorded as unmatched"
        ),
        EventOutcome::Applied
        | EventOutcome::NoChange
        | EventOutcome::Recorded
        | EventOutcome::Ignored
        | EventOutcome::Duplicate => info!(
            event.id = %event.id, event.kind = %event.kind, attempt.id = attempt_id, outcome = %outcome,
            "Stripe event stored"
        ),
    }
    Ok(outcome)
}

/// A `charge.dispute.*` event, recorded by the dispute code in the event's transaction;
/// `None` for any other event. A dispute the rules refuse (closed already, more than was paid)
/// changes nothing and is logged: Stripe would only send it again.
async fn apply_dispute(
    tx: &mut crate::store::Tx,
    event: &Event,
    action: &Action,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<(EventOutcome, Option<i64>)>> {
    use crate::core::dispute::{DisputeEffect, DisputeStatus};
    let (dispute, payment_intent, status, amount) = match action {
        Action::DisputeCreated {
            dispute,
            payment_intent,
            amount,
        } => (dispute, payment_intent, DisputeStatus::Open, Some(*amount)),
        Action::DisputeClosed {
            dispute,
            payment_intent,
            status,
        } => {
            let status = match status.as_str() {
                "won" => DisputeStatus::Won,
                "lost" => DisputeStatus::Lost,
                // `warning_closed` and the like: an inquiry closed with no chargeback.
                _ => return Ok(Some((EventOutcome::Recorded, None))),
            };
            let amount = crate::disputes::recorded_amount(tx, dispute).await?;
            (dispute, payment_intent, status, amount)
        }
        Action::PaymentSucceeded { .. }
        | Action::PaymentProcessing { .. }
        | Action::PaymentFailed { .. }
        | Action::ChargeRefunded { .. }
        | Action::Ignored => return Ok(None),
    };
    let Some(pi) = payment_intent else {
        return Ok(Some((EventOutcome::Unmatched, None)));
    };
    let Some(attempt) = store::attempt_for_payment_intent(&mut *tx, pi, None).await? else {
        return Ok(Some((EventOutcome::Unmatched, None)));
    };
    let Some(amount) = amount else {
        warn!(event.id = %event.id, dispute = %dispute,
            "a dispute closed that billrun never saw opened: recorded; record it with `billrun payment dispute`");
        return Ok(Some((EventOutcome::Recorded, Some(attempt.id))));
    };
    let inv = invoices::get(&mut *tx, attempt.invoice_id)
        .await?
        .context("the attempt's invoice")?;
    let req = crate::disputes::Request {
        invoice: inv.number.clone(),
        stripe_dispute: dispute.clone(),
        amount_minor: amount,
        status,
        now,
    };
    match crate::disputes::record_in(tx, &inv, &req).await {
        Ok(DisputeEffect::Nothing) => Ok(Some((EventOutcome::NoChange, Some(attempt.id)))),
        Ok(DisputeEffect::Record | DisputeEffect::Reopen) => {
            Ok(Some((EventOutcome::Applied, Some(attempt.id))))
        }
        Err(e) if e.downcast_ref::<crate::closing::Refused>().is_some() => {
            warn!(event.id = %event.id, dispute = %dispute, reason = %e, "dispute event not applied");
            Ok(Some((EventOutcome::NoChange, Some(attempt.id))))
        }
        Err(e) => Err(e),
    }
}

/// What a dry run can say of an event, having written nothing (`billrun webhooks replay
/// --dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Planned {
    /// A payment event that would settle its attempt.
    WouldApply,
    /// A refund or dispute event: it would be stored and handed to the refund or dispute code,
    /// whose verdict (applied, no change, recorded, unmatched) depends on the state it finds
    /// then, the events before it in the same file included; a dry run does not run it.
    WouldRecord,
    /// As [`apply`] would say, with nothing written.
    NoChange,
    Unmatched,
    Ignored,
    Duplicate,
}

impl Planned {
    pub fn as_str(self) -> &'static str {
        match self {
            Planned::WouldApply => "would_apply",
            Planned::WouldRecord => "would_record",
            Planned::NoChange => "no_change",
            Planned::Unmatched => "unmatched",
            Planned::Ignored => "ignored",
            Planned::Duplicate => "duplicate",
        }
    }
}

/// What [`apply`] would do with `event`, writing nothing (`--dry-run`).
pub async fn plan(db: &Db, event: &Event, action: &Action) -> anyhow::Result<Planned> {
    if store::exists(db, &event.id).await? {
        return Ok(Planned::Duplicate);
    }
    Ok(match judge(db, event, action).await? {
        Judged::Outcome(outcome, _) => match outcome {
            // `judge` leaves refunds and disputes to their own code: stored, judged on apply.
            EventOutcome::Recorded => Planned::WouldRecord,
            EventOutcome::Applied => Planned::WouldApply,
            EventOutcome::NoChange => Planned::NoChange,
            EventOutcome::Unmatched => Planned::Unmatched,
            EventOutcome::Ignored => Planned::Ignored,
            EventOutcome::Duplicate => Planned::Duplicate,
        },
        Judged::Settle(..) => Planned::WouldApply,
    })
}
