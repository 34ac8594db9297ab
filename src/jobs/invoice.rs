//! The monthly `invoice` job: one invoice per account with a non-zero amount for the period,
//! numbered at finalization from the gapless yearly sequence.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use tracing::{debug, info, warn};

use super::{Count, Env, Failure, JobName, JobReport, RunOptions};
use crate::config::BadInput;
use crate::core::collection::allocate_rewards;
use crate::core::document::Invoice;
use crate::core::einvoice::PaymentMeans;
use crate::core::ids::InvoiceId;
use crate::core::invoice::{Language, draft_line, period_label, totals};
use crate::core::lifecycle::AccountStatus;
use crate::core::money::{Overflow, checked_sum};
use crate::core::period::Period;
use crate::core::pricing::{BillingWindow, Catalog, PricingError, UsageRecord, price_usage};
use crate::core::timeline::TimelineKind;
use crate::core::vat;
use crate::model::Account;
use crate::store::accounts::{self, AccountRow};
use crate::store::collection::{self as coll, RewardRow};
use crate::store::invoice_document;
use crate::store::invoices::{self, DiscountLine, NewInvoice};
use crate::store::outbox::{self, NewEmail};
use crate::store::{catalog, events};

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

/// Invoices finalized together in one transaction (a group commit) at most: the database does a
/// few bulk statements and one commit for them instead of a dozen statements and a commit
/// each. A group is also cut at the end of each page of accounts (`batch_size`). The per-year
/// number counter stays locked until that commit, as for one invoice.
const GROUP: usize = 500;

/// Finalizes drafts in groups, in order: each group together when that works, else (some
/// account was invoiced meanwhile, a reward or balance used by another run, an error) one by
/// one as before, which reports each outcome. Either way every draft is finalized at most
/// once and the numbers follow the order of the drafts without a gap. One group is finalized
/// (in its own task) while the next is computed; the next starts only once it is settled.
struct Finalizer {
    env: std::sync::Arc<Env>,
    pending: Vec<NewInvoice>,
    in_flight: Option<tokio::task::JoinHandle<Together>>,
    /// Whether the report gets a view of each invoice issued together (not when it keeps
    /// counts only: building them to drop them was a tenth of the step's instructions).
    views: bool,
}

/// A group finalized together: its drafts and the outcome (each one's id and number).
type Together = (
    Vec<NewInvoice>,
    anyhow::Result<Option<Vec<(InvoiceId, String)>>>,
);

impl Finalizer {
    fn new(env: &Env, views: bool) -> Finalizer {
        Finalizer {
            env: std::sync::Arc::new(env.clone()),
            pending: Vec::with_capacity(GROUP),
            in_flight: None,
            views,
        }
    }

    async fn push(&mut self, draft: NewInvoice, report: &mut JobReport) {
        self.pending.push(draft);
        if self.pending.len() >= GROUP {
            self.send(report).await;
        }
    }

    /// Starts finalizing what is pending, once the group in flight is settled. A group that
    /// went through is reported after the next one has started: writing is the step's
    /// critical path, and the report's views (70 ms a run at 10k invoices) need not hold it.
    async fn send(&mut self, report: &mut JobReport) {
        let drafts = std::mem::take(&mut self.pending);
        let done = match self.wait().await {
            Some((before, Ok(Some(done)))) => Some((before, done)),
            Some((before, outcome)) => {
                self.fall_back(&before, outcome, report).await;
                None
            }
            None => None,
        };
        match drafts.len() {
            0 | 1 => {
                if let Some((before, done)) = done {
                    issued_together(&before, done, report, self.views);
                }
                if !drafts.is_empty() {
                    one_by_one(&self.env, &drafts, report).await;
                }
            }
            _ => {
                let env = self.env.clone();
                self.in_flight = Some(tokio::spawn(async move {
                    let mut drafts = drafts;
                    let outcome = finalize_together(&env, &mut drafts).await;
                    (drafts, outcome)
                }));
                if let Some((before, done)) = done {
                    issued_together(&before, done, report, self.views);
                }
            }
        }
    }

