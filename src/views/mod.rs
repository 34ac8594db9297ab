//! What the CLI shows: invoices, credit notes and job reports, as tables and as JSON (amounts
//! are decimal strings such as `"14.81"`). One file per view: `invoice` (an invoice's JSON and
//! text), `credit_note`, `table` (text tables, the invoice tables), `json` (JSON written as it
//! is produced).

use rust_decimal::Decimal;

use crate::core::money::{Money, format_minor};

mod credit_note;
mod invoice;
mod json;
mod table;

pub use credit_note::{
    CreditNoteLineView, CreditNoteView, RefundView, RerouteView, credit_note_table,
    credit_note_text,
};
pub use invoice::{
    AttemptView, BuyerView, CreditNoteRefView, DiscountView, InvoiceView, LineView, TransferView,
    invoice_text, load_invoice, serialize_invoices,
};
pub use json::{InvoiceSpool, JsonArrayWriter, write_invoice_list_json, write_run_report_json};
pub use table::{INVOICE_COLUMNS, InvoiceTableStream, invoice_table, table};

/// How a command prints what it shows: a table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
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
