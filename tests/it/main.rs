//! The integration tests, in one binary: one link of the heavy dependencies instead of one per
//! file keeps the test build small and fast. Each module is one area of billrun; `common` is the
//! harness (a fresh PostgreSQL database and SQLite file per test, the fake Stripe, a real SMTP
//! server).

#[macro_use]
mod common;

mod bench;
mod cli;
mod collect;
mod collect_scale;
mod collection_truth;
mod credit_notes;
mod deletion;
mod deliver;
mod documents;
mod facturx;
mod fake_stripe_selftest;
mod imports;
mod invoice_job;
mod legal;
mod lifecycle;
mod operating;
mod pdf;
mod properties;
mod referrals;
mod refunds;
mod tax_reports;
mod vat_check;
mod webhooks;
