//! `billrun report oss|vat`: the invoices and credit notes of a period (the SQL, `SELECT`s
//! only), handed to `core::tax_returns`, and the views the CLI prints (tables, JSON, CSV).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::money::format_minor;
use crate::core::period::Period;
use crate::core::tax_returns::{
    self, Corrected, OssReturn, Quarter, TaxCreditNote, TaxInvoice, VatReturn, rate_text,
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
