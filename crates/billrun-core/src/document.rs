//! An invoice as a document: built once (from the store, or from a draft in a dry-run), typed,
//! and rendered by every output — the JSON and the tables of the CLI, the PDF, the emails, and
//! the documents to come (e-invoice XML, credit notes). No rendering parses a string back into
//! an amount, a status or a language: they read these types.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::collection::{AttemptOutcome, Trigger};
use super::credit_note::{CreditLineKind, RefundMethod};
use super::einvoice::{ElectronicAddress, PaymentMeans};
use super::ids::{AccountId, AppId, CreditNoteId, InvoiceId};
use super::locale::Language;
use super::money::{Currency, Money};
use super::period::Period;
use super::pricing::UsageKind;
use super::terms::{PaymentTerms, TermsFacts, payment_terms};
use super::vat::{self, BuyerKind, VatCase};

/// Where an invoice stands. Matched exhaustively everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Finalized and numbered; nothing collected yet.
    Open,
    /// A payment is in flight (SEPA processing) or its outcome is not known yet.
    Pending,
    Paid,
    /// A collection attempt failed; retried on schedule.
    Unpaid,
    /// What was left was below Stripe's minimum and moved to the account's next invoice.
    CarriedForward,
    /// Fully credited before it was paid: nothing is owed on it, nothing is collected, and it
    /// is kept (article L123-22 of the Code de commerce: ten years), with its credit notes.
    Void,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Pending => "pending",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Unpaid => "unpaid",
            InvoiceStatus::CarriedForward => "carried_forward",
            InvoiceStatus::Void => "void",
        }
    }

    pub fn parse(s: &str) -> Option<InvoiceStatus> {
        match s {
            "open" => Some(InvoiceStatus::Open),
            "pending" => Some(InvoiceStatus::Pending),
            "paid" => Some(InvoiceStatus::Paid),
            "unpaid" => Some(InvoiceStatus::Unpaid),
            "carried_forward" => Some(InvoiceStatus::CarriedForward),
            "void" => Some(InvoiceStatus::Void),
            _ => None,
        }
    }

    /// The status of an invoice as issued, before any payment: paid when nothing is due.
    pub fn at_issue(amount_due: Money) -> InvoiceStatus {
        if amount_due.minor == 0 {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Open
        }
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The issuer of the invoices (the PaaS operator), as `jobs/invoice.toml` sets it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seller {
    pub name: String,
    /// e.g. "SAS au capital de 10 000 €".
    pub legal_form: String,
    pub address: Vec<String>,
    /// The trade and companies register entry: "RCS", the registry's city and the SIREN, e.g.
    /// "RCS Strasbourg 812 345 676" (article R123-237 of the Code de commerce: a company's
    /// invoices carry it). Checked at load: `config::check_rcs`.
    pub rcs: String,
    /// Checked at load (`config`): its Luhn key (`einvoice::validate_siren`).
    pub siren: String,
    /// Checked at load (`config`): the SIREN, a NIC, the Luhn key
    /// (`einvoice::validate_siret`).
    pub siret: String,
    /// Checked at load (`config`): a French number's key and SIREN.
    pub vat_number: String,
    pub email: String,
    pub website: String,
    #[serde(default)]
    pub iban: Option<String>,
    /// EN 16931 BT-34: where the seller receives e-invoices (the French CTC rule BR-FR-13
    /// requires it). Checked at load (`config`).
    #[serde(default)]
    pub electronic_address: Option<ElectronicAddress>,
    /// EN 16931 BT-90: the SEPA creditor identifier (ICS) the seller's direct debits are
    /// collected under; written on SEPA debit invoices. Checked at load.
    #[serde(default)]
    pub sepa_creditor_id: Option<String>,
}

/// The buyer, as the invoice was issued to it (a copy: the account may change later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    pub name: String,
    pub company: Option<String>,
    /// May hold several lines separated by `\n`.
    pub address: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub vat_number: Option<String>,
    /// The VIES consultation number (`requestIdentifier`) the invoice's reverse charge rests on
    /// (article 18 of Implementing Regulation (EU) 282/2011); reverse-charge invoices only.
    pub vies_consultation: Option<String>,
    /// EN 16931 BT-47: the SIREN of a French business buyer (scheme 0002).
    pub siren: Option<String>,
    /// EN 16931 BT-49: where the buyer receives e-invoices.
    pub electronic_address: Option<ElectronicAddress>,
}

impl Buyer {
    pub fn kind(&self) -> BuyerKind {
        BuyerKind::of(self.company.as_deref(), self.vat_number.as_deref())
    }
}

/// One billed line: an app's container size or addon plan over part of the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub description: String,
    pub app_id: Option<AppId>,
    pub kind: UsageKind,
    pub item: String,
    pub quantity_hours: Decimal,
    /// Per hour, as the catalog prices it.
    pub unit_price: Decimal,
    pub amount: Money,
}

