//! What the CLI shows: invoices and job reports, as tables and as JSON (amounts are decimal
//! strings such as `"14.81"`).

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::core::document::{Attempt, CarriedTo, CreditNote, Invoice};
use crate::core::money::{Money, format_minor};
use crate::store::Db;
use crate::store::collection::AttemptRow;
use crate::store::invoice_document;
use crate::store::invoices;

/// How a command prints what it shows: a table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LineView {
    pub description: String,
    pub app_id: Option<String>,
    pub kind: String,
    pub item: String,
    pub quantity_hours: String,
    pub unit_price: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BuyerView {
    pub name: String,
    pub company: Option<String>,
    pub address: String,
    pub country: String,
    pub vat_number: Option<String>,
    /// The VIES consultation number (`requestIdentifier`) the invoice's reverse charge rests on
    /// (article 18 of Implementing Regulation (EU) 282/2011); reverse-charge invoices only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vies_consultation: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvoiceView {
    /// `None` in a dry-run: ids and numbers are given at finalization only.
    pub id: Option<i64>,
    pub number: Option<String>,
    pub account_id: String,
    pub period: String,
    pub status: String,
    pub currency: String,
    pub language: String,
    pub buyer: BuyerView,
    pub lines: Vec<LineView>,
    pub subtotal: String,
    pub discount: String,
    pub tax_case: String,
    pub tax_mention: Option<String>,
    pub tax_rate: String,
    pub tax: String,
    pub total: String,
    /// Referral rewards used on this invoice.
    pub discounts: Vec<DiscountView>,
    /// Unpaid small balances of earlier invoices, included in `amount_due`.
    pub balance_brought_forward: String,
    pub brought_forward_from: Vec<TransferView>,
    pub credit_applied: String,
    pub amount_paid: String,
    /// Left below Stripe's minimum and moved to the account's next invoice.
    pub carried_forward: String,
    pub carried_forward_to: Option<String>,
    pub amount_due: String,
    pub issued_at: DateTime<Utc>,
    pub due_at: NaiveDate,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptView>,
    /// What its credit notes credited in all, VAT included.
    pub amount_credited: String,
    pub credit_notes: Vec<CreditNoteRefView>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreditNoteRefView {
    pub number: String,
    pub issued_at: DateTime<Utc>,
    pub total: String,
    pub reason: String,
}

/// The JSON of a credit note (`invoices credit-note --format json`, `credit-notes show`):
/// amounts as decimal strings, positive (what is credited).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreditNoteView {
    /// `None` in a dry-run: the number is given when it is issued.
    pub number: Option<String>,
    pub invoice_number: String,
    pub invoice_issued_at: DateTime<Utc>,
    pub account_id: String,
    pub issued_at: DateTime<Utc>,
    pub reason: String,
    pub currency: String,
    pub lines: Vec<CreditNoteLineView>,
    pub subtotal: String,
    pub tax_case: String,
    pub tax_mention: Option<String>,
    pub tax_rate: String,
    pub tax: String,
    pub total: String,
    pub refund: RefundView,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreditNoteLineView {
    pub description: String,
    pub kind: String,
    /// The invoice line credited, from 1.
    pub invoice_line: Option<u32>,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefundView {
    /// As asked: auto, card, credit, none.
    pub method: String,
    /// What is given back (to the payment method, the credit, or outside billrun).
    pub amount: String,
    pub status: String,
    /// What the invoice stopped owing (not a refund).
    pub amount_due_reduced: String,
    pub to_payment_method: String,
    pub to_credit: String,
    pub outside: String,
}

impl CreditNoteView {
    pub fn of(c: &CreditNote) -> CreditNoteView {
        CreditNoteView {
            number: c.number.clone(),
            invoice_number: c.invoice_number.clone(),
            invoice_issued_at: c.invoice_issued_at,
            account_id: c.account_id.to_string(),
            issued_at: c.issued_at,
            reason: c.reason.clone(),
            currency: c.currency.code().to_string(),
            lines: c
                .lines
                .iter()
                .map(|l| CreditNoteLineView {
                    description: l.description.clone(),
                    kind: l.kind.as_str().to_string(),
                    invoice_line: l.invoice_line,
                    amount: amount(l.amount),
                })
                .collect(),
            subtotal: amount(c.subtotal),
            tax_case: c.vat_case.as_str().to_string(),
            tax_mention: c.tax_mention().map(str::to_string),
            tax_rate: dec(c.tax_rate),
            tax: amount(c.tax),
            total: amount(c.total),
            refund: RefundView {
                method: c.refund.method.as_str().to_string(),
                amount: amount(c.refund.amount()),
                status: c.refund.status.as_str().to_string(),
                amount_due_reduced: amount(c.refund.reduce_due),
                to_payment_method: amount(c.refund.to_payment_method),
                to_credit: amount(c.refund.to_credit),
                outside: amount(c.refund.outside),
            },
        }
    }
}

/// A credit note as text (`credit-notes show`, `invoices credit-note`).
pub fn credit_note_text(c: &CreditNote) -> String {
    let cur = c.currency.code();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Credit note {}  for invoice {} of {}",
        c.number
            .as_deref()
            .unwrap_or("(dry-run: numbered when issued)"),
        c.invoice_number,
        c.invoice_issued_at.format("%Y-%m-%d")
    );
    let _ = writeln!(
        s,
        "Account {}  issued {}  reason: {}",
        c.account_id,
        c.issued_at.format("%Y-%m-%d"),
        c.reason
    );
    s.push('\n');
    let rows: Vec<Vec<String>> = c
        .lines
        .iter()
        .map(|l| {
            vec![
                l.invoice_line.map(|n| n.to_string()).unwrap_or_default(),
                l.description.clone(),
                amount(l.amount),
            ]
        })
        .collect();
    s.push_str(&table(&["LINE", "DESCRIPTION", "AMOUNT"], &rows));
    s.push('\n');
    let _ = writeln!(s, "Subtotal        {:>10} {cur}", amount(c.subtotal));
    let _ = writeln!(
        s,
        "VAT ({:>5}%)    {:>10} {cur}",
        dec(c.tax_rate),
        amount(c.tax)
    );
    let _ = writeln!(s, "Total credited  {:>10} {cur}", amount(c.total));
    let r = &c.refund;
    let _ = writeln!(s, "Due reduced     {:>10} {cur}", amount(r.reduce_due));
    let _ = writeln!(
        s,
        "Refunded        {:>10} {cur} ({}: {} to the payment method, {} to credit, {} outside billrun; {})",
        amount(r.amount()),
        r.method.as_str(),
        amount(r.to_payment_method),
        amount(r.to_credit),
        amount(r.outside),
        r.status
    );
    if let Some(m) = c.tax_mention() {
        let _ = writeln!(s, "\n{m}");
    }
    s
}

/// Credit notes as a table (`credit-notes list`).
pub fn credit_note_table(notes: &[CreditNote]) -> String {
    let rows: Vec<Vec<String>> = notes
        .iter()
        .map(|c| {
            vec![
                c.number.clone().unwrap_or_default(),
                c.invoice_number.clone(),
                c.account_id.to_string(),
                c.issued_at.format("%Y-%m-%d").to_string(),
                amount(c.total),
                c.refund.status.as_str().to_string(),
                c.reason.clone(),
            ]
        })
        .collect();
    table(
        &[
            "NUMBER", "INVOICE", "ACCOUNT", "ISSUED", "TOTAL", "REFUND", "REASON",
        ],
        &rows,
    )
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiscountView {
    pub description: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TransferView {
    pub invoice_number: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttemptView {
    pub number: i32,
    pub trigger: String,
    pub method: String,
    pub gateway: String,
    pub amount: String,
    pub payment_intent: Option<String>,
    pub outcome: String,
    pub decline_code: Option<String>,
    pub message: Option<String>,
    pub at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl AttemptView {
    pub fn of(a: &Attempt) -> AttemptView {
        AttemptView {
            number: a.number,
            trigger: a.trigger.as_str().to_string(),
            method: a.method.clone(),
            gateway: a.gateway.clone(),
            amount: amount(a.amount),
            payment_intent: a.payment_intent.clone(),
            outcome: a.outcome.as_str().to_string(),
            decline_code: a.decline_code.clone(),
            message: a.message.clone(),
            at: a.at,
            settled_at: a.settled_at,
        }
    }

    pub fn from_row(a: &AttemptRow) -> AttemptView {
        AttemptView::of(&invoice_document::attempt_of(a))
    }
}

/// Writes a JSON array one item at a time, byte for byte as `serde_json::to_string_pretty`
/// writes the whole array (then a newline, as `println!` would): a long list is never held in
/// memory, as values or as text.
pub struct JsonArrayWriter<W: std::io::Write> {
    out: W,
    /// Each line of an item is indented by this (the array's own indentation plus one level).
    indent: String,
    items: usize,
    buf: Vec<u8>,
}

impl<W: std::io::Write> JsonArrayWriter<W> {
    /// An array at the top level.
    pub fn new(out: W) -> JsonArrayWriter<W> {
        JsonArrayWriter::nested(out, 0)
    }

    /// An array whose opening line is at nesting `level` (as the value of a field of a
    /// top-level object: level 1). Writes nothing before its first item: see [`Self::item`].
    pub fn nested(out: W, level: usize) -> JsonArrayWriter<W> {
        JsonArrayWriter {
            out,
            indent: "  ".repeat(level + 1),
            items: 0,
            buf: Vec::new(),
        }
    }

    /// Writes one item (`[` first, before the first one).
    pub fn item<T: Serialize>(&mut self, value: &T) -> anyhow::Result<()> {
        self.buf.clear();
        serde_json::to_writer_pretty(&mut self.buf, value)?;
        self.out
            .write_all(if self.items == 0 { b"[\n" } else { b",\n" })?;
        // JSON strings escape their newlines: every newline here is between lines of the item.
        for (i, line) in self.buf.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                self.out.write_all(b"\n")?;
            }
            self.out.write_all(self.indent.as_bytes())?;
            self.out.write_all(line)?;
        }
        self.items += 1;
        Ok(())
    }

    /// Closes the array (`[]` when it had no item) and returns the writer.
    pub fn finish(mut self) -> anyhow::Result<W> {
        if self.items == 0 {
            self.out.write_all(b"[]")?;
        } else {
            self.out.write_all(b"\n")?;
            self.out.write_all(&self.indent.as_bytes()[2..])?;
            self.out.write_all(b"]")?;
        }
        Ok(self.out)
    }

    /// How many items were written.
    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }
}

/// `billrun invoices list --format json`: the invoices matching `filter`, in number order, read
/// and written `page` at a time (memory flat however many there are); the same bytes as
/// `to_string_pretty` of them all, and a newline.
pub async fn write_invoice_list_json(
    db: &Db,
    filter: &invoices::ListFilter,
    page: i64,
    out: impl std::io::Write,
) -> anyhow::Result<()> {
    let mut json = JsonArrayWriter::new(out);
    let mut after: Option<String> = None;
    loop {
        let rows = invoices::list_page(db, filter, after.as_deref(), page.max(1)).await?;
        for r in &rows {
            json.item(&InvoiceView::of(&invoice_document::load(db, r).await?))?;
        }
        match rows.last() {
            Some(last) if rows.len() as i64 >= page.max(1) => after = Some(last.number.clone()),
            _ => break,
        }
    }
    let mut out = json.finish()?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// The invoices' views of a run, spooled to a temporary file (removed when dropped) as they
/// are issued, already written as the items of the report's `invoices` field: `billrun run
/// invoice --format json` holds none of them in memory (see [`write_run_report_json`]).
pub struct InvoiceSpool {
    state: std::sync::Mutex<SpoolState>,
    path: std::path::PathBuf,
}

struct SpoolState {
    json: Option<JsonArrayWriter<std::io::BufWriter<std::fs::File>>>,
    /// The first write that failed: reported when the report is written.
    error: Option<String>,
}

impl InvoiceSpool {
    pub fn new() -> anyhow::Result<std::sync::Arc<InvoiceSpool>> {
        use anyhow::Context;
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "billrun-invoices-{}-{}.json",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(std::sync::Arc::new(InvoiceSpool {
            state: std::sync::Mutex::new(SpoolState {
                json: Some(JsonArrayWriter::nested(std::io::BufWriter::new(file), 1)),
                error: None,
            }),
            path,
        }))
    }

    /// The sink a run hands its invoices to.
    pub fn sink(self: &std::sync::Arc<Self>) -> crate::jobs::InvoiceSink {
        let spool = self.clone();
        crate::jobs::InvoiceSink(Some(std::sync::Arc::new(move |views| spool.take(views))))
    }

    fn take(&self, invoices: Vec<Invoice>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let SpoolState { json, error } = &mut *state;
        if error.is_some() {
            return;
        }
        let Some(json) = json else {
            *error = Some("invoices came after the report was written".into());
            return;
        };
        for inv in &invoices {
            if let Err(e) = json.item(&InvoiceView::of(inv)) {
                *error = Some(crate::error_text::chain(&e));
                return;
            }
        }
    }
}

impl Drop for InvoiceSpool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes a run's report as pretty JSON and a newline (what `println!` of
/// `to_string_pretty(report)` writes, byte for byte), its invoices first from `spool` (those
/// the run handed over), then those still in the report. Takes the invoices out of `report`.
pub fn write_run_report_json(
    report: &mut crate::jobs::JobReport,
    spool: Option<&InvoiceSpool>,
    mut out: impl std::io::Write,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Seek;
    let Some(spool) = spool else {
        serde_json::to_writer_pretty(&mut out, report)?;
        out.write_all(b"\n")?;
        out.flush()?;
        return Ok(());
    };
    let rest = std::mem::take(&mut report.invoices);
    let text = serde_json::to_string_pretty(report)?;
    // The top-level field, at one level of indentation (a string cannot hold a raw newline).
    const FIELD: &str = "\n  \"invoices\": []";
    let at = text
        .find(FIELD)
        .context("the report has an invoices field")?
        + FIELD.len()
        - 2;
    let mut state = spool.state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = state.error.take() {
        anyhow::bail!("spooling the invoices to {}: {e}", spool.path.display());
    }
    let mut json = state.json.take().context("a spool is written once")?;
    for inv in &rest {
        json.item(&InvoiceView::of(inv))?;
    }
    let mut file = json.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.seek(std::io::SeekFrom::Start(0))?;
    out.write_all(&text.as_bytes()[..at])?;
    std::io::copy(&mut file, &mut out)?;
    out.write_all(&text.as_bytes()[at + 2..])?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// An amount as the JSON and the tables write it: `"14.81"`.
fn amount(m: Money) -> String {
    format_minor(m.minor)
}

/// A decimal with no trailing zeros: a unit price `0.02`, a rate `20`.
fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Hours with two places: `744.00`.
fn hours(d: Decimal) -> String {
    let mut d = d;
    d.rescale(2);
    d.to_string()
}

impl InvoiceView {
    /// The JSON of an invoice (`invoices show --format json`, `run invoice --format json`).
    pub fn of(i: &Invoice) -> InvoiceView {
        InvoiceView {
            id: i.id.map(|id| id.0),
            number: i.number.clone(),
            account_id: i.account_id.to_string(),
            period: i.period.to_string(),
            status: i.status.as_str().to_string(),
            currency: i.currency.code().to_string(),
            language: i.language.as_str().to_string(),
            buyer: BuyerView {
                name: i.buyer.name.clone(),
                company: i.buyer.company.clone(),
                address: i.buyer.address.clone(),
                country: i.buyer.country.clone(),
                vat_number: i.buyer.vat_number.clone(),
                vies_consultation: i.buyer.vies_consultation.clone(),
            },
            lines: i
                .lines
                .iter()
                .map(|l| LineView {
                    description: l.description.clone(),
                    app_id: l.app_id.as_ref().map(|a| a.to_string()),
                    kind: l.kind.as_str().to_string(),
                    item: l.item.clone(),
                    quantity_hours: hours(l.quantity_hours),
                    unit_price: dec(l.unit_price),
                    amount: amount(l.amount),
                })
                .collect(),
            subtotal: amount(i.subtotal),
            discount: amount(i.discount),
            tax_case: i.vat_case.as_str().to_string(),
            tax_mention: i.tax_mention().map(str::to_string),
            tax_rate: dec(i.tax_rate),
            tax: amount(i.tax),
            total: amount(i.total),
            discounts: i
                .discounts
                .iter()
                .map(|d| DiscountView {
                    description: d.description.clone(),
                    amount: amount(d.amount),
                })
                .collect(),
            balance_brought_forward: amount(i.balance_brought_forward),
            brought_forward_from: i
                .brought_forward
                .iter()
                .map(|b| TransferView {
                    invoice_number: b.invoice_number.clone(),
                    amount: amount(b.amount),
                })
                .collect(),
            credit_applied: amount(i.credit_applied),
            amount_paid: amount(i.amount_paid),
            carried_forward: amount(i.carried_forward),
            carried_forward_to: match &i.carried_to {
                None | Some(CarriedTo::NextInvoice) => None,
                Some(CarriedTo::Invoice(number)) => Some(number.clone()),
                Some(CarriedTo::Waived) => Some("waived".to_string()),
            },
            amount_due: amount(i.amount_due),
            issued_at: i.issued_at,
            due_at: i.due_at,
            next_attempt_at: i.next_attempt_at,
            attempts: i.attempts.iter().map(AttemptView::of).collect(),
            amount_credited: amount(i.amount_credited),
            credit_notes: i
                .credit_notes
                .iter()
                .map(|c| CreditNoteRefView {
                    number: c.number.clone(),
                    issued_at: c.issued_at,
                    total: amount(c.total),
                    reason: c.reason.clone(),
                })
                .collect(),
        }
    }
}

/// The JSON view of a stored invoice, with everything shown about it.
pub async fn load_invoice(db: &Db, r: &invoices::InvoiceRow) -> anyhow::Result<InvoiceView> {
    Ok(InvoiceView::of(&invoice_document::load(db, r).await?))
}

/// Serializes invoices as their JSON views (a report's `invoices` field).
pub fn serialize_invoices<S: serde::Serializer>(
    invoices: &[Invoice],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(invoices.len()))?;
    for inv in invoices {
        seq.serialize_element(&InvoiceView::of(inv))?;
    }
    seq.end()
}

/// A plain text table: a header row and left-aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect(), &mut out);
    }
    out
}

/// An invoice's cells in the invoice tables, in [`INVOICE_COLUMNS`]' order.
fn invoice_cells(i: &Invoice) -> Vec<String> {
    vec![
        i.number.clone().unwrap_or_else(|| "(draft)".into()),
        i.account_id.to_string(),
        i.period.to_string(),
        i.status.as_str().to_string(),
        amount(i.subtotal),
        amount(i.discount),
        format!("{} ({}%)", amount(i.tax), dec(i.tax_rate)),
        amount(i.total),
        amount(i.amount_due),
    ]
}

/// The invoice tables' columns, with the fixed width each has in a streamed table
/// ([`InvoiceTableStream`]): a number `2026-000042`, an account id as most are, amounts up to
/// 9,999,999.99. A longer cell is written whole and shifts the rest of its row.
pub const INVOICE_COLUMNS: [(&str, usize); 9] = [
    ("NUMBER", 11),
    ("ACCOUNT", 24),
    ("PERIOD", 7),
    ("STATUS", 8),
    ("SUBTOTAL", 10),
    ("DISCOUNT", 10),
    ("VAT", 16),
    ("TOTAL", 10),
    ("DUE", 10),
];

pub fn invoice_table(invoices: &[Invoice]) -> String {
    let rows: Vec<Vec<String>> = invoices.iter().map(invoice_cells).collect();
    table(&INVOICE_COLUMNS.map(|c| c.0), &rows)
}

/// One line of a fixed-width table: each cell padded to its width and two spaces, the last one
/// as it is; no trailing blanks.
fn fixed_line(cells: &[&str], widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            s.push_str(c);
        } else {
            let pad = w.saturating_sub(c.chars().count());
            let _ = write!(s, "{c}{}  ", " ".repeat(pad));
        }
    }
    let mut line = s.trim_end().to_string();
    line.push('\n');
    line
}

