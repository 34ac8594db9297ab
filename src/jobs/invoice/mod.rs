//! The monthly `invoice` job: one invoice per account with a non-zero amount for the period,
//! numbered at finalization from the gapless yearly sequence.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use tracing::warn;

use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::config::BadInput;
use crate::core::collection::allocate_rewards;
use crate::core::einvoice::PaymentMeans;
use crate::core::invoice::{Language, draft_line, period_label, totals};
use crate::core::lifecycle::AccountStatus;
use crate::core::money::{Overflow, checked_sum};
use crate::core::period::Period;
use crate::core::pricing::{BillingWindow, Catalog, PricingError, UsageRecord, price_usage};
use crate::core::vat;
use crate::model::Account;
use crate::store::accounts::{self, AccountRow};
use crate::store::catalog;
use crate::store::collection::{self as coll, RewardRow};
use crate::store::invoice_document;
use crate::store::invoices::{self, DiscountLine, NewInvoice};

mod finalize;

use finalize::Finalizer;
pub use finalize::finalize;

/// What an account carries into its next invoice: referral rewards not used yet and small
/// balances of earlier invoices.
#[derive(Debug, Default, Clone)]
pub struct Carried {
    pub rewards: Vec<RewardRow>,
    /// (from invoice id, its number, amount)
    pub balances: Vec<(i64, String, i64)>,
}

/// Why an account cannot be invoiced from what it is billed from: the account named, the cause
/// (which names the app and usage record, for pricing) as its source. The invoice job reports
/// it in `failures` and invoices every other account.
#[derive(Debug, thiserror::Error)]
pub enum CannotInvoice {
    #[error("account {account}")]
    Pricing {
        account: String,
        #[source]
        error: PricingError,
    },
    #[error("account {account}")]
    Amounts {
        account: String,
        #[source]
        error: Overflow,
    },
    /// `on_unverified = "hold"` and no recent VIES confirmation of the account's VAT number.
    #[error("account {account}")]
    Held {
        account: String,
        #[source]
        why: vat::Unverified,
    },
}

impl CannotInvoice {
    /// The cause alone, for a report whose item already names the account.
    pub fn cause(&self) -> String {
        match self {
            CannotInvoice::Pricing { error, .. } => error.to_string(),
            CannotInvoice::Amounts { error, .. } => error.to_string(),
            CannotInvoice::Held { why, .. } => format!(
                "held (on_unverified = \"hold\"): {why}; no reverse charge without a VIES confirmation (article 18 of Regulation (EU) 282/2011)"
            ),
        }
    }
}

/// Computes the invoice an account would get, from its usage: pure, no I/O. `vies` is the
/// check of the account's VAT number against VIES's last answer
/// (`core::vat::reverse_charge_check`); reverse charge only on a confirmed one.
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
    vies: &vat::ReverseChargeCheck,
    on_unverified: vat::OnUnverified,
) -> anyhow::Result<Option<NewInvoice>> {
    let account_id = || account.id.as_str().to_string();
    let priced = price_usage(window, usage, catalog).map_err(|error| CannotInvoice::Pricing {
        account: account_id(),
        error,
    })?;
    let amounts = |error| CannotInvoice::Amounts {
        account: account_id(),
        error,
    };
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
    let (vat, vies_consultation) = match vat::decide(
        &account.country,
        account.vat_number.as_deref(),
        vies,
        on_unverified,
        window.period.last_day(),
    )? {
        vat::VatDecision::Bill {
            treatment,
            consultation,
        } => (treatment, consultation),
        vat::VatDecision::Hold(why) => {
            return Err(CannotInvoice::Held {
                account: account_id(),
                why,
            }
            .into());
        }
    };
    let subtotal = checked_sum(
        lines.iter().map(|l| l.amount.minor),
        "the invoice's subtotal",
    )
    .map_err(amounts)?;
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
            let when = period_label(r.period, account.language);
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
    let discount =
        checked_sum(discounts.iter().map(|d| d.amount_minor), "the discount").map_err(amounts)?;
    let t = totals(lines.iter().map(|l| l.amount.minor), discount, vat).map_err(amounts)?;
    let due_at = now
        .checked_add_signed(Duration::days(i64::from(due_days)))
        .ok_or_else(|| amounts(Overflow::of("the due date")))?;
    let amount_due = t.total + carried.balances.iter().map(|b| b.2).sum::<i64>();
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
        due_at: due_at.date_naive(),
        vies_consultation,
        // What the amount alone says; finalization records what the account has on file
        // (`invoices::record_payment_means`, in its transaction).
        payment_means: PaymentMeans::at_issue(amount_due, 0, None),
        sepa_mandate: None,
    }))
}

