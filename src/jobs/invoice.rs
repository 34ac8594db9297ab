//! The monthly `invoice` job: one invoice per account with a non-zero amount for the period,
//! numbered at finalization from the gapless yearly sequence.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use super::{Env, Failure, JobName, JobReport, RunOptions};
use crate::config::BadInput;
use crate::core::collection::allocate_rewards;
use crate::core::invoice::{Language, draft_line, period_label, totals};
use crate::core::period::Period;
use crate::core::pricing::{BillingWindow, Catalog, UsageRecord, price_usage};
use crate::core::vat;
use crate::model::Account;
use crate::store::accounts::{self, AccountRow};
use crate::store::collection::{self as coll, RewardRow};
use crate::store::invoices::{self, DiscountLine, NewInvoice};
use crate::store::outbox::{self, NewEmail};
use crate::store::{catalog, events};
use crate::views::InvoiceView;

/// What an account carries into its next invoice: referral rewards not used yet and small
/// balances of earlier invoices.
#[derive(Debug, Default, Clone)]
pub struct Carried {
    pub rewards: Vec<RewardRow>,
    /// (from invoice id, its number, amount)
    pub balances: Vec<(i64, String, i64)>,
}

/// Computes the invoice an account would get, from its usage: pure, no I/O.
#[allow(clippy::too_many_arguments)]
pub fn compute(
    account: &Account,
    usage: &[UsageRecord],
    app_names: &HashMap<String, String>,
    catalog: &Catalog,
    window: &BillingWindow,
    now: DateTime<Utc>,
    due_days: u32,
    carried: &Carried,
) -> anyhow::Result<Option<NewInvoice>> {
    let priced = price_usage(window, usage, catalog)?;
    if priced.is_empty() {
        return Ok(None);
    }
    let lines: Vec<_> = priced
        .iter()
        .map(|l| {
            let name = app_names
                .get(l.app_id.as_str())
                .map(String::as_str)
                .unwrap_or(l.app_id.as_str());
            draft_line(l, name, account.language)
        })
        .collect();
    let vat = vat::treatment(
        &account.country,
        account.vat_number.as_deref(),
        window.period.last_day(),
    )?;
    let subtotal: i64 = lines.iter().map(|l| l.amount_minor).sum();
    if subtotal == 0 {
        return Ok(None);
    }
    // Referral rewards, oldest first, never more than the subtotal; the rest waits.
    let open: Vec<(i64, i64)> = carried
        .rewards
        .iter()
        .map(|r| (r.id, r.remaining_minor))
        .collect();
    let discounts: Vec<DiscountLine> = allocate_rewards(&open, subtotal)
        .into_iter()
        .map(|(id, amount)| {
            let r = carried
                .rewards
                .iter()
                .find(|r| r.id == id)
                .expect("allocated from these");
            let when = r
                .period
                .parse::<Period>()
                .map(|p| period_label(p, account.language))
                .unwrap_or_else(|_| r.period.clone());
            // An invitee whose account was deleted has its name stripped from the reward.
            let invitee = match (r.invitee_name.is_empty(), account.language) {
                (false, _) => r.invitee_name.as_str(),
                (true, Language::En) => "a deleted account",
                (true, Language::Fr) => "un compte supprimé",
            };
            let description = match account.language {
                Language::En => format!("Referral reward: {invitee}, {when}"),
                Language::Fr => format!("Récompense de parrainage : {invitee}, {when}"),
            };
            DiscountLine {
                description,
                reward_id: Some(id),
                amount_minor: amount,
            }
        })
        .collect();
    let discount: i64 = discounts.iter().map(|d| d.amount_minor).sum();
    let t = totals(lines.iter().map(|l| l.amount_minor), discount, vat);
    Ok(Some(NewInvoice {
        account: account.clone(),
        period: window.period,
        period_start: window.from,
        period_end: window.to,
        lines,
        discounts,
        brought_forward: carried.balances.clone(),
        totals: t,
        issued_at: now,
        due_at: (now + Duration::days(i64::from(due_days))).date_naive(),
    }))
}