/// The invoice table of `billrun run invoice`, written row by row as the run issues the
/// invoices (issue 25 §4: the table format held every invoice until the run ended): fixed
/// column widths ([`INVOICE_COLUMNS`]), the header before the first row, the first `shown`
/// rows, then only a count of the rest ([`InvoiceTableStream::finish`]). Holds no invoice.
pub struct InvoiceTableStream {
    state: std::sync::Mutex<TableState>,
    shown: usize,
}

struct TableState {
    rows: u64,
    /// The first write that failed: reported by [`InvoiceTableStream::finish`].
    error: Option<String>,
}

impl InvoiceTableStream {
    pub fn new(shown: usize) -> InvoiceTableStream {
        InvoiceTableStream {
            state: std::sync::Mutex::new(TableState {
                rows: 0,
                error: None,
            }),
            shown,
        }
    }

    /// Writes the rows of `invoices` (those within the first `shown`) to `out` and flushes it.
    pub fn write(&self, invoices: &[Invoice], out: &mut dyn std::io::Write) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.error.is_some() {
            return;
        }
        let widths = INVOICE_COLUMNS.map(|c| c.1);
        let mut text = String::new();
        for inv in invoices {
            if state.rows == 0 {
                text.push_str(&fixed_line(&INVOICE_COLUMNS.map(|c| c.0), &widths));
            }
            state.rows += 1;
            if state.rows <= self.shown as u64 {
                let cells = invoice_cells(inv);
                let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
                text.push_str(&fixed_line(&cells, &widths));
            }
        }
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            state.error = Some(e.to_string());
        }
    }

    /// After the run: the rows of what the run still held, then how many rows were not shown.
    pub fn finish(&self, rest: &[Invoice], out: &mut dyn std::io::Write) -> anyhow::Result<()> {
        self.write(rest, out);
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &state.error {
            anyhow::bail!("writing the invoice table: {e}");
        }
        if state.rows > self.shown as u64 {
            writeln!(
                out,
                "(and {} more invoices: see them all with --format json or `billrun invoices list`)",
                state.rows - self.shown as u64
            )?;
        }
        Ok(())
    }
}