/// After each batch of accounts the batch's invoices leave the report: dropped once counted
/// (`--counts-only`: the daemon, the bench) or handed to the caller's sink (`run invoice`
/// spools them), so that a run over a large platform keeps flat memory.
fn hand_over(opts: &RunOptions, report: &mut JobReport) {
    if opts.counts_only {
        report.invoices.clear();
    } else if let Some(sink) = &opts.invoice_sink.0
        && !report.invoices.is_empty()
    {
        sink(std::mem::take(&mut report.invoices));
    }
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
    if opts.progress.0.is_some() {
        opts.progress.total(if opts.accounts.is_empty() {
            accounts::count_accounts(&env.db).await? as u64
        } else {
            named.len() as u64
        });
    }
    // Every account in id order is read a page ahead: the next page and what its accounts are
    // billed from load (on another worker thread) while this one is billed. Pages do not
    // depend on each other (each account is billed from its own rows), and finalizing
    // re-checks in its transaction what another run may have changed meanwhile.
    let paged = opts.range.is_none() && opts.accounts.is_empty();
    let page_size = i64::from(settings.batch_size);
    let mut ahead: Option<tokio::task::JoinHandle<anyhow::Result<Page>>> = None;
    // Drafts are finalized in groups, one group while the next is computed, across pages;
    // whatever ends the loop (the last page, a stop, an error), what is pending is finalized
    // and reported before the run returns.
    let mut finalizer = Finalizer::new(env, !opts.counts_only);
    let outcome: anyhow::Result<()> = async {
        loop {
            if opts.stop.requested() {
                report.stop_early();
                break;
            }
            let (batch, loaded) = if let Some(next) = ahead.take() {
                next.await.context("reading the next page of accounts")??
            } else {
                let batch: Vec<AccountRow> = if let Some((first, last)) = &opts.range {
                    // A scale-out batch: its accounts in one go.
                    if after.is_some() {
                        Vec::new()
                    } else {
                        accounts::accounts_between(&env.db, first, last).await?
                    }
                } else if paged {
                    accounts::accounts_page(&env.db, after.as_deref(), page_size).await?
                } else if after.is_none() {
                    std::mem::take(&mut named)
                } else {
                    Vec::new()
                };
                let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
                    break;
                };
                let loaded = load(&env.db, &first.id, &last.id, window, opts.now).await?;
                (batch, loaded)
            };
            let Some(last) = batch.last() else {
                break;
            };
            after = Some(last.id.clone());
            if paged {
                let (db, after, now) = (env.db.clone(), last.id.clone(), opts.now);
                ahead = Some(tokio::spawn(async move {
                    let batch = accounts::accounts_page(&db, Some(&after), page_size).await?;
                    let loaded = match (batch.first(), batch.last()) {
                        (Some(first), Some(last)) => {
                            load(&db, &first.id, &last.id, window, now).await?
                        }
                        _ => Loaded::default(),
                    };
                    Ok((batch, loaded))
                }));
            }
            bill_batch(
                env,
                opts,
                &cat,
                &window,
                &batch,
                &loaded,
                &mut finalizer,
                &mut report,
            )
            .await?;
            opts.progress.advance(batch.len() as u64);
            hand_over(opts, &mut report);
        }
        Ok(())
    }
    .await;
    if let Some(next) = ahead {
        next.abort();
    }
    finalizer.flush(&mut report).await;
    // The groups settled by that flush came after the last batch's hand-over.
    hand_over(opts, &mut report);
    outcome?;
    Ok(report)
}

/// A page of accounts and what they are billed from.
type Page = (Vec<AccountRow>, Loaded);

/// What a batch of accounts is billed from, read in a few queries.
#[derive(Default)]
struct Loaded {
    usage: HashMap<String, Vec<UsageRecord>>,
    app_names: HashMap<String, String>,
    invoiced: HashSet<String>,
    carried: HashMap<String, Carried>,
    /// VIES's last conclusive answer per account.
    vies: HashMap<String, vat::ViesAnswer>,
}

