//! billrun's documents: the invoice PDF and the emails, rendered from the core's types (the
//! typed `billrun_core::document::Invoice`, the email's kind, language and data). Pure
//! renderers: no database, no network; the jobs store and send what they return.

pub mod cii;
pub mod email;
pub mod invoice_pdf;
pub mod pdf;
