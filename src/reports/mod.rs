//! `billrun report oss|vat` and `billrun export fec`: read-only over the store. Loads the
//! invoices, payments and credit movements of a period (the SQL is here, `SELECT`s only), hands
//! them to the pure computations of `core::tax_returns` and `core::fec`, and shapes what the
//! CLI prints or writes.

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
    self, OssReturn, Quarter, TaxInvoice, VatReturn, day_start, rate_text,
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

pub async fn oss_return(db: &Db, quarter: Quarter) -> anyhow::Result<OssReturn> {
    let invoices = tax_invoices(db, quarter.start(), quarter.end()).await?;
    Ok(tax_returns::oss_return(quarter, &invoices)?)
}

pub async fn vat_return(db: &Db, period: Period) -> anyhow::Result<VatReturn> {
    let invoices = tax_invoices(db, period.start(), period.end()).await?;
    Ok(tax_returns::vat_return(period, &invoices)?)
}

/// The year's accounting events: invoices issued, payments settled, prepaid credit bought and
/// used, balances waived, each on its own date within the year.
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

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OssRowView {
    pub country: String,
    pub rate: String,
    pub taxable: String,
    pub vat: String,
}

/// `report oss --format json`: `{quarter, countries: [{country, rate, taxable, vat}], taxable,
/// vat}`, amounts as decimal strings in EUR.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OssView {
    pub quarter: String,
    pub countries: Vec<OssRowView>,
    pub taxable: String,
    pub vat: String,
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
                    taxable: format_minor(x.taxable_minor),
                    vat: format_minor(x.vat_minor),
                })
                .collect(),
            taxable: format_minor(r.taxable_minor),
            vat: format_minor(r.vat_minor),
        }
    }

    pub fn table(&self) -> String {
        let mut rows: Vec<Vec<String>> = self
            .countries
            .iter()
            .map(|c| {
                vec![
                    c.country.clone(),
                    format!("{}%", c.rate),
                    c.taxable.clone(),
                    c.vat.clone(),
                ]
            })
            .collect();
        rows.push(vec![
            "Total".into(),
            String::new(),
            self.taxable.clone(),
            self.vat.clone(),
        ]);
        format!(
            "OSS return {} (EU consumers; article 369 sexies of Directive 2006/112/EC, article 298 sexdecies G of the CGI), EUR\n{}",
            self.quarter,
            crate::views::table(&["Member state", "Rate", "Taxable amount", "VAT"], &rows)
        )
    }

    /// The CSV: one line per member state and rate, as typed into the OSS portal.
    pub fn csv(&self) -> anyhow::Result<String> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(["quarter", "country", "rate", "taxable", "vat"])?;
        for c in &self.countries {
            w.write_record([&self.quarter, &c.country, &c.rate, &c.taxable, &c.vat])?;
        }
        Ok(String::from_utf8(
            w.into_inner().map_err(|e| e.into_error())?,
        )?)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RateView {
    pub rate: String,
    pub taxable: String,
    pub vat: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TaxableVatView {
    pub taxable: String,
    pub vat: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TaxableView {
    pub taxable: String,
}

/// `report vat --format json`: `{period, domestic: [{rate, taxable, vat}], eu_consumers:
/// {taxable, vat}, eu_reverse_charge: {taxable}, outside_eu: {taxable}, vat_collected}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VatView {
    pub period: String,
    pub domestic: Vec<RateView>,
    pub eu_consumers: TaxableVatView,
    pub eu_reverse_charge: TaxableView,
    pub outside_eu: TaxableView,
    pub vat_collected: String,
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
                    taxable: format_minor(d.taxable_minor),
                    vat: format_minor(d.vat_minor),
                })
                .collect(),
            eu_consumers: TaxableVatView {
                taxable: format_minor(r.eu_consumers_taxable_minor),
                vat: format_minor(r.eu_consumers_vat_minor),
            },
            eu_reverse_charge: TaxableView {
                taxable: format_minor(r.eu_reverse_charge_taxable_minor),
            },
            outside_eu: TaxableView {
                taxable: format_minor(r.outside_eu_taxable_minor),
            },
            vat_collected: format_minor(r.vat_collected_minor),
        }
    }

    pub fn table(&self) -> String {
        let mut rows: Vec<Vec<String>> = self
            .domestic
            .iter()
            .map(|d| {
                vec![
                    format!("Domestic sales at {}% (A1, line 08)", d.rate),
                    d.taxable.clone(),
                    d.vat.clone(),
                ]
            })
            .collect();
        rows.push(vec![
            "EU consumers, OSS (E2; VAT on the OSS return)".into(),
            self.eu_consumers.taxable.clone(),
            self.eu_consumers.vat.clone(),
        ]);
        rows.push(vec![
            "EU reverse charge (E2)".into(),
            self.eu_reverse_charge.taxable.clone(),
            String::new(),
        ]);
        rows.push(vec![
            "Outside the EU (E2)".into(),
            self.outside_eu.taxable.clone(),
            String::new(),
        ]);
        rows.push(vec![
            "VAT collected (line 16)".into(),
            String::new(),
            self.vat_collected.clone(),
        ]);
        format!(
            "VAT return {} (form 3310-CA3; invoices issued in the month), EUR\n{}",
            self.period,
            crate::views::table(&["", "Taxable amount", "VAT"], &rows)
        )
    }
}
