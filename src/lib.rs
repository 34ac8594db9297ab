//! billrun: batch billing and account-lifecycle jobs for a PaaS.
//!
//! The product: the store, the jobs, the daemon and what they share. See `ARCHITECTURE.md` for
//! the map: `core` is pure, `store` and `jobs` do the I/O; the command line (`billrun-cli`), the
//! demo and the bench are crates above this one.

pub mod closing;
pub mod config;
pub mod credit_notes;
/// The pure core, its own crate (`crates/billrun-core`): the compiler keeps it free of I/O.
pub use billrun_core as core;
pub mod daemon;
pub mod disputes;
/// The renderers (PDF, emails), their own crate (`crates/billrun-documents`).
pub use billrun_documents as documents;
pub mod error_text;
pub mod gateway;
pub mod import;
pub mod jobs;
pub mod metrics;
pub mod model;
pub(crate) mod nodelay;
pub mod reports;
pub mod runner;
pub mod store;
pub mod stripe_webhook;
pub mod views;
pub mod webhooks;
