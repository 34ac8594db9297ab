//! The documents step: renders and stores the PDF (Factur-X) of every issued invoice that has
//! none. `jobs::run` chains it after the invoice job, over the same accounts; the deliver job
//! renders an invoice's PDF itself when its email is due first ([`invoice_pdf`]).
//!
//! The invoice job commits its invoices without their PDFs. Rendering inside the finalizing
//! transaction held the year's invoice-number counter locked while a group of PDFs rendered,
//! so scale-out processes queued on each other's rendering; the bench could only time the
//! billing apart with a switch the product never used. Now:
//!
//! - a PDF is rendered from the invoice as stored (`Invoice::as_issued`): the same bytes
//!   whoever renders it, whenever (a test compares them with the invoice job's own views);
//! - stores keep the first (`ON CONFLICT DO NOTHING`), so two renderers never conflict;
//! - a process that dies between an invoice's commit and its PDF leaves the invoice to the
//!   next run's documents step, and its email waits for nothing: the deliver job renders the
//!   PDF before it sends (no invoice email ever leaves without it);
//! - a dry-run writes nothing and says how many issued invoices have no PDF yet.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{Count, Env, Failure, JobReport, RunOptions};
use crate::config::SellerSettings;
use crate::core::document::Invoice;
use crate::store::invoices::{self, InvoiceRow};
use crate::store::{Db, documents, invoice_document};

/// Invoices read, rendered and stored per page: one page is stored while the next renders
/// and the one after is read.
const PAGE: i64 = 256;

/// What the step did, or in a dry-run would do.
#[derive(Debug, Default)]
pub struct Rendered {
    /// PDFs rendered and stored (in a dry-run: issued invoices without one, to render).
    pub pdfs: u64,
    /// Invoices whose PDF could not be rendered: they stay without one, and the step tries
    /// again on its next run.
    pub failures: Vec<Failure>,
    /// Set when the run stopped for a shutdown before every page was done.
    pub stopped: bool,
}

impl Rendered {
    /// Adds the step's outcome to the invoice job's report: its failures; a note when it
    /// rendered PDFs of invoices issued before this run (a run stopped before its documents
    /// step) or, in a dry-run, when issued invoices have no PDF yet. A normal run adds nothing:
    /// its PDFs are those of the invoices it counts.
    pub fn add_to(self, report: &mut JobReport) {
        let issued = report.counts.get(&Count::Invoiced).copied().unwrap_or(0);
        if report.dry_run {
            if self.pdfs > 0 {
                report.notes.push(format!(
                    "{} issued invoice(s) have no PDF yet (a run stopped before rendering them): a run renders them",
                    self.pdfs
                ));
            }
        } else if self.pdfs > issued {
            report.notes.push(format!(
                "rendered the PDFs of {} invoice(s) issued before this run (a run stopped before rendering them)",
                self.pdfs - issued
            ));
        }
        report.failures.extend(self.failures);
        if self.stopped {
            report.stop_early();
        }
    }
}

/// A PDF that could not be rendered from the invoice as stored: the same input gives the same
/// error, so a retry does not heal it (the deliver job fails the email with it, naming the
/// invoice).
#[derive(Debug, thiserror::Error)]
#[error("cannot render the PDF of invoice {number}")]
pub struct CannotRender {
    pub number: String,
    #[source]
    pub source: anyhow::Error,
}

/// The accounts a run covers, as ranges of ids: a scale-out range, each account named, or all.
fn scopes(opts: &RunOptions) -> Vec<Option<(String, String)>> {
    if let Some(range) = &opts.range {
        vec![Some(range.clone())]
    } else if !opts.accounts.is_empty() {
        opts.accounts
            .iter()
            .map(|a| Some((a.as_str().to_string(), a.as_str().to_string())))
            .collect()
    } else {
        vec![None]
    }
}

/// Renders and stores the PDF of every issued invoice of the run's accounts that has none, a
/// page at a time on every core. A dry-run counts them.
pub async fn run(env: &Env, opts: &RunOptions) -> anyhow::Result<Rendered> {
    let mut out = Rendered::default();
    for scope in scopes(opts) {
        let scope = scope.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        if opts.dry_run {
            out.pdfs += documents::count_missing(&env.db, scope).await?;
        } else {
            render_missing(env, opts, scope, &mut out).await?;
        }
    }
    Ok(out)
}

