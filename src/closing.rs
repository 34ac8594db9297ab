//! Closing an account at its owner's request: `billrun account request-deletion` and
//! `billrun account confirm-deletion`, and an owner deleting an app (`billrun app delete`).
//!
//! A request is refused while the account owns apps or owes anything (every app and invoice
//! listed). Otherwise the usage not billed yet is billed at once (a final invoice, the month so
//! far, plus the previous month if the invoice job has not billed it yet) and collected at
//! once. Once nothing is due, a confirmation email carries a single-use token that expires
//! (`jobs/delete.toml`, default 72 h); only its SHA-256 is stored. Confirming deactivates the
//! account and queues its deletion (the `delete` job).

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tracing::info;

use crate::config::BadInput;
use crate::core::deletion::{
    OwedInvoice, Refusal, TokenError, check_request, check_token, token_digest,
};
use crate::core::document::Invoice;
use crate::core::email::EmailKind;
use crate::core::ids::AccountId;
use crate::core::lifecycle::AccountStatus;
use crate::core::money::format_minor;
use crate::core::period::Period;
use crate::core::pricing::BillingWindow;
use crate::core::timeline::TimelineKind;
use crate::jobs::collect::CollectionItem;
use crate::jobs::invoice::{Carried, compute, finalize};
use crate::jobs::{Env, JobName, RunOptions};
use crate::store::accounts::{self, AccountRow};
use crate::store::collection as coll;
use crate::store::outbox::{self, NewEmail};
use crate::store::{catalog, deletion, events, invoices, lifecycle};

/// A request or confirmation that the account's state does not allow: exit code 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RequestOutcome {
    /// Nothing is due: the confirmation email is queued.
    ConfirmationSent { expires_at: DateTime<Utc> },
    /// The final invoice could not be collected yet (declined, SEPA processing, no method).
    AwaitingPayment { invoices: Vec<OwedInvoice> },
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestReport {
    pub account_id: String,
    /// Written as their JSON views.
    #[serde(serialize_with = "crate::views::serialize_invoices")]
    pub final_invoices: Vec<Invoice>,
    pub collections: Vec<CollectionItem>,
    /// Small balances of earlier invoices written off because no final invoice could carry them.
    pub waived_balances: Vec<String>,
    #[serde(flatten)]
    pub outcome: RequestOutcome,
}

async fn active_account(env: &Env, id: &str) -> anyhow::Result<AccountRow> {
    let row = accounts::get_account(&env.db, id)
        .await?
        .ok_or_else(|| BadInput(format!("unknown account `{id}`")))?;
    match row.status {
        AccountStatus::Active => Ok(row),
        AccountStatus::Suspended => Err(Refused(format!(
            "account `{id}` is suspended for non-payment: {}",
            refusal_of(env, id).await?
        ))
        .into()),
        other @ (AccountStatus::Deactivated | AccountStatus::Deleting | AccountStatus::Deleted) => {
            Err(Refused(format!(
                "account `{id}` is {other}: its deletion was already confirmed"
            ))
            .into())
        }
    }
}

async fn refusal_of(env: &Env, id: &str) -> anyhow::Result<String> {
    let apps = deletion::owned_apps(&env.db, id).await?;
    let owed = deletion::owed_invoices(&env.db, id).await?;
    Ok(match check_request(apps, owed) {
        Ok(()) => "nothing is owed".to_string(),
        Err(r) => r.to_string(),
    })
}

fn refused(id: &str, r: &Refusal) -> anyhow::Error {
    Refused(format!("account `{id}` cannot be deleted yet: {r}")).into()
}