/// Reads what the accounts with ids in `[first, last]` are billed from.
async fn load(
    db: &crate::store::Db,
    first: &str,
    last: &str,
    window: BillingWindow,
    now: DateTime<Utc>,
) -> anyhow::Result<Loaded> {
    let usage_rows = accounts::usage_in_range(db, first, last, &window).await?;
    let mut usage: HashMap<String, Vec<UsageRecord>> = HashMap::new();
    for (account, row) in usage_rows {
        usage.entry(account).or_default().push(row.into_usage());
    }
    let app_names: HashMap<String, String> = accounts::apps_in_range(db, first, last)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let invoiced: HashSet<String> = invoices::invoiced_in_range(db, first, last, window.period)
        .await?
        .into_iter()
        .collect();
    let mut carried: HashMap<String, Carried> = HashMap::new();
    for r in coll::open_rewards_in_range(db, first, last, now).await? {
        carried
            .entry(r.referrer_id.clone())
            .or_default()
            .rewards
            .push(r);
    }
    for (account, from, number, amount) in coll::open_transfers_in_range(db, first, last).await? {
        carried
            .entry(account)
            .or_default()
            .balances
            .push((from, number, amount));
    }
    let vies = crate::store::vies::last_answers_in_range(db, first, last, now).await?;
    Ok(Loaded {
        usage,
        app_names,
        invoiced,
        carried,
        vies,
    })
}

#[allow(clippy::too_many_arguments)]
async fn bill_batch(
    env: &Env,
    opts: &RunOptions,
    cat: &Catalog,
    window: &BillingWindow,
    batch: &[AccountRow],
    loaded: &Loaded,
    finalizer: &mut Finalizer,
    report: &mut JobReport,
) -> anyhow::Result<()> {
    let settings = &env.jobs.invoice.settings;
    let Loaded {
        usage,
        app_names,
        invoiced,
        carried,
        vies,
    } = loaded;
    let max_age_days = env.jobs.vat_check.settings.max_age_days;
    let nothing_carried = Carried::default();

    for row in batch {
        if invoiced.contains(&row.id) {
            report.bump(Count::AlreadyInvoiced);
            continue;
        }
        match row.status {
            AccountStatus::Deleted => {
                // Its data is gone (profile stripped): nothing can be invoiced to it any more.
                report.bump(Count::AccountDeleted);
                continue;
            }
            // Billed for what it used, up to its deletion.
            AccountStatus::Active
            | AccountStatus::Suspended
            | AccountStatus::Deactivated
            | AccountStatus::Deleting => {}
        }
        let Some(records) = usage.get(&row.id) else {
            report.bump(Count::NothingToBill);
            continue;
        };
        // Reverse charge rests on a recent VIES confirmation of the number (article 18 of
        // Regulation (EU) 282/2011); without one the run says which account and why.
        let check = vat::reverse_charge_check(
            &row.country,
            row.vat_number.as_deref(),
            vies.get(&row.id),
            opts.now,
            max_age_days,
        );
        let draft = compute(
            &row.to_account(),
            records,
            app_names,
            cat,
            window,
            opts.now,
            settings.due_days,
            carried.get(&row.id).unwrap_or(&nothing_carried),
            &check,
            settings.on_unverified,
        );
        if let (vat::ReverseChargeCheck::Unverified(why), Ok(Some(_))) = (&check, &draft) {
            warn!(account.id = %row.id, reason = %why, "no reverse charge: VAT number not confirmed by VIES");
            report.notes.push(format!(
                "account {}: billed with VAT, no reverse charge (on_unverified = \"charge_vat\"): {why}",
                row.id
            ));
        }
        let draft = match draft {
            Ok(Some(d)) => d,
            Ok(None) => {
                report.bump(Count::NothingToBill);
                continue;
            }
            Err(e) => {
                // What is pending goes first, so that the report keeps the accounts' order.
                finalizer.flush(report).await;
                warn!(account.id = %row.id, error = %crate::error_text::chain(&e), "cannot invoice account");
                report.failures.push(Failure {
                    item: format!("account {}", row.id),
                    error: match e.downcast_ref::<CannotInvoice>() {
                        Some(c) => c.cause(),
                        None => crate::error_text::chain(&e),
                    },
                });
                continue;
            }
        };
        if opts.dry_run {
            report.bump(Count::WouldInvoice);
            report
                .invoices
                .push(invoice_document::from_new(&draft, None));
            continue;
        }
        finalizer.push(draft, report).await;
    }
    // The page's drafts go out now (while the next page is billed), so that a run commits
    // page by page however small its pages are, and a stop leaves at most one page in flight.
    finalizer.send(report).await;
    Ok(())
}
