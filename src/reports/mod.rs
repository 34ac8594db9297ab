//! `billrun report oss|vat` and `billrun export fec`: read-only over the store. Loads the
//! invoices, credit notes, payments, refunds and credit movements of a period (the SQL is here,
//! `SELECT`s only), hands them to the pure computations of `core::tax_returns` and `core::fec`,
//! and shapes what the CLI prints or writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::config::BadInput;
use crate::core::fec::{self, Chart, Event, EventKind, FecLine, Party, PayMethod};
use crate::core::money::format_minor;
use crate::core::period::Period;
use crate::core::tax_returns::{
    self, Corrected, OssReturn, Quarter, TaxCreditNote, TaxInvoice, VatReturn, day_start, rate_text,
};
use crate::core::vat::VatCase;
use crate::store::invoices::InvoiceStatus;
use crate::store::{Db, DbDecimal};
use crate::with_db;

// ---------------------------------------------------------------------------------------------
// Loading

/// An invoice as the tax returns read it.
#[derive(sqlx::FromRow)]
struct TaxRow {
    number: String,
    #[sqlx(try_from = "String")]
    status: InvoiceStatus,
    buyer_country: String,
    #[sqlx(try_from = "String")]
    tax_case: VatCase,
    tax_rate: DbDecimal,
    taxable: i64,
    tax_minor: i64,
}