/// A whole invoice, for `invoices show`.
pub fn invoice_text(i: &Invoice) -> String {
    let cur = i.currency.code();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Invoice {}  ({})",
        i.number.as_deref().unwrap_or("(draft)"),
        i.status
    );
    let _ = writeln!(
        s,
        "Account {}  period {}  issued {}  due {}",
        i.account_id,
        i.period,
        i.issued_at.format("%Y-%m-%d"),
        i.due_at
    );
    let b = &i.buyer;
    let _ = writeln!(
        s,
        "Bill to: {}{}, {}, {}{}",
        b.name,
        b.company
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
        b.address,
        b.country,
        b.vat_number
            .as_ref()
            .map(|v| format!(", VAT {v}"))
            .unwrap_or_default()
    );
    s.push('\n');
    let rows: Vec<Vec<String>> = i
        .lines
        .iter()
        .map(|l| {
            vec![
                l.description.clone(),
                hours(l.quantity_hours),
                dec(l.unit_price),
                amount(l.amount),
            ]
        })
        .collect();
    s.push_str(&table(
        &["DESCRIPTION", "HOURS", "UNIT PRICE", "AMOUNT"],
        &rows,
    ));
    s.push('\n');
    for d in &i.discounts {
        let _ = writeln!(s, "{}  -{}", d.description, amount(d.amount));
    }
    let _ = writeln!(s, "Subtotal        {:>10} {cur}", amount(i.subtotal));
    let _ = writeln!(s, "Discount        {:>10} {cur}", amount(i.discount));
    let _ = writeln!(
        s,
        "VAT ({:>5}%)    {:>10} {cur}",
        dec(i.tax_rate),
        amount(i.tax)
    );
    let _ = writeln!(s, "Total           {:>10} {cur}", amount(i.total));
    for b in &i.brought_forward {
        let _ = writeln!(
            s,
            "Brought forward {:>10} {cur} (from invoice {})",
            amount(b.amount),
            b.invoice_number
        );
    }
    let _ = writeln!(s, "Credit applied  {:>10} {cur}", amount(i.credit_applied));
    let _ = writeln!(s, "Amount paid     {:>10} {cur}", amount(i.amount_paid));
    if i.carried_forward.minor != 0 {
        let _ = writeln!(
            s,
            "Carried forward {:>10} {cur} (below the €0.50 minimum charge; {})",
            amount(i.carried_forward),
            match &i.carried_to {
                None | Some(CarriedTo::NextInvoice) => "on the next invoice".to_string(),
                Some(CarriedTo::Invoice(n)) => format!("on invoice {n}"),
                Some(CarriedTo::Waived) => "waived when the account closed".to_string(),
            }
        );
    }
    for c in &i.credit_notes {
        let _ = writeln!(
            s,
            "Credited        {:>10} {cur} (credit note {} of {}: {})",
            amount(c.total),
            c.number,
            c.issued_at.format("%Y-%m-%d"),
            c.reason
        );
    }
    let _ = writeln!(s, "Amount due      {:>10} {cur}", amount(i.amount_due));
    if let Some(m) = i.tax_mention() {
        let _ = writeln!(s, "\n{m}");
    }
    if !i.attempts.is_empty() {
        s.push('\n');
        let rows: Vec<Vec<String>> = i
            .attempts
            .iter()
            .map(|a| {
                vec![
                    a.number.to_string(),
                    a.at.format("%Y-%m-%d %H:%M").to_string(),
                    a.trigger.as_str().to_string(),
                    format!("{} ({})", a.method, a.gateway),
                    amount(a.amount),
                    a.outcome.as_str().to_string(),
                    a.decline_code.clone().unwrap_or_default(),
                ]
            })
            .collect();
        s.push_str(&table(
            &[
                "ATTEMPT", "AT", "TRIGGER", "METHOD", "AMOUNT", "OUTCOME", "CODE",
            ],
            &rows,
        ));
    }
    if let Some(t) = i.next_attempt_at {
        let _ = writeln!(s, "Next attempt: {}", t.format("%Y-%m-%d %H:%M UTC"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<serde_json::Value> {
        vec![
            serde_json::json!({"id": 1, "lines": [{"a": "x\ny", "b": []}], "empty": {}, "n": null}),
            serde_json::json!({"id": 2, "lines": [], "nested": {"deep": [1, 2, {"k": "v"}]}}),
            serde_json::json!("plain"),
        ]
    }

    #[test]
    fn a_streamed_array_is_byte_for_byte_the_pretty_printed_one() {
        for n in 0..=3 {
            let all = &items()[..n];
            let mut w = JsonArrayWriter::new(Vec::new());
            for v in all {
                w.item(v).unwrap();
            }
            assert_eq!(w.len(), n);
            let out = String::from_utf8(w.finish().unwrap()).unwrap();
            assert_eq!(out, serde_json::to_string_pretty(all).unwrap(), "{n} items");
        }
    }

    #[test]
    fn a_streamed_array_nested_in_an_object_is_byte_for_byte_the_pretty_printed_one() {
        for n in 0..=3 {
            let all = &items()[..n];
            let whole = serde_json::json!({"a": 1, "invoices": all, "z": [2]});
            let mut w = JsonArrayWriter::nested(Vec::new(), 1);
            for v in all {
                w.item(v).unwrap();
            }
            let arr = String::from_utf8(w.finish().unwrap()).unwrap();
            let spliced =
                format!("{{\n  \"a\": 1,\n  \"invoices\": {arr},\n  \"z\": [\n    2\n  ]\n}}");
            assert_eq!(
                spliced,
                serde_json::to_string_pretty(&whole).unwrap(),
                "{n} items"
            );
        }
    }
}