/// `billrun account request-deletion ID`.
pub async fn request(env: &Env, id: &str, now: DateTime<Utc>) -> anyhow::Result<RequestReport> {
    let row = active_account(env, id).await?;
    let apps = deletion::owned_apps(&env.db, id).await?;
    let owed = deletion::owed_invoices(&env.db, id).await?;
    check_request(apps, owed).map_err(|r| refused(id, &r))?;

    // From here the account is closing: the collect job waives what is below Stripe's minimum
    // instead of carrying it to an invoice that will never come. The token is not issued yet
    // (an empty digest matches no token).
    let mut tx = env.db.begin().await?;
    deletion::upsert_request(&mut tx, id, now, "", now).await?;
    events::record(
        &mut tx,
        id,
        now,
        TimelineKind::AccountDeletionRequested,
        None,
        "Account deletion requested: billing the usage not billed yet",
    )
    .await?;
    tx.commit().await?;

    let final_invoices = bill_final(env, &row, now).await?;
    let waived_balances = waive_leftovers(env, id, now).await?;
    let mut opts = RunOptions::at(now);
    opts.accounts = vec![AccountId(id.to_string())];
    let collected = crate::jobs::run(env, JobName::Collect, &opts).await?;
    if let Some(f) = collected.failures.first() {
        // The final invoice stays owed; the owner sees why and tries again once it is paid.
        info!(account.id = %id, error = %f.error, "final invoice not collected");
    }

    // The final invoices as they stand after that collection (credit applied, paid), so that
    // what is printed as due agrees with the outcome below.
    let mut final_invoices = final_invoices;
    for inv in &mut final_invoices {
        let Some(number) = inv.number.clone() else {
            continue;
        };
        if let Some(row) = invoices::find(&env.db, &number).await? {
            *inv = crate::store::invoice_document::load(&env.db, &row).await?;
        }
    }

    let owed = deletion::owed_invoices(&env.db, id).await?;
    let outcome = if !owed.is_empty() {
        RequestOutcome::AwaitingPayment { invoices: owed }
    } else {
        let expires_at =
            now + Duration::hours(i64::from(env.jobs.delete.settings.confirmation_hours));
        let token = new_token()?;
        let confirm_url = env
            .jobs
            .delete
            .settings
            .confirm_url
            .replace("{account}", id)
            .replace("{token}", &token);
        let mut tx = env.db.begin().await?;
        if !deletion::upsert_request(&mut tx, id, now, &token_digest(&token), expires_at).await? {
            tx.rollback().await?;
            return Err(Refused(format!(
                "account `{id}`: its deletion was already confirmed"
            ))
            .into());
        }
        outbox::enqueue(
            &mut tx,
            &NewEmail {
                account_id: id,
                kind: EmailKind::AccountDeletionConfirmation,
                dedupe_key: format!("account_deletion_confirmation:{id}:{}", now.timestamp()),
                language: row.language,
                to_address: &row.email,
                invoice_id: None,
                data: serde_json::json!({
                    "token": token,
                    "expires_at": expires_at.to_rfc3339(),
                    "confirm_url": confirm_url,
                }),
                at: now,
            },
        )
        .await?;
        events::record(
            &mut tx,
            id,
            now,
            TimelineKind::AccountDeletionConfirmationSent,
            None,
            &format!(
                "Nothing is due: deletion confirmation emailed, valid until {}",
                expires_at.format("%Y-%m-%d %H:%M UTC")
            ),
        )
        .await?;
        tx.commit().await?;
        RequestOutcome::ConfirmationSent { expires_at }
    };
    Ok(RequestReport {
        account_id: id.to_string(),
        final_invoices,
        collections: collected.collections,
        waived_balances,
        outcome,
    })
}