/// A referral reward used on the invoice (a deduction; `amount` is positive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discount {
    pub description: String,
    pub amount: Money,
}

/// A small unpaid balance of an earlier invoice brought onto this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroughtForward {
    pub invoice_number: String,
    pub amount: Money,
}

/// Where what was left below Stripe's minimum went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarriedTo {
    /// Not billed yet: it goes on the account's next invoice.
    NextInvoice,
    Invoice(String),
    /// Written off when the account closed.
    Waived,
}

/// A collection attempt on the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub number: i32,
    pub trigger: Trigger,
    /// `card`, `sepa_debit`, or `none` when there was no payment method.
    pub method: String,
    /// `stripe`, `simulated`, or `none` when no gateway was called.
    pub gateway: String,
    pub amount: Money,
    pub payment_intent: Option<String>,
    pub outcome: AttemptOutcome,
    pub decline_code: Option<String>,
    /// For the operator (secrets redacted); never shown to the customer.
    pub message: Option<String>,
    pub at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

/// An invoice with everything shown about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// `None` in a dry-run: ids and numbers are given at finalization only.
    pub id: Option<InvoiceId>,
    pub number: Option<String>,
    pub account_id: AccountId,
    pub period: Period,
    /// The billed time, `[period_start, period_end)`.
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub status: InvoiceStatus,
    pub currency: Currency,
    pub language: Language,
    pub buyer: Buyer,
    pub lines: Vec<Line>,
    pub subtotal: Money,
    /// The referral rewards used, in all.
    pub discount: Money,
    pub vat_case: VatCase,
    /// In percent.
    pub tax_rate: Decimal,
    pub tax: Money,
    pub total: Money,
    pub discounts: Vec<Discount>,
    /// The sum of `brought_forward`, included in `amount_due`.
    pub balance_brought_forward: Money,
    pub brought_forward: Vec<BroughtForward>,
    pub credit_applied: Money,
    pub amount_paid: Money,
    /// Left below Stripe's minimum and moved on (`carried_to` says where).
    pub carried_forward: Money,
    pub carried_to: Option<CarriedTo>,
    pub amount_due: Money,
    pub issued_at: DateTime<Utc>,
    pub due_at: NaiveDate,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
    /// How it was expected to be paid when it was issued (EN 16931 BG-16), recorded at
    /// finalization.
    pub payment_means: PaymentMeans,
    /// EN 16931 BT-89: the SEPA mandate reference, on a SEPA debit invoice when known.
    pub sepa_mandate: Option<String>,
    /// What its credit notes credited in all, VAT included (issue 22).
    pub amount_credited: Money,
    /// Its credit notes, oldest first.
    pub credit_notes: Vec<CreditNoteRef>,
}

/// A credit note as the invoice it corrects lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteRef {
    pub number: String,
    pub issued_at: DateTime<Utc>,
    pub total: Money,
    pub reason: String,
}

impl Invoice {
    /// What VAT is computed on: the subtotal less the discounts.
    pub fn taxable_base(&self) -> Money {
        Money::new(
            self.subtotal.minor - self.discount.minor,
            self.subtotal.currency,
        )
    }

    /// The last day billed (the period's end is exclusive).
    pub fn period_last_day(&self) -> NaiveDate {
        (self.period_end - chrono::Duration::seconds(1)).date_naive()
    }

    /// The VAT mention the invoice carries in its language (article 242 nonies A, I-13° of
    /// annex II to the CGI), by the core's rule for its case and buyer.
    pub fn tax_mention(&self) -> Option<&'static str> {
        vat::mention(self.vat_case, self.buyer.kind(), self.language)
    }

    /// How and when it is paid (`core::terms`: one truth for the PDF and the emails), as
    /// issued.
    pub fn payment_terms(&self) -> PaymentTerms {
        payment_terms(&TermsFacts {
            due_date: self.due_at,
            amount_due_minor: self.amount_due.minor,
            buyer: self.buyer.kind(),
        })
    }

    /// The period's name in the invoice's language: `octobre 2026`.
    pub fn period_label(&self) -> String {
        super::invoice::period_label(self.period, self.language)
    }

    /// The invoice as it was issued, before any payment: what its PDF shows.
    pub fn as_issued(&self) -> Invoice {
        let zero = Money::new(0, self.currency);
        let amount_due = Money::new(
            self.total.minor + self.balance_brought_forward.minor,
            self.currency,
        );
        Invoice {
            status: InvoiceStatus::at_issue(amount_due),
            credit_applied: zero,
            amount_paid: zero,
            carried_forward: zero,
            carried_to: None,
            amount_due,
            next_attempt_at: None,
            attempts: Vec::new(),
            amount_credited: zero,
            credit_notes: Vec::new(),
            ..self.clone()
        }
    }
}

