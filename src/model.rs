//! Validated records of the platform, as imported and stored.

use chrono::{DateTime, Utc};

use crate::core::einvoice::ElectronicAddress;
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
    /// EN 16931 BT-47: a French business's SIREN (9 digits, Luhn key checked at import).
    pub siren: Option<String>,
    /// EN 16931 BT-49: where the account receives e-invoices, with its scheme.
    pub electronic_address: Option<ElectronicAddress>,
}

/// An application, owned by one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: AppId,
    pub name: String,
    pub account_id: AccountId,
}

/// A deployment of an app: a git ref built and released at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    pub app_id: AppId,
    pub git_ref: String,
    pub created_at: DateTime<Utc>,
}

/// A name under which an account is known on the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub id: String,
    pub account_id: AccountId,
    pub name: String,
}

/// A DNS name pointing to an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: String,
    pub app_id: AppId,
    /// Lowercase, without a trailing dot.
    pub name: String,
}

/// A TLS certificate of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub id: String,
    pub domain_id: String,
    pub issuer: String,
    pub expires_at: DateTime<Utc>,
}

pub use crate::core::pricing::{PriceEntry, UsageRecord};