/// A token of 32 random bytes, hex, with a recognisable prefix.
fn new_token() -> anyhow::Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness for the token: {e}"))?;
    Ok(format!(
        "dlt_{}",
        buf.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Bills what the account used and was not billed for: the previous month if the invoice job
/// has not billed it yet, and the current month up to `now`.
async fn bill_final(
    env: &Env,
    row: &AccountRow,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Invoice>> {
    let account = row.to_account();
    let cat = catalog::load_catalog(&env.db).await?;
    let current = Period::containing(now);
    let mut windows = vec![BillingWindow::month(current.prev())];
    if now > current.start() {
        windows.push(BillingWindow {
            period: current,
            from: current.start(),
            to: now,
        });
    }
    let app_names: HashMap<String, String> = accounts::apps_of(&env.db, &row.id)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let mut out = Vec::new();
    for window in windows {
        let mut tx = env.db.begin().await?;
        let done = invoices::exists_for_period(&mut tx, &row.id, window.period).await?;
        tx.rollback().await?;
        if done {
            continue;
        }
        let usage: Vec<_> = accounts::usage_in_range(&env.db, &row.id, &row.id, &window)
            .await?
            .into_iter()
            .map(|(_, u)| u.into_usage())
            .collect();
        let carried = Carried {
            rewards: coll::open_rewards_in_range(&env.db, &row.id, &row.id, now).await?,
            balances: coll::open_transfers_in_range(&env.db, &row.id, &row.id)
                .await?
                .into_iter()
                .map(|(_, from, number, amount)| (from, number, amount))
                .collect(),
        };
        // Reverse charge on a recent VIES confirmation only, as in the invoice job; a final
        // invoice is never held: without one it is billed with VAT.
        let last =
            crate::store::vies::last_answers_in_range(&env.db, &row.id, &row.id, now).await?;
        let vies = crate::core::vat::reverse_charge_check(
            &account.country,
            account.vat_number.as_deref(),
            last.get(&row.id),
            now,
            env.jobs.vat_check.settings.max_age_days,
        );
        let Some(draft) = compute(
            &account,
            &usage,
            &app_names,
            &cat,
            &window,
            now,
            env.jobs.invoice.settings.due_days,
            &carried,
            &vies,
            crate::core::vat::OnUnverified::ChargeVat,
        )
        .with_context(|| format!("billing {} for account {}", window.period, row.id))?
        else {
            continue;
        };
        if let Some(view) = finalize(env, &draft).await? {
            info!(account.id = %row.id, invoice.number = view.number.as_deref().unwrap_or(""), amount_minor = draft.totals.total, "final invoice issued");
            out.push(view);
        }
    }
    Ok(out)
}

/// Small balances of earlier invoices that no final invoice took (nothing was used since):
/// there is no next invoice to carry them to and Stripe cannot charge them alone, so they are
/// waived, each recorded on the timeline.
async fn waive_leftovers(env: &Env, id: &str, now: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (_, from, number, amount) in coll::open_transfers_in_range(&env.db, id, id).await? {
        let mut tx = env.db.begin().await?;
        coll::waive_transfer(&mut tx, from, now).await?;
        events::record(
            &mut tx,
            id,
            now,
            TimelineKind::InvoiceWaived,
            Some(crate::core::ids::InvoiceId(from)),
            &format!(
                "{} EUR carried from invoice {number} is below the €0.50 minimum charge and the account is closing: waived",
                format_minor(amount)
            ),
        )
        .await?;
        tx.commit().await?;
        out.push(format!("{number}: {} EUR", format_minor(amount)));
    }
    Ok(out)
}

/// `billrun account confirm-deletion ID TOKEN`: deactivates the account and queues its
/// deletion. A wrong, used or expired token changes nothing.
pub async fn confirm(env: &Env, id: &str, token: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
    if accounts::get_account(&env.db, id).await?.is_none() {
        return Err(BadInput(format!("unknown account `{id}`")).into());
    }
    let mut tx = env.db.begin().await?;
    let pending = deletion::request(&mut tx, id).await?;
    if let Err(e) = check_token(pending.as_ref(), token, now) {
        tx.rollback().await?;
        let hint = match e {
            TokenError::NoRequest => " (run `billrun account request-deletion` first)",
            TokenError::Wrong | TokenError::Used(_) | TokenError::Expired(_) => "",
        };
        return Err(Refused(format!("account `{id}`: {e}{hint}")).into());
    }
    // The state may have changed since the request (an app created, an invoice issued).
    let apps = deletion::owned_apps(&env.db, id).await?;
    let owed = deletion::owed_invoices(&env.db, id).await?;
    if let Err(r) = check_request(apps, owed) {
        tx.rollback().await?;
        return Err(refused(id, &r));
    }
    if !deletion::confirm(&mut tx, id, &token_digest(token), now).await?
        || !deletion::set_status(
            &mut tx,
            id,
            AccountStatus::Active,
            AccountStatus::Deactivated,
        )
        .await?
    {
        tx.rollback().await?;
        return Err(Refused(format!(
            "account `{id}`: the token was used by another confirmation, or the account is no longer active"
        ))
        .into());
    }
    lifecycle::queue_deletion(&mut tx, id, "request", now).await?;
    events::record(
        &mut tx,
        id,
        now,
        TimelineKind::AccountDeactivated,
        None,
        "Deletion confirmed: account deactivated, its data queued for deletion",
    )
    .await?;
    tx.commit().await?;
    info!(account.id = %id, "account deletion confirmed");
    Ok(())
}

/// `billrun app delete APP`: the owner deleted the app (or transferred it away); its running
/// usage ends now and the platform is told.
pub async fn delete_app(env: &Env, app: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let mut tx = env.db.begin().await?;
    let row = accounts::get_app(&mut tx, app)
        .await?
        .ok_or_else(|| BadInput(format!("unknown app `{app}`")))?;
    let done =
        deletion::delete_app(&mut tx, app, &row.account_id, now, "deleted by its owner").await?;
    if done {
        events::record(
            &mut tx,
            &row.account_id,
            now,
            TimelineKind::AppDeleted,
            None,
            &format!("App {} ({app}) deleted", row.name),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}
