//! billrun's documents: the invoice and credit note PDFs (Factur-X, with their CII XML) and the
//! emails, rendered from the core's types (the typed `billrun_core::document::Invoice` and
//! `CreditNote`, the email's kind, language and data). Pure
//! renderers: no database, no network; the jobs store and send what they return.

pub mod cii;
pub mod credit_note_pdf;
pub mod email;
#[cfg(test)]
mod fixtures;
pub mod invoice_pdf;
pub mod pdf;
