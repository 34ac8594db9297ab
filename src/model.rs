//! Validated records of the platform, as imported and stored.

use chrono::{DateTime, Utc};

use crate::core::ids::{AccountId, AppId};
use crate::core::invoice::Language;

/// An account of the platform (the buyer on its invoices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub name: String,
    pub company: Option<String>,
    pub address: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Empty for consumers.
    pub vat_number: Option<String>,
    pub language: Language,
    pub created_at: DateTime<Utc>,
    pub referred_by: Option<AccountId>,
}

/// An application, owned by one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: AppId,
    pub name: String,
    pub account_id: AccountId,
}

pub use crate::core::pricing::{PriceEntry, UsageRecord};