/// Where a credit note's refund stands. Matched exhaustively; `Unknown` is a state of its own
/// (the gateway gave no conclusive answer: the same request is sent again, never a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Nothing to give back: the credit note only lowered what the invoice owed.
    NotNeeded,
    /// A dry-run: what would be refunded.
    Planned,
    /// Recorded; the gateway has not been asked yet, or has accepted and not yet paid out.
    Pending,
    Succeeded,
    Failed,
    Unknown,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::NotNeeded => "not_needed",
            RefundStatus::Planned => "planned",
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
            RefundStatus::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<RefundStatus> {
        match s {
            "not_needed" => Some(RefundStatus::NotNeeded),
            "planned" => Some(RefundStatus::Planned),
            "pending" => Some(RefundStatus::Pending),
            "succeeded" => Some(RefundStatus::Succeeded),
            "failed" => Some(RefundStatus::Failed),
            "unknown" => Some(RefundStatus::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a credit note: the credited part of an invoice line, a commercial gesture, or
/// (on a full credit) the invoice's referral discount deducted again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteLine {
    pub description: String,
    /// The invoice line it credits, from 1 as the invoice numbers them.
    pub invoice_line: Option<u32>,
    pub kind: CreditLineKind,
    /// Excluding VAT; negative for a deduction.
    pub amount: Money,
}

/// How a credit note's total is settled: what the invoice stops owing, and what is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteRefund {
    /// As the operator asked (`auto` follows how the invoice was paid).
    pub method: RefundMethod,
    /// Taken off what the invoice still owed.
    pub reduce_due: Money,
    /// Refunded to the card or SEPA account that paid (Stripe Refunds).
    pub to_payment_method: Money,
    /// Given back to the account's prepaid credit.
    pub to_credit: Money,
    /// Settled outside billrun, recorded only.
    pub outside: Money,
    pub status: RefundStatus,
    /// Gateway refunds that failed and the operator settled otherwise (`credit-notes refund`),
    /// in the order they were.
    pub rerouted: Vec<RefundReroute>,
}

/// Where a failed gateway refund went instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerouteTo {
    /// The account's prepaid credit.
    Credit,
    /// Paid outside billrun by the operator (a bank transfer), recorded only.
    None,
}

impl RerouteTo {
    pub fn as_str(self) -> &'static str {
        match self {
            RerouteTo::Credit => "credit",
            RerouteTo::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<RerouteTo> {
        match s {
            "credit" => Some(RerouteTo::Credit),
            "none" => Some(RerouteTo::None),
            _ => None,
        }
    }
}

/// A failed gateway refund settled otherwise by the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReroute {
    /// The PaymentIntent whose refund failed.
    pub payment_intent: String,
    pub amount: Money,
    pub to: RerouteTo,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

impl CreditNoteRefund {
    /// What is given back, however: the credit note's total less what the invoice stopped owing.
    pub fn amount(&self) -> Money {
        Money::new(
            self.to_payment_method.minor + self.to_credit.minor + self.outside.minor,
            self.reduce_due.currency,
        )
    }
}

/// A credit note (*avoir*): the only way to correct an issued invoice (article 272-1 of the CGI;
/// article 242 nonies A of annex II to the CGI for what it carries, including the reference to
/// the invoice it corrects). Built once by the store, rendered by the JSON, the tables, the PDF,
/// the CII XML (type code 381, the invoice as BT-25) and the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNote {
    /// `None` in a dry-run: ids and numbers are given when it is issued.
    pub id: Option<CreditNoteId>,
    pub number: Option<String>,
    pub invoice_id: InvoiceId,
    pub invoice_number: String,
    pub invoice_issued_at: DateTime<Utc>,
    pub invoice_period: Period,
    pub account_id: AccountId,
    pub issued_at: DateTime<Utc>,
    pub reason: String,
    pub currency: Currency,
    pub language: Language,
    /// The buyer as the credited invoice names it.
    pub buyer: Buyer,
    pub lines: Vec<CreditNoteLine>,
    /// Σ lines, excluding VAT.
    pub subtotal: Money,
    /// The credited invoice's VAT case and rate: the VAT is reversed as it was charged.
    pub vat_case: VatCase,
    pub tax_rate: Decimal,
    pub tax: Money,
    pub total: Money,
    pub refund: CreditNoteRefund,
}

impl CreditNote {
    /// The VAT mention, as the credited invoice carries it (the same case, the same words).
    pub fn tax_mention(&self) -> Option<&'static str> {
        vat::mention(self.vat_case, self.buyer.kind(), self.language)
    }
}
