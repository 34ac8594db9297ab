//! The pure core: plain functions over plain types. No database, no clock, no network.

pub mod bounds;
pub mod collection;
pub mod countries;
pub mod credit_note;
pub mod deletion;
pub mod dispute;
pub mod document;
pub mod einvoice;
pub mod email;
pub mod fec;
pub mod ids;
pub mod invoice;
pub mod lifecycle;
pub mod locale;
pub mod money;
pub mod period;
pub mod pricing;
pub mod schedule;
pub mod stored;
pub mod tax_returns;
pub mod terms;
pub mod timeline;
pub mod vat;
pub mod vat_number;