/// The invoices issued in `[from, to)` (see `core::tax_returns` for why the issue date).
pub async fn tax_invoices(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<TaxInvoice>> {
    let rows: Vec<TaxRow> = with_db!(db, p => sqlx::query_as(
        "SELECT number, status, buyer_country, tax_case, tax_rate, subtotal_minor - discount_minor AS taxable, tax_minor
         FROM invoices WHERE issued_at >= $1 AND issued_at < $2 ORDER BY id")
        .bind(from).bind(to).fetch_all(p).await?);
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        // Every stored invoice was issued when it was finalized (billrun stores no drafts), so
        // each counts, whatever became of its collection.
        match r.status {
            InvoiceStatus::Open
            | InvoiceStatus::Pending
            | InvoiceStatus::Paid
            | InvoiceStatus::Unpaid
            | InvoiceStatus::CarriedForward
            // A voided invoice was issued all the same: its credit notes correct it in the
            // period they are issued in.
            | InvoiceStatus::Void => {}
        }
        out.push(TaxInvoice {
            case: r.tax_case,
            number: r.number,
            country: r.buyer_country,
            rate: r.tax_rate.0,
            taxable_minor: r.taxable,
            vat_minor: r.tax_minor,
        });
    }
    Ok(out)
}

/// A credit note as the tax returns read it: its own amounts, its invoice's country and date.
#[derive(sqlx::FromRow)]
struct TaxCreditRow {
    number: String,
    invoice_number: String,
    invoice_issued_at: DateTime<Utc>,
    buyer_country: String,
    #[sqlx(try_from = "String")]
    tax_case: VatCase,
    tax_rate: DbDecimal,
    subtotal_minor: i64,
    tax_minor: i64,
}

/// The credit notes issued in `[from, to)`, whatever the date of their invoice (article 272-1
/// of the CGI: the VAT is recovered in the period the credit note is issued in). Each keeps
/// its invoice's VAT case and rate (it copies them) and its invoice's buyer country.
pub async fn tax_credit_notes(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<Vec<TaxCreditNote>> {
    let rows: Vec<TaxCreditRow> = with_db!(db, p => sqlx::query_as(
        "SELECT c.number, i.number AS invoice_number, i.issued_at AS invoice_issued_at, i.buyer_country,
                c.tax_case, c.tax_rate, c.subtotal_minor, c.tax_minor
         FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id
         WHERE c.issued_at >= $1 AND c.issued_at < $2 ORDER BY c.id")
        .bind(from).bind(to).fetch_all(p).await?);
    Ok(rows
        .into_iter()
        .map(|r| TaxCreditNote {
            number: r.number,
            invoice_number: r.invoice_number,
            invoice_issued_at: r.invoice_issued_at,
            country: r.buyer_country,
            case: r.tax_case,
            rate: r.tax_rate.0,
            taxable_minor: r.subtotal_minor,
            vat_minor: r.tax_minor,
        })
        .collect())
}

pub async fn oss_return(db: &Db, quarter: Quarter) -> anyhow::Result<OssReturn> {
    let invoices = tax_invoices(db, quarter.start(), quarter.end()).await?;
    let notes = tax_credit_notes(db, quarter.start(), quarter.end()).await?;
    Ok(tax_returns::oss_return(quarter, &invoices, &notes)?)
}

pub async fn vat_return(db: &Db, period: Period) -> anyhow::Result<VatReturn> {
    let invoices = tax_invoices(db, period.start(), period.end()).await?;
    let notes = tax_credit_notes(db, period.start(), period.end()).await?;
    Ok(tax_returns::vat_return(period, &invoices, &notes)?)
}

/// The year's accounting events: invoices issued, payments settled, prepaid credit bought and
/// used, balances waived, credit notes issued, their refunds through Stripe (once succeeded)
/// and to the prepaid credit, each on its own date within the year.
pub async fn fec_events(db: &Db, year: i32) -> anyhow::Result<Vec<Event>> {
    let from = day_start(NaiveDate::from_ymd_opt(year, 1, 1).context("year")?);
    let to = day_start(NaiveDate::from_ymd_opt(year + 1, 1, 1).context("year")?);

    // The name of each auxiliary account: the buyer on its latest invoice (an account's own
    // name is stripped when it is deleted; its invoices keep it), else the account's.
    let names: Vec<(String, String, Option<String>)> = with_db!(db, p => sqlx::query_as(
        "SELECT a.id, COALESCE((SELECT i.buyer_name FROM invoices i WHERE i.account_id = a.id ORDER BY i.id DESC LIMIT 1), a.name),
                (SELECT i.buyer_company FROM invoices i WHERE i.account_id = a.id ORDER BY i.id DESC LIMIT 1)
         FROM accounts a")
        .fetch_all(p).await?);
    let names: HashMap<String, String> = names
        .into_iter()
        .map(|(id, name, company)| (id, company.filter(|c| !c.trim().is_empty()).unwrap_or(name)))
        .collect();
    let party = |account_id: &str| Party {
        account_id: account_id.to_string(),
        name: names.get(account_id).cloned().unwrap_or_default(),
    };

    let mut events = Vec::new();

    let links: Vec<(i64, i64)> = with_db!(db, p => sqlx::query_as(
        "SELECT to_invoice_id, from_invoice_id FROM balance_transfers WHERE to_invoice_id IS NOT NULL ORDER BY from_invoice_id")
        .fetch_all(p).await?);
    let mut brought: HashMap<i64, Vec<i64>> = HashMap::new();
    for (to_id, from_id) in links {
        brought.entry(to_id).or_default().push(from_id);
    }

    #[derive(sqlx::FromRow)]
    struct InvoiceRow {
        id: i64,
        number: String,
        account_id: String,
        issued_at: DateTime<Utc>,
        #[sqlx(try_from = "String")]
        tax_case: VatCase,
        subtotal_minor: i64,
        discount_minor: i64,
        tax_minor: i64,
        total_minor: i64,
    }
    let invoices: Vec<InvoiceRow> = with_db!(db, p => sqlx::query_as(
        "SELECT id, number, account_id, issued_at, tax_case, subtotal_minor, discount_minor, tax_minor, total_minor
         FROM invoices WHERE issued_at >= $1 AND issued_at < $2 ORDER BY id")
        .bind(from).bind(to).fetch_all(p).await?);
    for i in invoices {
        events.push(Event {
            at: i.issued_at,
            party: party(&i.account_id),
            tie: i.id,
            kind: EventKind::Invoice {
                invoice_id: i.id,
                case: i.tax_case,
                number: i.number,
                subtotal_minor: i.subtotal_minor,
                discount_minor: i.discount_minor,
                vat_minor: i.tax_minor,
                total_minor: i.total_minor,
                brought_forward_from: brought.remove(&i.id).unwrap_or_default(),
            },
        });
    }

    type PaymentRow = (
        i64,
        i64,
        String,
        String,
        String,
        i64,
        Option<String>,
        String,
        DateTime<Utc>,
    );
    let payments: Vec<PaymentRow> = with_db!(db, p => sqlx::query_as(
        "SELECT a.id, a.invoice_id, i.number, i.account_id, a.method, a.amount_minor, a.payment_intent_id,
                a.idempotency_key, a.settled_at
         FROM payment_attempts a JOIN invoices i ON i.id = a.invoice_id
         WHERE a.outcome = 'succeeded' AND a.amount_minor > 0 AND a.settled_at >= $1 AND a.settled_at < $2
         ORDER BY a.id")
        .bind(from).bind(to).fetch_all(p).await?);
    for (id, invoice_id, number, account, method, amount, intent, key, at) in payments {
        let method = match method.as_str() {
            "card" => PayMethod::Card,
            "sepa_debit" => PayMethod::SepaDebit,
            other => anyhow::bail!(
                "payment attempt {id} of invoice {number}: succeeded with method `{other}`"
            ),
        };
        events.push(Event {
            at,
            party: party(&account),
            tie: id,
            kind: EventKind::Payment {
                invoice_id,
                invoice_number: number,
                method,
                amount_minor: amount,
                reference: intent.unwrap_or(key),
            },
        });
    }

    type LedgerRow = (
        i64,
        String,
        DateTime<Utc>,
        String,
        i64,
        String,
        Option<i64>,
        Option<String>,
    );
    let ledger: Vec<LedgerRow> = with_db!(db, p => sqlx::query_as(
        "SELECT l.id, l.account_id, l.at, l.kind, l.amount_minor, l.reference, l.invoice_id, i.number
         FROM credit_ledger l LEFT JOIN invoices i ON i.id = l.invoice_id
         WHERE l.at >= $1 AND l.at < $2 ORDER BY l.id")
        .bind(from).bind(to).fetch_all(p).await?);
    for (id, account, at, kind, amount, reference, invoice_id, number) in ledger {
        let kind = match (kind.as_str(), invoice_id, number) {
            ("purchase", _, _) => EventKind::CreditPurchase {
                amount_minor: amount,
                reference,
            },
            ("applied", Some(invoice_id), Some(invoice_number)) => EventKind::CreditUse {
                invoice_id,
                invoice_number,
                amount_minor: -amount,
                reference,
            },
            // A credit note given back to the prepaid credit (`credit-note:<number>`), or a
            // failed gateway refund of it the operator gave there instead
            // (`credit-note:<number>:reroute:<refund id>`, on the day it was re-routed).
            ("refund", Some(invoice_id), Some(invoice_number)) => EventKind::CreditRefund {
                invoice_id,
                invoice_number,
                credit_note_number: reference
                    .strip_prefix("credit-note:")
                    .unwrap_or(&reference)
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                amount_minor: amount,
                reference,
            },
            (other, _, _) => {
                anyhow::bail!("credit ledger row {id}: `{other}` without its invoice")
            }
        };
        events.push(Event {
            at,
            party: party(&account),
            tie: id,
            kind,
        });
    }

    let waivers: Vec<(i64, String, String, i64, DateTime<Utc>)> = with_db!(db, p => sqlx::query_as(
        "SELECT t.from_invoice_id, i.number, t.account_id, t.amount_minor, t.waived_at
         FROM balance_transfers t JOIN invoices i ON i.id = t.from_invoice_id
         WHERE t.waived_at IS NOT NULL AND t.waived_at >= $1 AND t.waived_at < $2 ORDER BY t.from_invoice_id")
        .bind(from).bind(to).fetch_all(p).await?);
    for (invoice_id, number, account, amount, at) in waivers {
        events.push(Event {
            at,
            party: party(&account),
            tie: invoice_id,
            kind: EventKind::Waiver {
                invoice_id,
                invoice_number: number,
                amount_minor: amount,
            },
        });
    }

    #[derive(sqlx::FromRow)]
    struct CreditNoteRow {
        id: i64,
        number: String,
        invoice_id: i64,
        invoice_number: String,
        account_id: String,
        issued_at: DateTime<Utc>,
        #[sqlx(try_from = "String")]
        tax_case: VatCase,
        subtotal_minor: i64,
        deduction_minor: i64,
        invoice_discount_minor: i64,
        tax_minor: i64,
        total_minor: i64,
    }
    let notes: Vec<CreditNoteRow> = with_db!(db, p => sqlx::query_as(
        "SELECT c.id, c.number, c.invoice_id, i.number AS invoice_number, c.account_id, c.issued_at, c.tax_case,
                c.subtotal_minor,
                CAST(COALESCE((SELECT -SUM(l.amount_minor) FROM credit_note_lines l
                               WHERE l.credit_note_id = c.id AND l.kind = 'deduction'), 0) AS BIGINT) AS deduction_minor,
                i.discount_minor AS invoice_discount_minor, c.tax_minor, c.total_minor
         FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id
         WHERE c.issued_at >= $1 AND c.issued_at < $2 ORDER BY c.id")
        .bind(from).bind(to).fetch_all(p).await?);
    for c in notes {
        events.push(Event {
            at: c.issued_at,
            party: party(&c.account_id),
            tie: c.id,
            kind: EventKind::CreditNote {
                invoice_id: c.invoice_id,
                invoice_number: c.invoice_number,
                number: c.number,
                case: c.tax_case,
                subtotal_minor: c.subtotal_minor,
                deduction_minor: c.deduction_minor,
                invoice_discount_minor: c.invoice_discount_minor,
                vat_minor: c.tax_minor,
                total_minor: c.total_minor,
            },
        });
    }

    // Refunds through Stripe, booked once they succeeded, on the day they did (a refund asked,
    // pending or unknown has not moved money yet; a failed one never does).
    #[derive(sqlx::FromRow)]
    struct RefundRow {
        id: i64,
        invoice_id: i64,
        invoice_number: String,
        credit_note_number: String,
        account_id: String,
        method: String,
        amount_minor: i64,
        stripe_refund_id: Option<String>,
        idempotency_key: String,
        settled_at: DateTime<Utc>,
    }
    let refunds: Vec<RefundRow> = with_db!(db, p => sqlx::query_as(
        "SELECT r.id, c.invoice_id, i.number AS invoice_number, c.number AS credit_note_number, c.account_id,
                a.method, r.amount_minor, r.stripe_refund_id, r.idempotency_key, r.settled_at
         FROM refunds r JOIN credit_notes c ON c.id = r.credit_note_id
              JOIN invoices i ON i.id = c.invoice_id JOIN payment_attempts a ON a.id = r.attempt_id
         WHERE r.status = 'succeeded' AND r.settled_at >= $1 AND r.settled_at < $2 ORDER BY r.id")
        .bind(from).bind(to).fetch_all(p).await?);
    for r in refunds {
        let method = match r.method.as_str() {
            "card" => PayMethod::Card,
            "sepa_debit" => PayMethod::SepaDebit,
            other => anyhow::bail!(
                "refund {} of credit note {}: a payment with method `{other}`",
                r.id,
                r.credit_note_number
            ),
        };
        events.push(Event {
            at: r.settled_at,
            party: party(&r.account_id),
            tie: r.id,
            kind: EventKind::GatewayRefund {
                invoice_id: r.invoice_id,
                invoice_number: r.invoice_number,
                credit_note_number: r.credit_note_number,
                method,
                amount_minor: r.amount_minor,
                reference: r.stripe_refund_id.unwrap_or(r.idempotency_key),
            },
        });
    }
    Ok(events)
}

// ---------------------------------------------------------------------------------------------
// The chart of accounts

/// The chart built into billrun: the repository's `jobs/accounting.toml`.
pub const DEFAULT_CHART: &str = include_str!("../../jobs/accounting.toml");
pub const CHART_FILE: &str = "accounting.toml";

/// Parses a chart; an error names the file and line.
pub fn parse_chart(file: &str, text: &str) -> Result<Chart, BadInput> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().trim().to_string();
        match line {
            Some(l) => BadInput(format!("{file}:{l}: {msg}")),
            None => BadInput(format!("{file}: {msg}")),
        }
    })
}

/// The chart of accounts: `explicit` (`--accounting FILE`), else `accounting.toml` in the jobs
/// directory when it has one, else the built-in copy. It is not a job's file: the jobs
/// directory need not hold it. Returns the chart and where it came from.
pub fn load_chart(
    explicit: Option<&Path>,
    jobs_dir: Option<&Path>,
) -> Result<(Chart, String), BadInput> {
    let path: Option<PathBuf> = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => jobs_dir
            .map(|d| d.join(CHART_FILE))
            .or_else(|| Some(PathBuf::from("jobs").join(CHART_FILE)))
            .filter(|p| p.exists()),
    };
    match path {
        Some(p) => {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(&p)
                .map_err(|e| BadInput(format!("{name}: cannot read: {e}")))?;
            Ok((parse_chart(&name, &text)?, name))
        }
        None => {
            let name = format!("{CHART_FILE} (built-in)");
            Ok((parse_chart(&name, DEFAULT_CHART)?, name))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The FEC

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FecFormat {
    /// The FEC itself: tab-separated `.txt`.
    Fec,
    /// The same entries as CSV.
    Csv,
}

/// What `export fec` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct FecExport {
    pub path: PathBuf,
    pub entries: u64,
    pub lines: usize,
    pub debit: String,
    pub credit: String,
    pub chart: String,
}

/// The year's entries.
pub async fn fec_lines(db: &Db, chart: &Chart, year: i32) -> anyhow::Result<Vec<FecLine>> {
    let events = fec_events(db, year).await?;
    Ok(fec::entries(chart, &events)?)
}

/// Writes the year's FEC into `dir` as `<SIREN>FEC<YYYY1231>.txt` (or `.csv`).
pub async fn export_fec(
    db: &Db,
    chart: &Chart,
    chart_name: String,
    siren: &str,
    year: i32,
    dir: &Path,
    format: FecFormat,
) -> anyhow::Result<FecExport> {
    let lines = fec_lines(db, chart, year).await?;
    // The financial year is the calendar year: it closes on 31 December.
    let closing = NaiveDate::from_ymd_opt(year, 12, 31).context("year")?;
    let (ext, text) = match format {
        FecFormat::Fec => ("txt", fec::to_fec_text(&lines)),
        FecFormat::Csv => ("csv", fec::to_csv_text(&lines)?),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(fec::file_name(siren, closing, ext));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let debit: i64 = lines.iter().map(|l| l.debit_minor).sum();
    let credit: i64 = lines.iter().map(|l| l.credit_minor).sum();
    tracing::info!(
        year,
        path = %path.display(),
        entries = lines.last().map_or(0, |l| l.ecriture_num),
        lines = lines.len(),
        chart = %chart_name,
        "FEC written"
    );
    Ok(FecExport {
        path,
        entries: lines.last().map_or(0, |l| l.ecriture_num),
        lines: lines.len(),
        debit: format_minor(debit),
        credit: format_minor(credit),
        chart: chart_name,
    })
}

// ---------------------------------------------------------------------------------------------
// What the CLI prints

/// A box's amounts as the views print them: what the invoices charged, what the credit notes
/// took back (positive), what is declared.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CorrectedView {
    pub invoiced_taxable: String,
    pub invoiced_vat: String,
    pub credited_taxable: String,
    pub credited_vat: String,
    pub taxable: String,
    pub vat: String,
}

impl CorrectedView {
    pub fn of(c: &Corrected) -> CorrectedView {
        CorrectedView {
            invoiced_taxable: format_minor(c.invoiced.taxable_minor),
            invoiced_vat: format_minor(c.invoiced.vat_minor),
            credited_taxable: format_minor(c.credited.taxable_minor),
            credited_vat: format_minor(c.credited.vat_minor),
            taxable: format_minor(c.declared.taxable_minor),
            vat: format_minor(c.declared.vat_minor),
        }
    }

    /// The six amount cells of the tables: taxable invoiced, credited, declared; VAT the same.
    fn cells(&self) -> [String; 6] {
        [
            self.invoiced_taxable.clone(),
            self.credited_taxable.clone(),
            self.taxable.clone(),
            self.invoiced_vat.clone(),
            self.credited_vat.clone(),
            self.vat.clone(),
        ]
    }
}

/// The amount columns of both returns' tables.
const AMOUNT_COLUMNS: [&str; 6] = [
    "Invoiced",
    "Credit notes",
    "Taxable amount",
    "VAT invoiced",
    "VAT credit notes",
    "VAT",
];

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OssRowView {
    pub country: String,
    pub rate: String,
    #[serde(flatten)]
    pub amounts: CorrectedView,
}

/// A correction of an earlier quarter's return (negative amounts).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OssCorrectionView {
    pub country: String,
    /// The quarter corrected.
    pub period: String,
    pub taxable: String,
    pub vat: String,
    pub credit_notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OssCountryView {
    pub country: String,
    pub vat: String,
}

/// `report oss --format json`: `{quarter, countries: [{country, rate, invoiced_taxable,
/// invoiced_vat, credited_taxable, credited_vat, taxable, vat}], invoiced_…, credited_…,
/// taxable, vat, corrections: [{country, period, taxable, vat, credit_notes}],
/// corrections_taxable, corrections_vat, by_country: [{country, vat}], vat_due}`, amounts as
/// decimal strings in EUR.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OssView {
    pub quarter: String,
    pub countries: Vec<OssRowView>,
    /// The quarter's rows summed.
    #[serde(flatten)]
    pub total: CorrectedView,
    pub corrections: Vec<OssCorrectionView>,
    pub corrections_taxable: String,
    pub corrections_vat: String,
    pub by_country: Vec<OssCountryView>,
    pub vat_due: String,
}

impl OssView {
    pub fn of(r: &OssReturn) -> OssView {
        OssView {
            quarter: r.quarter.to_string(),
            countries: r
                .rows
                .iter()
                .map(|x| OssRowView {
                    country: x.country.clone(),
                    rate: rate_text(x.rate),
                    amounts: CorrectedView::of(&x.amounts),
                })
                .collect(),
            total: CorrectedView::of(&r.total),
            corrections: r
                .corrections
                .iter()
                .map(|c| OssCorrectionView {
                    country: c.country.clone(),
                    period: c.period.to_string(),
                    taxable: format_minor(c.taxable_minor),
                    vat: format_minor(c.vat_minor),
                    credit_notes: c.credit_notes.clone(),
                })
                .collect(),
            corrections_taxable: format_minor(r.corrections_taxable_minor),
            corrections_vat: format_minor(r.corrections_vat_minor),
            by_country: r
                .by_country
                .iter()
                .map(|c| OssCountryView {
                    country: c.country.clone(),
                    vat: format_minor(c.vat_minor),
                })
                .collect(),
            vat_due: format_minor(r.vat_due_minor),
        }
    }

    pub fn table(&self) -> String {
        let mut rows: Vec<Vec<String>> = self
            .countries
            .iter()
            .map(|c| {
                let mut row = vec![c.country.clone(), format!("{}%", c.rate)];
                row.extend(c.amounts.cells());
                row
            })
            .collect();
        let mut total = vec!["Total".to_string(), String::new()];
        total.extend(self.total.cells());
        rows.push(total);
        let mut header = vec!["Member state", "Rate"];
        header.extend(AMOUNT_COLUMNS);
        let mut out = format!(
            "OSS return {} (EU consumers; article 369 sexies of Directive 2006/112/EC, article 298 sexdecies G of the CGI), EUR\n{}",
            self.quarter,
            crate::views::table(&header, &rows)
        );
        if !self.corrections.is_empty() {
            let rows: Vec<Vec<String>> = self
                .corrections
                .iter()
                .map(|c| {
                    vec![
                        c.country.clone(),
                        c.period.clone(),
                        c.taxable.clone(),
                        c.vat.clone(),
                        c.credit_notes.join(" "),
                    ]
                })
                .collect();
            out.push_str(&format!(
                "\nCorrections of earlier returns (credit notes of the quarter on invoices of an earlier one; article 61 of Regulation (EU) 282/2011), EUR\n{}",
                crate::views::table(
                    &[
                        "Member state",
                        "Period corrected",
                        "Taxable amount",
                        "VAT",
                        "Credit notes"
                    ],
                    &rows
                )
            ));
            let mut rows: Vec<Vec<String>> = self
                .by_country
                .iter()
                .map(|c| vec![c.country.clone(), c.vat.clone()])
                .collect();
            rows.push(vec!["Total due".into(), self.vat_due.clone()]);
            out.push_str(&format!(
                "\nVAT due per member state, the quarter and its corrections (negative: to be refunded), EUR\n{}",
                crate::views::table(&["Member state", "VAT"], &rows)
            ));
        }
        out
    }

    /// The CSV: one line per member state and rate, as typed into the OSS portal, then one per
    /// correction (member state and the quarter it corrects, `corrects_quarter`; no rate).
    pub fn csv(&self) -> anyhow::Result<String> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record([
            "quarter",
            "country",
            "rate",
            "taxable",
            "vat",
            "invoiced_taxable",
            "invoiced_vat",
            "credited_taxable",
            "credited_vat",
            "corrects_quarter",
        ])?;
        for c in &self.countries {
            let a = &c.amounts;
            w.write_record([
                &self.quarter,
                &c.country,
                &c.rate,
                &a.taxable,
                &a.vat,
                &a.invoiced_taxable,
                &a.invoiced_vat,
                &a.credited_taxable,
                &a.credited_vat,
                "",
            ])?;
        }
        for c in &self.corrections {
            w.write_record([
                &self.quarter,
                &c.country,
                "",
                &c.taxable,
                &c.vat,
                "",
                "",
                "",
                "",
                &c.period,
            ])?;
        }
        Ok(String::from_utf8(
            w.into_inner().map_err(|e| e.into_error())?,
        )?)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RateView {
    pub rate: String,
    #[serde(flatten)]
    pub amounts: CorrectedView,
}

/// A box without VAT (E2): its taxable amounts only.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TaxableView {
    pub invoiced_taxable: String,
    pub credited_taxable: String,
    pub taxable: String,
}

impl TaxableView {
    fn of(c: &Corrected) -> TaxableView {
        TaxableView {
            invoiced_taxable: format_minor(c.invoiced.taxable_minor),
            credited_taxable: format_minor(c.credited.taxable_minor),
            taxable: format_minor(c.declared.taxable_minor),
        }
    }
}

/// A credit note the month counts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VatCreditNoteView {
    pub number: String,
    pub invoice: String,
    pub case: &'static str,
    pub country: String,
    pub rate: String,
    pub taxable: String,
    pub vat: String,
}

/// `report vat --format json`: `{period, domestic: [{rate, invoiced_taxable, invoiced_vat,
/// credited_taxable, credited_vat, taxable, vat}], eu_consumers: {the same but rate},
/// eu_reverse_charge: {invoiced_taxable, credited_taxable, taxable}, outside_eu: {the same},
/// vat_invoiced, vat_credited, vat_collected, credit_notes: [{number, invoice, case, country,
/// rate, taxable, vat}]}`; `taxable`/`vat`/`vat_collected` are what is declared.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VatView {
    pub period: String,
    pub domestic: Vec<RateView>,
    pub eu_consumers: CorrectedView,
    pub eu_reverse_charge: TaxableView,
    pub outside_eu: TaxableView,
    pub vat_invoiced: String,
    pub vat_credited: String,
    pub vat_collected: String,
    pub credit_notes: Vec<VatCreditNoteView>,
}

impl VatView {
    pub fn of(r: &VatReturn) -> VatView {
        VatView {
            period: r.period.to_string(),
            domestic: r
                .domestic
                .iter()
                .map(|d| RateView {
                    rate: rate_text(d.rate),
                    amounts: CorrectedView::of(&d.amounts),
                })
                .collect(),
            eu_consumers: CorrectedView::of(&r.eu_consumers),
            eu_reverse_charge: TaxableView::of(&r.eu_reverse_charge),
            outside_eu: TaxableView::of(&r.outside_eu),
            vat_invoiced: format_minor(r.vat_collected.invoiced.vat_minor),
            vat_credited: format_minor(r.vat_collected.credited.vat_minor),
            vat_collected: format_minor(r.vat_collected.declared.vat_minor),
            credit_notes: r
                .credit_notes
                .iter()
                .map(|c| VatCreditNoteView {
                    number: c.number.clone(),
                    invoice: c.invoice_number.clone(),
                    case: c.case.as_str(),
                    country: c.country.clone(),
                    rate: rate_text(c.rate),
                    taxable: format_minor(c.taxable_minor),
                    vat: format_minor(c.vat_minor),
                })
                .collect(),
        }
    }

    pub fn table(&self) -> String {
        let row = |label: String, cells: [String; 6]| {
            let mut r = vec![label];
            r.extend(cells);
            r
        };
        let taxable_only = |label: &str, t: &TaxableView| {
            vec![
                label.to_string(),
                t.invoiced_taxable.clone(),
                t.credited_taxable.clone(),
                t.taxable.clone(),
                String::new(),
                String::new(),
                String::new(),
            ]
        };
        let mut rows: Vec<Vec<String>> = self
            .domestic
            .iter()
            .map(|d| {
                row(
                    format!("Domestic sales at {}% (A1, line 08)", d.rate),
                    d.amounts.cells(),
                )
            })
            .collect();
        rows.push(row(
            "EU consumers, OSS (E2; VAT on the OSS return)".into(),
            self.eu_consumers.cells(),
        ));
        rows.push(taxable_only(
            "EU reverse charge (E2)",
            &self.eu_reverse_charge,
        ));
        rows.push(taxable_only("Outside the EU (E2)", &self.outside_eu));
        rows.push(vec![
            "VAT collected (line 16)".into(),
            String::new(),
            String::new(),
            String::new(),
            self.vat_invoiced.clone(),
            self.vat_credited.clone(),
            self.vat_collected.clone(),
        ]);
        let mut header = vec![""];
        header.extend(AMOUNT_COLUMNS);
        let mut out = format!(
            "VAT return {} (form 3310-CA3; invoices and credit notes issued in the month, credit notes deducted: article 272-1 of the CGI), EUR\n{}",
            self.period,
            crate::views::table(&header, &rows)
        );
        if !self.credit_notes.is_empty() {
            let rows: Vec<Vec<String>> = self
                .credit_notes
                .iter()
                .map(|c| {
                    vec![
                        c.number.clone(),
                        c.invoice.clone(),
                        c.case.to_string(),
                        c.country.clone(),
                        format!("{}%", c.rate),
                        c.taxable.clone(),
                        c.vat.clone(),
                    ]
                })
                .collect();
            out.push_str(&format!(
                "\nCredit notes of the month, EUR\n{}",
                crate::views::table(
                    &[
                        "Credit note",
                        "Invoice",
                        "VAT case",
                        "Country",
                        "Rate",
                        "Taxable amount",
                        "VAT"
                    ],
                    &rows
                )
            ));
        }
        out
    }
}
