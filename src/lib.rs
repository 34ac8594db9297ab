//! billrun: batch billing and account-lifecycle jobs for a PaaS.
//!
//! See `ARCHITECTURE.md` for the map: `core` is pure, `store` and `jobs` do the I/O.

pub mod cli;
pub mod closing;
pub mod config;
pub mod core;
pub mod demo;
pub mod documents;
pub mod gateway;
pub mod import;
pub mod jobs;
pub mod model;
pub mod store;
pub mod views;
