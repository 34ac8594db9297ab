//! Disputes (chargebacks, issue 22): `billrun payment dispute` records one (the Stripe
//! webhook's `charge.dispute.*` calls the same code). A dispute is never a credit note: lost,
//! the amount is owed again (the invoice is `unpaid`, dunning starts over from now, the
//! account is told); won, nothing changes. The rule is `core::dispute::transition`.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::info;

use crate::closing::Refused;
use crate::config::BadInput;
use crate::core::dispute::{self, DisputeEffect, DisputeError, DisputeStatus};
use crate::core::ids::InvoiceId;
use crate::core::money::format_minor;
use crate::jobs::Env;
use crate::store::invoices::{self, InvoiceRow};
use crate::store::{Tx, events};
use crate::with_db;

#[derive(Debug, Clone)]
pub struct Request {
    pub invoice: String,
    pub stripe_dispute: String,
    pub amount_minor: i64,
    pub status: DisputeStatus,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub stripe_dispute: String,
    pub invoice_number: String,
    pub amount: String,
    pub status: DisputeStatus,
    pub effect: DisputeEffect,
    /// What the invoice owes after it.
    pub amount_due: String,
    pub invoice_status: String,
}

/// Records a dispute's status; applies what losing it means, once (`billrun payment
/// dispute`).
pub async fn record(env: &Env, req: &Request) -> anyhow::Result<Recorded> {
    if req.stripe_dispute.trim().is_empty() {
        return Err(BadInput("--stripe-dispute: the dispute's id (dp_…) is needed".into()).into());
    }
    let inv = invoices::require(&env.db, &req.invoice).await?;
    let mut tx = env.db.begin().await?;
    let effect = match record_in(&mut tx, &inv, req).await {
        Ok(e) => e,
        Err(e) => {
            tx.rollback().await.ok();
            return Err(e);
        }
    };
    tx.commit().await?;
    info!(invoice.number = %inv.number, dispute = %req.stripe_dispute, status = req.status.as_str(),
        amount_minor = req.amount_minor, "dispute recorded");
    let after = invoices::get(&env.db, inv.id)
        .await?
        .context("the disputed invoice")?;
    Ok(Recorded {
        stripe_dispute: req.stripe_dispute.clone(),
        invoice_number: inv.number,
        amount: format_minor(req.amount_minor),
        status: req.status,
        effect,
        amount_due: format_minor(after.amount_due_minor),
        invoice_status: after.status.as_str().to_string(),
    })
}

/// The amount a dispute already recorded is for (what `charge.dispute.closed` does not say).
pub async fn recorded_amount(tx: &mut Tx, stripe_dispute: &str) -> anyhow::Result<Option<i64>> {
    let row: Option<(i64,)> = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT amount_minor FROM disputes WHERE stripe_dispute_id = $1")
        .bind(stripe_dispute).fetch_optional(c).await?);
    Ok(row.map(|r| r.0))
}

/// [`record`] in the caller's transaction (the Stripe webhook's, with the event row): a
/// refusal of the rules is [`Refused`].
pub async fn record_in(
    tx: &mut Tx,
    inv: &InvoiceRow,
    req: &Request,
) -> anyhow::Result<DisputeEffect> {
    crate::store::credit_notes::lock_invoice(tx, inv.id).await?;
    let existing: Option<(i64, String)> = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT invoice_id, status FROM disputes WHERE stripe_dispute_id = $1")
        .bind(&req.stripe_dispute).fetch_optional(c).await?);
    if let Some((other, _)) = &existing
        && *other != inv.id
    {
        return Err(Refused(format!(
            "dispute {} is recorded on another invoice",
            req.stripe_dispute
        ))
        .into());
    }
    let before = existing
        .as_ref()
        .map(|(_, s)| DisputeStatus::parse(s).context("a dispute's stored status"))
        .transpose()?;
    // What the gateway collected on the invoice: what a bank can take back.
    let (paid,): (i64,) = with_db!(&mut *tx, c => sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM payment_attempts
         WHERE invoice_id = $1 AND outcome = 'succeeded'")
        .bind(inv.id).fetch_one(c).await?);
    let effect = dispute::transition(before, req.status, req.amount_minor, paid).map_err(|e| {
        let text = match e {
            DisputeError::MoreThanPaid { asked, paid } => format!(
                "{} disputed, but only {} was paid through the gateway on invoice {}",
                format_minor(asked),
                format_minor(paid),
                inv.number
            ),
            DisputeError::Closed(_) | DisputeError::NotPositive => e.to_string(),
        };
        anyhow::Error::from(Refused(text))
    })?;
    match effect {
        DisputeEffect::Nothing => {}
        DisputeEffect::Record | DisputeEffect::Reopen => {
            with_db!(&mut *tx, c => sqlx::query(
                "INSERT INTO disputes (stripe_dispute_id, invoice_id, amount_minor, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (stripe_dispute_id) DO UPDATE SET status = excluded.status, amount_minor = excluded.amount_minor,
                    updated_at = excluded.updated_at")
                .bind(&req.stripe_dispute).bind(inv.id).bind(req.amount_minor).bind(req.status.as_str()).bind(req.now)
                .execute(c).await?.rows_affected());
            let message = format!(
                "Dispute {} on invoice {} ({}): {}",
                req.stripe_dispute,
                inv.number,
                format_minor(req.amount_minor),
                req.status.as_str()
            );
            events::record(
                tx,
                inv.account_id.as_str(),
                req.now,
                crate::core::timeline::TimelineKind::dispute(req.status),
                Some(InvoiceId(inv.id)),
                &message,
            )
            .await?;
        }
    }
    if effect == DisputeEffect::Reopen {
        // The bank took it back: owed again, dunning from now (a fresh schedule).
        with_db!(&mut *tx, c => sqlx::query(
            "UPDATE invoices SET amount_paid_minor = amount_paid_minor - $2, amount_due_minor = amount_due_minor + $2,
                status = 'unpaid', next_attempt_at = $3, scheduled_failures = 0, collection_exhausted_at = NULL,
                blocked_pm_version = NULL
             WHERE id = $1")
            .bind(inv.id).bind(req.amount_minor).bind(req.now).execute(c).await?.rows_affected());
        // The account is told, once per dispute, in the same transaction.
        if let Some(account) =
            crate::store::accounts::get_account(&mut *tx, &inv.account_id).await?
            && !account.email.is_empty()
        {
            crate::store::outbox::enqueue(
                tx,
                &crate::store::outbox::NewEmail {
                    account_id: &inv.account_id,
                    kind: crate::core::email::EmailKind::PaymentDisputed,
                    dedupe_key: format!("payment_disputed:{}", req.stripe_dispute),
                    language: inv.language,
                    to_address: &account.email,
                    invoice_id: Some(inv.id),
                    data: serde_json::json!({
                        "invoice_number": inv.number,
                        "amount": format_minor(req.amount_minor),
                        "amount_due": format_minor(inv.amount_due_minor + req.amount_minor),
                    }),
                    at: req.now,
                },
            )
            .await?;
        }
    }
    Ok(effect)
}
