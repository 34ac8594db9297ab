//! `billrun report oss|vat` and `billrun export fec`: read-only over the store. Loads the
//! invoices, credit notes, payments, refunds and credit movements of a period (the SQL is here,
//! `SELECT`s only), hands them to the pure computations of `core::tax_returns` and `core::fec`,
//! and shapes what the CLI prints or writes.
//!
//! One file per report: `tax` (the OSS and VAT returns), `fec` (the FEC ledger).

pub mod fec;
pub mod tax;

pub use fec::{
    CHART_FILE, DEFAULT_CHART, FecExport, FecFormat, export_fec, fec_events, fec_lines, load_chart,
    parse_chart,
};
pub use tax::{OssView, VatView, oss_return, tax_credit_notes, tax_invoices, vat_return};
