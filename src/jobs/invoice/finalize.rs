//! Finalizing the invoice job's drafts: numbered from the gapless yearly sequence and stored
//! with their timeline events and emails, in groups (one transaction each) while the next
//! group is computed, one by one when a group cannot go through together. Their PDFs come
//! after the commit (`jobs::documents`).

use anyhow::Context;
use tracing::{debug, info, warn};

use crate::core::document::Invoice;
use crate::core::email::EmailKind;
use crate::core::ids::InvoiceId;
use crate::core::timeline::TimelineKind;
use crate::jobs::{Count, Env, Failure, JobReport};
use crate::store::events;
use crate::store::invoice_document;
use crate::store::invoices::{self, NewInvoice};
use crate::store::outbox::{self, NewEmail};

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
pub(super) struct Finalizer {
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
    pub(super) fn new(env: &Env, views: bool) -> Finalizer {
        Finalizer {
            env: std::sync::Arc::new(env.clone()),
            pending: Vec::with_capacity(GROUP),
            in_flight: None,
            views,
        }
    }

    pub(super) async fn push(&mut self, draft: NewInvoice, report: &mut JobReport) {
        self.pending.push(draft);
        if self.pending.len() >= GROUP {
            self.send(report).await;
        }
    }

    /// Starts finalizing what is pending, once the group in flight is settled. A group that
    /// went through is reported after the next one has started: writing is the step's
    /// critical path, and the report's views (70 ms a run at 10k invoices) need not hold it.
    pub(super) async fn send(&mut self, report: &mut JobReport) {
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
    pub(super) async fn flush(&mut self, report: &mut JobReport) {
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
        kind: EmailKind::InvoiceIssued,
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
        crate::jobs::documents::invoice_pdf(env, id.0).await?;
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