    /// The group in flight, once finalized (or not).
    async fn wait(&mut self) -> Option<Together> {
        let task = self.in_flight.take()?;
        match task.await {
            Ok(done) => Some(done),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Waits for the group in flight and reports it.
    async fn settle(&mut self, report: &mut JobReport) {
        match self.wait().await {
            Some((drafts, Ok(Some(done)))) => issued_together(&drafts, done, report, self.views),
            Some((drafts, outcome)) => self.fall_back(&drafts, outcome, report).await,
            None => {}
        }
    }

    /// A group that could not be finalized together: one by one, each outcome reported.
    async fn fall_back(
        &self,
        drafts: &[NewInvoice],
        outcome: anyhow::Result<Option<Vec<(InvoiceId, String)>>>,
        report: &mut JobReport,
    ) {
        match outcome {
            Ok(_) => debug!(
                invoices = drafts.len(),
                "a group of invoices could not be finalized together; one by one"
            ),
            Err(e) => debug!(
                invoices = drafts.len(),
                error = %crate::error_text::chain(&e),
                "a group of invoices could not be finalized together; one by one"
            ),
        }
        regrouped(report, drafts);
        one_by_one(&self.env, drafts, report).await;
    }

    /// Everything pending finalized and reported.
    async fn flush(&mut self, report: &mut JobReport) {
        self.send(report).await;
        self.settle(report).await;
    }
}

/// Reports a group finalized together: each invoice as issued (its view only when `views`),
/// in the drafts' order.
fn issued_together(
    drafts: &[NewInvoice],
    done: Vec<(InvoiceId, String)>,
    report: &mut JobReport,
    views: bool,
) {
    for (draft, (id, number)) in drafts.iter().zip(done) {
        info!(account.id = %draft.account.id, invoice.number = %number, amount_minor = draft.totals.total, "invoice issued");
        report.bump(Count::Invoiced);
        if views {
            report
                .invoices
                .push(invoice_document::from_new(draft, Some((id, &number))));
        }
    }
}

/// Counts the drafts of a group that fell back to one by one (`regrouped_one_by_one`): rare
/// (another run got there first), and a sign of contention when it is not.
fn regrouped(report: &mut JobReport, drafts: &[NewInvoice]) {
    for _ in drafts {
        report.bump(Count::RegroupedOneByOne);
    }
}

/// Finalizes drafts one at a time, each in its own transaction, reporting each outcome.
async fn one_by_one(env: &Env, drafts: &[NewInvoice], report: &mut JobReport) {
    for draft in drafts {
        match finalize_one(env, draft).await {
            Ok(Some(view)) => {
                info!(account.id = %draft.account.id, invoice.number = view.number.as_deref().unwrap_or(""), amount_minor = draft.totals.total, "invoice issued");
                report.bump(Count::Invoiced);
                report.invoices.push(view);
            }
            Ok(None) => report.bump(Count::AlreadyInvoiced),
            Err(e) => {
                warn!(account.id = %draft.account.id, error = %crate::error_text::chain(&e), "cannot store invoice");
                report.failures.push(Failure {
                    item: format!("account {}", draft.account.id),
                    error: crate::error_text::chain(&e),
                });
            }
        }
    }
}

/// What [`finalize`] does for each draft, for all of them in one transaction. `None` (and
/// nothing written) when one of them cannot be finalized.
async fn finalize_together(
    env: &Env,
    drafts: &mut [NewInvoice],
) -> anyhow::Result<Option<Vec<(InvoiceId, String)>>> {
    let mut tx = env.db.begin().await?;
    invoices::record_payment_means(&mut tx, drafts).await?;
    let drafts = &*drafts;
    let Some(done) = invoices::finalize_group(&mut tx, drafts)
        .await
        .context("finalizing invoices")?
    else {
        tx.rollback().await?;
        return Ok(None);
    };
    let messages: Vec<String> = drafts
        .iter()
        .zip(&done)
        .map(|(d, (_, number))| issued_message(d, number))
        .collect();
    let new_events: Vec<events::NewEvent> = drafts
        .iter()
        .zip(&done)
        .zip(&messages)
        .map(|((d, (id, _)), message)| events::NewEvent {
            account_id: d.account.id.as_str(),
            at: d.issued_at,
            kind: TimelineKind::InvoiceIssued,
            invoice_id: Some(*id),
            message,
        })
        .collect();
    events::record_many(&mut tx, &new_events).await?;
    let emails: Vec<NewEmail> = drafts
        .iter()
        .zip(&done)
        .map(|(d, (id, number))| issued_email(d, *id, number))
        .collect();
    outbox::enqueue_many(&mut tx, &emails, outbox::OnConflict::Fail).await?;
    tx.commit().await?;
    Ok(Some(done))
}

/// The timeline message of an issued invoice.
fn issued_message(draft: &NewInvoice, number: &str) -> String {
    format!(
        "Invoice {number} issued for {}: {} EUR",
        draft.period,
        crate::core::money::format_minor(draft.totals.total)
    )
}

/// The "invoice issued" email of an invoice.
fn issued_email<'a>(draft: &'a NewInvoice, id: InvoiceId, number: &str) -> NewEmail<'a> {
    let a = &draft.account;
    NewEmail {
        account_id: a.id.as_str(),
        kind: crate::core::email::EmailKind::InvoiceIssued,
        dedupe_key: format!("invoice_issued:{}", id.0),
        language: a.language,
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
    }
}

/// Numbers and stores one invoice with its timeline event and email, in one transaction, then
/// its PDF (`documents::invoice_pdf`): a final invoice on closing an account, issued alone.
pub async fn finalize(env: &Env, draft: &NewInvoice) -> anyhow::Result<Option<Invoice>> {
    let issued = finalize_one(env, draft).await?;
    if let Some(id) = issued.as_ref().and_then(|inv| inv.id) {
        super::documents::invoice_pdf(env, id.0).await?;
    }
    Ok(issued)
}

/// Numbers and stores one invoice with its timeline event and email, in one transaction; its
/// PDF comes after the commit (the documents step).
async fn finalize_one(env: &Env, draft: &NewInvoice) -> anyhow::Result<Option<Invoice>> {
    let mut tx = env.db.begin().await?;
    let mut recorded = [draft.clone()];
    invoices::record_payment_means(&mut tx, &mut recorded).await?;
    let [draft] = &recorded;
    let Some((id, number)) = invoices::finalize(&mut tx, draft)
        .await
        .context("finalizing invoice")?
    else {
        tx.rollback().await?;
        return Ok(None);
    };
    let msg = issued_message(draft, &number);
    events::record(
        &mut tx,
        draft.account.id.as_str(),
        draft.issued_at,
        TimelineKind::InvoiceIssued,
        Some(id),
        &msg,
    )
    .await?;
    outbox::enqueue(&mut tx, &issued_email(draft, id, &number)).await?;
    tx.commit().await?;
    Ok(Some(invoice_document::from_new(draft, Some((id, &number)))))
}