/// One scope's pages: page N+1 is read while page N renders, page N is stored while page N+1
/// renders.
async fn render_missing(
    env: &Env,
    opts: &RunOptions,
    scope: Option<(&str, &str)>,
    out: &mut Rendered,
) -> anyhow::Result<()> {
    let seller = Arc::new(env.jobs.invoice.settings.seller.clone());
    let mut storing: Option<tokio::task::JoinHandle<anyhow::Result<u64>>> = None;
    let mut page = read_page(&env.db, scope, 0).await?;
    while let Some(after) = page.0.last().map(|r| r.id) {
        if opts.stop.requested() {
            out.stopped = true;
            break;
        }
        let (rows, work) = page;
        let seller = seller.clone();
        let render = tokio::task::spawn_blocking(move || render_each(&work, &seller));
        let next = read_page(&env.db, scope, after).await;
        let pdfs = render.await?;
        if let Some(stored) = storing.take() {
            out.pdfs += stored.await??;
        }
        let mut docs: Vec<(i64, Vec<u8>, DateTime<Utc>)> = Vec::with_capacity(rows.len());
        for (row, pdf) in rows.iter().zip(pdfs) {
            match pdf {
                Ok(pdf) => docs.push((row.id, pdf, row.issued_at)),
                Err(e) => {
                    let e = CannotRender {
                        number: row.number.clone(),
                        source: e,
                    };
                    warn!(invoice.id = row.id, account.id = %row.account_id, error = %crate::error_text::chain(&e.source), "cannot render an invoice PDF");
                    out.failures.push(Failure {
                        item: format!("invoice {}", row.number),
                        error: format!("{e}: {}", crate::error_text::chain(&e.source)),
                    });
                }
            }
        }
        let db = env.db.clone();
        storing = Some(tokio::spawn(async move { store(&db, &docs).await }));
        page = next?;
    }
    if let Some(stored) = storing {
        out.pdfs += stored.await??;
    }
    if out.pdfs > 0 {
        info!(pdfs = out.pdfs, "invoice PDFs rendered");
    }
    Ok(())
}

/// A page of issued invoices without their PDF, after invoice id `after`, and what they are
/// rendered from.
async fn read_page(
    db: &Db,
    scope: Option<(&str, &str)>,
    after: i64,
) -> anyhow::Result<(Vec<InvoiceRow>, Vec<Invoice>)> {
    let rows = documents::missing(db, scope, after, PAGE).await?;
    let work = invoice_document::load_issued_page(db, &rows).await?;
    Ok((rows, work))
}

/// Stores rendered PDFs in one transaction; how many were new.
async fn store(db: &Db, docs: &[(i64, Vec<u8>, DateTime<Utc>)]) -> anyhow::Result<u64> {
    let docs: Vec<(i64, &[u8], DateTime<Utc>)> = docs
        .iter()
        .map(|(id, pdf, at)| (*id, pdf.as_slice(), *at))
        .collect();
    let mut tx = db.begin().await?;
    let stored = documents::save_many(&mut tx, &docs).await?;
    tx.commit().await?;
    Ok(stored)
}

/// An invoice's stored PDF and number, rendering and storing the PDF first when it has none
/// (the process that issued it died before its documents step): what the deliver job
/// attaches. `None` when there is no such invoice; a [`CannotRender`] in the error's chain
/// when its PDF cannot be made.
pub async fn invoice_pdf(env: &Env, invoice_id: i64) -> anyhow::Result<Option<(Vec<u8>, String)>> {
    if let Some(found) = documents::pdf_with_number(&env.db, invoice_id).await? {
        return Ok(Some(found));
    }
    let Some(row) = invoices::get(&env.db, invoice_id).await? else {
        return Ok(None);
    };
    let work = invoice_document::load_issued_page(&env.db, std::slice::from_ref(&row)).await?;
    let seller = env.jobs.invoice.settings.seller.clone();
    let pdf = tokio::task::spawn_blocking(move || render_each(&work, &seller))
        .await?
        .pop()
        .expect("one invoice, one PDF")
        .map_err(|source| CannotRender {
            number: row.number.clone(),
            source,
        })?;
    store(&env.db, &[(row.id, pdf, row.issued_at)]).await?;
    info!(invoice.id = row.id, account.id = %row.account_id, "invoice PDF rendered before its email");
    // What is stored: this rendering, or an identical one another process stored first.
    documents::pdf_with_number(&env.db, invoice_id).await
}

/// Renders PDFs on every core the process may use, in the order given, each invoice as issued;
/// one invoice's error does not stop the others.
pub fn render_each(work: &[Invoice], seller: &SellerSettings) -> Vec<anyhow::Result<Vec<u8>>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = work.len().div_ceil(cores).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = work
            .chunks(per_thread)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|inv| crate::documents::invoice_pdf::render(inv, seller))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(work.len());
        for h in handles {
            out.extend(h.join().expect("a PDF rendering thread panicked"));
        }
        out
    })
}