pub async fn run(env: &Env, opts: &RunOptions) -> anyhow::Result<JobReport> {
    let mut report = JobReport::new(JobName::Invoice, opts);
    let period = opts.period.unwrap_or_else(|| Period::previous_to(opts.now));
    report.period = Some(period.to_string());
    if period.end() > opts.now {
        return Err(BadInput(format!(
            "period {period} is not over at {}: the invoice job bills whole months that have ended",
            opts.now.to_rfc3339()
        ))
        .into());
    }
    let window = BillingWindow::month(period);
    let settings = &env.jobs.invoice.settings;
    let cat = catalog::load_catalog(&env.db).await?;

    // Accounts come in batches: the ones named, or every account in id order.
    let mut named: Vec<AccountRow> = Vec::new();
    for id in &opts.accounts {
        let row = accounts::get_account(&env.db, id.as_str())
            .await?
            .ok_or_else(|| BadInput(format!("unknown account `{id}`")))?;
        named.push(row);
    }
    named.sort_by(|a, b| a.id.cmp(&b.id));
    let mut after: Option<String> = None;
    loop {
        let batch: Vec<AccountRow> = if opts.accounts.is_empty() {
            accounts::accounts_page(&env.db, after.as_deref(), i64::from(settings.batch_size))
                .await?
        } else if after.is_none() {
            std::mem::take(&mut named)
        } else {
            Vec::new()
        };
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            break;
        };
        let (first, last) = (first.id.clone(), last.id.clone());
        after = Some(last.clone());
        bill_batch(env, opts, &cat, &window, &batch, &first, &last, &mut report).await?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn bill_batch(
    env: &Env,
    opts: &RunOptions,
    cat: &Catalog,
    window: &BillingWindow,
    batch: &[AccountRow],
    first: &str,
    last: &str,
    report: &mut JobReport,
) -> anyhow::Result<()> {
    let settings = &env.jobs.invoice.settings;
    let usage_rows = accounts::usage_in_range(&env.db, first, last, window).await?;
    let mut usage: HashMap<String, Vec<UsageRecord>> = HashMap::new();
    for (account, row) in usage_rows {
        usage.entry(account).or_default().push(row.to_usage()?);
    }
    let app_names: HashMap<String, String> = accounts::apps_in_range(&env.db, first, last)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let invoiced: HashSet<String> =
        invoices::invoiced_in_range(&env.db, first, last, window.period)
            .await?
            .into_iter()
            .collect();
    let mut carried: HashMap<String, Carried> = HashMap::new();
    for r in coll::open_rewards_in_range(&env.db, first, last, opts.now).await? {
        carried
            .entry(r.referrer_id.clone())
            .or_default()
            .rewards
            .push(r);
    }
    for (account, from, number, amount) in
        coll::open_transfers_in_range(&env.db, first, last).await?
    {
        carried
            .entry(account)
            .or_default()
            .balances
            .push((from, number, amount));
    }
    let nothing_carried = Carried::default();

    for row in batch {
        if invoiced.contains(&row.id) {
            report.bump("already_invoiced");
            continue;
        }
        if row.status == "deleted" {
            // Its data is gone (profile stripped): nothing can be invoiced to it any more.
            report.bump("account_deleted");
            continue;
        }
        let Some(records) = usage.get(&row.id) else {
            report.bump("nothing_to_bill");
            continue;
        };
        let draft = row.to_account().and_then(|account| {
            compute(
                &account,
                records,
                &app_names,
                cat,
                window,
                opts.now,
                settings.due_days,
                carried.get(&row.id).unwrap_or(&nothing_carried),
            )
        });
        let draft = match draft {
            Ok(Some(d)) => d,
            Ok(None) => {
                report.bump("nothing_to_bill");
                continue;
            }
            Err(e) => {
                warn!(account.id = %row.id, error = %e, "cannot invoice account");
                report.failures.push(Failure {
                    item: format!("account {}", row.id),
                    error: format!("{e:#}"),
                });
                continue;
            }
        };
        if opts.dry_run {
            report.bump("would_invoice");
            report.invoices.push(InvoiceView::from_new(&draft));
            continue;
        }
        match finalize(env, &draft).await {
            Ok(Some(view)) => {
                info!(account.id = %row.id, invoice.number = view.number.as_deref().unwrap_or(""), amount_minor = draft.totals.total, "invoice issued");
                report.bump("invoiced");
                report.invoices.push(view);
            }
            Ok(None) => report.bump("already_invoiced"),
            Err(e) => {
                warn!(account.id = %row.id, error = %format!("{e:#}"), "cannot store invoice");
                report.failures.push(Failure {
                    item: format!("account {}", row.id),
                    error: format!("{e:#}"),
                });
            }
        }
    }
    Ok(())
}

/// Numbers and stores one invoice with its timeline event, in one transaction.
pub async fn finalize(env: &Env, draft: &NewInvoice) -> anyhow::Result<Option<InvoiceView>> {
    let mut tx = env.db.begin().await?;
    let Some((id, number)) = invoices::finalize(&mut tx, draft)
        .await
        .context("finalizing invoice")?
    else {
        tx.rollback().await?;
        return Ok(None);
    };
    let msg = format!(
        "Invoice {number} issued for {}: {} EUR",
        draft.period,
        crate::core::money::format_minor(draft.totals.total)
    );
    events::record(
        &mut tx,
        draft.account.id.as_str(),
        draft.issued_at,
        "invoice.issued",
        Some(id),
        &msg,
    )
    .await?;
    let a = &draft.account;
    outbox::enqueue(
        &mut tx,
        &NewEmail {
            account_id: a.id.as_str(),
            kind: "invoice_issued",
            dedupe_key: format!("invoice_issued:{}", id.0),
            language: a.language.as_str(),
            to_address: &a.email,
            invoice_id: Some(id.0),
            data: serde_json::json!({
                "invoice_number": number,
                "period": draft.period.to_string(),
                "total": crate::core::money::format_minor(draft.totals.total),
                "amount_due": crate::core::money::format_minor(draft.amount_due_minor()),
                "due_at": draft.due_at.to_string(),
            }),
            at: draft.issued_at,
        },
    )
    .await?;
    let mut view = InvoiceView::from_new(draft);
    view.id = Some(id.0);
    view.number = Some(number);
    if draft.amount_due_minor() == 0 {
        view.status = "paid".into();
    }
    // The document is made and stored in the finalizing transaction: no finalized invoice
    // without its PDF, whatever crashes.
    let last_day = (draft.period_end - Duration::seconds(1)).date_naive();
    let pdf = crate::documents::invoice_pdf::render(
        &view,
        draft.period_start.date_naive(),
        last_day,
        &env.jobs.invoice.settings.seller,
    )
    .context("rendering the invoice PDF")?;
    crate::store::documents::save(&mut tx, id.0, &pdf, draft.issued_at).await?;
    tx.commit().await?;
    Ok(Some(view))
}
