//! `billrun export fec`: the year's accounting events read from the store (the SQL, `SELECT`s
//! only), the chart of accounts (`jobs/accounting.toml`), handed to `core::fec`, and the file
//! written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::config::BadInput;
use crate::core::fec::{self, Chart, Event, EventKind, FecLine, Party, PayMethod};
use crate::core::money::format_minor;
use crate::core::tax_returns::day_start;
use crate::core::vat::VatCase;
use crate::store::Db;
use crate::with_db;

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
    crate::config::from_toml(file, text)
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
