//! Credit notes (*avoirs*): the only way to correct an issued invoice under French law. An
//! issued invoice is never edited or deleted (article 242 nonies A of annex II to the CGI lists
//! what it carries; article 272-1 of the CGI allows the VAT of a price later reduced to be
//! recovered by a corrective document referencing it). These are the rules, over plain numbers:
//! what may be credited, the VAT the credit note reverses, how its total is settled (the amount
//! due falls first, then what was paid is refunded), and how a referral reward earned from the
//! invoice shrinks. The store, the gateway and the renderings are the jobs' and documents'.
//!
//! All amounts are minor units of the invoice's currency; what is credited is positive.

use rust_decimal::Decimal;

use super::locale::Language;
use super::money::{Overflow, checked_sum, percent_of};

/// What the operator asks to credit, excluding VAT (as invoice lines are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditRequest {
    /// Whatever is left to credit on the invoice: every line's rest, less the discounts' rest.
    Full,
    /// Parts of the invoice's lines: (line index, from 0; amount excluding VAT).
    Lines(Vec<(usize, i64)>),
    /// A commercial gesture not tied to a line.
    Amount(i64),
}

/// The invoice as a credit note sees it: its lines' net amounts, its discounts, its VAT and what
/// earlier credit notes took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creditable {
    /// The invoice lines' amounts, excluding VAT.
    pub line_amounts: Vec<i64>,
    /// The referral discount on the invoice (positive).
    pub discount: i64,
    pub tax_rate: Decimal,
    /// The invoice's VAT.
    pub tax: i64,
    /// Net credited so far on each line, by earlier credit notes (same length as the lines).
    pub credited_lines: Vec<i64>,
    /// Net credited so far as gestures and full credits beyond the lines' parts (the discount's
    /// share a full credit note gives back is counted here, negative).
    pub credited_other: i64,
    /// VAT credited so far.
    pub credited_tax: i64,
}

/// One line of a credit note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditLine {
    /// The invoice line it credits; `None` for a commercial gesture or the discount's share.
    pub invoice_line: Option<usize>,
    pub kind: CreditLineKind,
    /// Excluding VAT; negative only for the discount's share of a full credit.
    pub amount: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditLineKind {
    /// A part (or the whole rest) of an invoice line.
    Line,
    /// A commercial gesture.
    Gesture,
    /// On a full credit: the invoice's referral discount and what gestures already credited,
    /// deducted from the lines' rest, so the credit note returns no more than is left.
    Deduction,
}

impl CreditLineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditLineKind::Line => "line",
            CreditLineKind::Gesture => "gesture",
            CreditLineKind::Deduction => "deduction",
        }
    }

    pub fn parse(s: &str) -> Option<CreditLineKind> {
        match s {
            "line" => Some(CreditLineKind::Line),
            "gesture" => Some(CreditLineKind::Gesture),
            "deduction" => Some(CreditLineKind::Deduction),
            _ => None,
        }
    }
}

/// A credit note line's description in the credit note's language: a credited invoice line
/// keeps the invoice line's own words, prefixed by what it is.
pub fn describe(kind: CreditLineKind, invoice_line: Option<&str>, language: Language) -> String {
    match (kind, invoice_line, language) {
        (CreditLineKind::Line, Some(d), _) => d.to_string(),
        (CreditLineKind::Line, None, Language::Fr) => "Ligne de facture".to_string(),
        (CreditLineKind::Line, None, Language::En) => "Invoice line".to_string(),
        (CreditLineKind::Gesture, _, Language::Fr) => "Geste commercial".to_string(),
        (CreditLineKind::Gesture, _, Language::En) => "Commercial gesture".to_string(),
        (CreditLineKind::Deduction, _, Language::Fr) => {
            "Remises de la facture, déjà déduites".to_string()
        }
        (CreditLineKind::Deduction, _, Language::En) => {
            "The invoice's discounts, already deducted".to_string()
        }
    }
}

/// A credit note's amounts before it is numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditDraft {
    pub lines: Vec<CreditLine>,
    /// Σ lines, excluding VAT.
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditError {
    #[error("nothing to credit: an amount must be above zero")]
    NotPositive,
    #[error("the invoice has no line {0} (it has {1})")]
    NoSuchLine(usize, usize),
    #[error("line {line}: {asked} asked, {left} left to credit on it (excluding VAT)")]
    LineExceeded { line: usize, asked: i64, left: i64 },
    #[error("{asked} asked, {left} left to credit on the invoice (excluding VAT)")]
    InvoiceExceeded { asked: i64, left: i64 },
    #[error("the invoice is already fully credited")]
    NothingLeft,
    #[error(transparent)]
    Overflow(#[from] Overflow),
}

impl Creditable {
    /// The invoice's taxable base: Σ lines − discount.
    pub fn base(&self) -> Result<i64, Overflow> {
        checked_sum(self.line_amounts.iter().copied(), "the invoice's subtotal")?
            .checked_sub(self.discount)
            .ok_or(Overflow::of("the invoice's taxable base"))
    }

    /// Net credited so far.
    pub fn credited(&self) -> Result<i64, Overflow> {
        checked_sum(
            self.credited_lines
                .iter()
                .copied()
                .chain([self.credited_other]),
            "the amount credited",
        )
    }

    /// Net left to credit: never more than the invoice's taxable base in all.
    pub fn left(&self) -> Result<i64, Overflow> {
        Ok(self.base()?.saturating_sub(self.credited()?).max(0))
    }

    fn line_left(&self, i: usize) -> i64 {
        let credited = self.credited_lines.get(i).copied().unwrap_or(0);
        (self.line_amounts[i] - credited).max(0)
    }
}

/// The credit note a request gives, or why it is refused. Together, an invoice's credit notes
/// never exceed it: neither any line, nor its taxable base, nor its VAT. The VAT is the
/// invoice's own rate on the credited net, rounded half away from zero, except that the credit
/// note which completes the invoice takes exactly the VAT left, so the VAT credited in all is
/// the invoice's VAT to the cent.
pub fn draft(inv: &Creditable, request: &CreditRequest) -> Result<CreditDraft, CreditError> {
    let left = inv.left()?;
    let lines = match request {
        CreditRequest::Full => {
            if left == 0 {
                return Err(CreditError::NothingLeft);
            }
            let mut lines: Vec<CreditLine> = (0..inv.line_amounts.len())
                .filter(|&i| inv.line_left(i) > 0)
                .map(|i| CreditLine {
                    invoice_line: Some(i),
                    kind: CreditLineKind::Line,
                    amount: inv.line_left(i),
                })
                .collect();
            let lines_total = checked_sum(lines.iter().map(|l| l.amount), "the credit")?;
            // What the lines' rest exceeds the invoice's rest by is the discount not yet taken
            // back (or gestures already credited beyond the lines).
            let excess = lines_total - left;
            if excess > 0 {
                lines.push(CreditLine {
                    invoice_line: None,
                    kind: CreditLineKind::Deduction,
                    amount: -excess,
                });
            } else if excess < 0 {
                lines.push(CreditLine {
                    invoice_line: None,
                    kind: CreditLineKind::Gesture,
                    amount: -excess,
                });
            }
            lines
        }
        CreditRequest::Lines(parts) => {
            let mut asked_per_line = vec![0i64; inv.line_amounts.len()];
            let mut lines = Vec::with_capacity(parts.len());
            for &(i, amount) in parts {
                if amount <= 0 {
                    return Err(CreditError::NotPositive);
                }
                if i >= inv.line_amounts.len() {
                    return Err(CreditError::NoSuchLine(i + 1, inv.line_amounts.len()));
                }
                asked_per_line[i] = asked_per_line[i]
                    .checked_add(amount)
                    .ok_or(Overflow::of("the credit"))?;
                if asked_per_line[i] > inv.line_left(i) {
                    return Err(CreditError::LineExceeded {
                        line: i + 1,
                        asked: asked_per_line[i],
                        left: inv.line_left(i),
                    });
                }
                lines.push(CreditLine {
                    invoice_line: Some(i),
                    kind: CreditLineKind::Line,
                    amount,
                });
            }
            lines
        }
        CreditRequest::Amount(amount) => {
            if *amount <= 0 {
                return Err(CreditError::NotPositive);
            }
            vec![CreditLine {
                invoice_line: None,
                kind: CreditLineKind::Gesture,
                amount: *amount,
            }]
        }
    };
    let subtotal = checked_sum(lines.iter().map(|l| l.amount), "the credit")?;
    if subtotal <= 0 {
        return Err(CreditError::NotPositive);
    }
    if subtotal > left {
        return Err(CreditError::InvoiceExceeded {
            asked: subtotal,
            left,
        });
    }
    let tax_left = (inv.tax - inv.credited_tax).max(0);
    let tax = if subtotal == left {
        tax_left
    } else {
        percent_of(subtotal, inv.tax_rate, "the credit's VAT")?.min(tax_left)
    };
    let total = subtotal
        .checked_add(tax)
        .ok_or(Overflow::of("the credit's total"))?;
    Ok(CreditDraft {
        lines,
        subtotal,
        tax,
        total,
    })
}

/// How an invoice was paid, and what earlier credit notes already gave back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paid {
    /// Still owed on the invoice.
    pub amount_due: i64,
    /// Paid through the gateway (card, SEPA), less what was refunded through it.
    pub by_gateway: i64,
    /// Paid with prepaid credit, less what was given back to the credit.
    pub by_credit: i64,
}

/// Where a refund goes, as the operator asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundMethod {
    /// As it was paid: the gateway and the credit in proportion of what each paid.
    Auto,
    /// Back to the card or SEPA account that paid (Stripe Refunds).
    Gateway,
    /// To the account's prepaid credit (the default for what credit paid).
    Credit,
    /// Settled outside billrun: recorded only.
    None,
}

impl RefundMethod {
    /// As `--refund` takes it and the store keeps it.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundMethod::Auto => "auto",
            RefundMethod::Gateway => "card",
            RefundMethod::Credit => "credit",
            RefundMethod::None => "none",
        }
    }

    /// `card` and `sepa` both mean the gateway: the refund goes back to whatever paid.
    pub fn parse(s: &str) -> Option<RefundMethod> {
        match s {
            "auto" => Some(RefundMethod::Auto),
            "card" | "sepa" => Some(RefundMethod::Gateway),
            "credit" => Some(RefundMethod::Credit),
            "none" => Some(RefundMethod::None),
            _ => None,
        }
    }
}

/// Where one refund through the gateway stands (`refunds.status`), stored under its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayRefundStatus {
    /// Recorded with the credit note; the gateway is asked after commit.
    Requested,
    /// Accepted by the gateway, not yet paid out (Stripe's `pending`).
    Pending,
    Succeeded,
    Failed,
    /// Asked with no conclusive answer: asked again under the same key.
    Unknown,
    /// A failed refund the operator settled otherwise (to the credit, or outside billrun).
    Rerouted,
}

impl GatewayRefundStatus {
    pub const ALL: &[GatewayRefundStatus] = &[
        GatewayRefundStatus::Requested,
        GatewayRefundStatus::Pending,
        GatewayRefundStatus::Succeeded,
        GatewayRefundStatus::Failed,
        GatewayRefundStatus::Unknown,
        GatewayRefundStatus::Rerouted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayRefundStatus::Requested => "requested",
            GatewayRefundStatus::Pending => "pending",
            GatewayRefundStatus::Succeeded => "succeeded",
            GatewayRefundStatus::Failed => "failed",
            GatewayRefundStatus::Unknown => "unknown",
            GatewayRefundStatus::Rerouted => "rerouted",
        }
    }

    pub fn parse(s: &str) -> Option<GatewayRefundStatus> {
        GatewayRefundStatus::ALL
            .iter()
            .copied()
            .find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for GatewayRefundStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for GatewayRefundStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How a credit note's total is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settlement {
    /// Taken off what the invoice still owes.
    pub reduce_due: i64,
    /// Refunded through the gateway.
    pub gateway: i64,
    /// Given back to the prepaid credit.
    pub credit: i64,
    /// Recorded as settled outside billrun.
    pub outside: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    #[error("{asked} to refund through the gateway, but only {paid} was paid through it")]
    GatewayExceeded { asked: i64, paid: i64 },
}

/// Settles a credit note of `total`: what the invoice still owes falls first (a credit note on
/// an unpaid invoice refunds nothing); the rest was paid and is refunded as `method` says.
pub fn settle(total: i64, paid: Paid, method: RefundMethod) -> Result<Settlement, SettleError> {
    let reduce_due = total.min(paid.amount_due.max(0));
    let rest = total - reduce_due;
    let mut s = Settlement {
        reduce_due,
        ..Settlement::default()
    };
    match method {
        RefundMethod::Auto => {
            let (g, c) = (paid.by_gateway.max(0), paid.by_credit.max(0));
            let paid_total = i128::from(g) + i128::from(c);
            if paid_total == 0 {
                // Nothing was paid through either: what is left goes back to the credit.
                s.credit = rest;
            } else {
                let share =
                    super::money::div_round_half_away(i128::from(rest) * i128::from(g), paid_total);
                s.gateway = i64::try_from(share).unwrap_or(rest).min(g).min(rest);
                s.credit = rest - s.gateway;
            }
        }
        RefundMethod::Gateway => {
            if rest > paid.by_gateway.max(0) {
                return Err(SettleError::GatewayExceeded {
                    asked: rest,
                    paid: paid.by_gateway.max(0),
                });
            }
            s.gateway = rest;
        }
        RefundMethod::Credit => s.credit = rest,
        RefundMethod::None => s.outside = rest,
    }
    Ok(s)
}

/// A referral reward earned from an invoice, after the invoice is credited: it shrinks by the
/// share of the invoice's taxable base credited. What the referrer already used stays used;
/// what remains to use is the shrunk reward less what was used, never below zero.
/// Returns (the reward now, what remains to use).
pub fn shrink_reward(reward: i64, used: i64, taxable_base: i64, credited_net: i64) -> (i64, i64) {
    if taxable_base <= 0 {
        return (reward, (reward - used).max(0));
    }
    let kept_base = (taxable_base - credited_net).clamp(0, taxable_base);
    let now = super::money::div_round_half_away(
        i128::from(reward) * i128::from(kept_base),
        i128::from(taxable_base),
    );
    // |now| <= |reward|: kept_base <= taxable_base.
    let now = i64::try_from(now).unwrap_or(reward);
    (now, (now - used).max(0))
}

/// A credit note's number in its own gapless yearly series: `AV-2026-000001`.
pub fn format_number(year: i32, n: i64) -> String {
    format!("AV-{year:04}-{n:06}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_gateway_refund_status_reads_back_from_its_name() {
        for st in GatewayRefundStatus::ALL {
            assert_eq!(GatewayRefundStatus::parse(st.as_str()), Some(*st));
            assert_eq!(st.to_string(), st.as_str());
        }
        assert_eq!(GatewayRefundStatus::parse("refunded"), None);
    }

    use super::*;
    use proptest::prelude::*;

    fn invoice() -> Creditable {
        // Two lines (28.80 + 7.20), a referral discount of 6.00, VAT 20 %: base 30.00, VAT 6.00.
        Creditable {
            line_amounts: vec![2880, 720],
            discount: 600,
            tax_rate: Decimal::from(20),
            tax: 600,
            credited_lines: vec![0, 0],
            credited_other: 0,
            credited_tax: 0,
        }
    }

    fn after(inv: &Creditable, d: &CreditDraft) -> Creditable {
        let mut next = inv.clone();
        for l in &d.lines {
            match l.invoice_line {
                Some(i) => next.credited_lines[i] += l.amount,
                None => next.credited_other += l.amount,
            }
        }
        next.credited_tax += d.tax;
        next
    }

    #[test]
    fn cgi_272_a_full_credit_note_reverses_the_invoice_to_the_cent_discount_included() {
        let d = draft(&invoice(), &CreditRequest::Full).unwrap();
        assert_eq!((d.subtotal, d.tax, d.total), (3000, 600, 3600));
        assert_eq!(
            d.lines
                .iter()
                .map(|l| (l.kind, l.amount))
                .collect::<Vec<_>>(),
            vec![
                (CreditLineKind::Line, 2880),
                (CreditLineKind::Line, 720),
                (CreditLineKind::Deduction, -600)
            ]
        );
        let done = after(&invoice(), &d);
        assert_eq!(
            draft(&done, &CreditRequest::Full),
            Err(CreditError::NothingLeft)
        );
    }

    #[test]
    fn cgi_272_partial_credit_notes_never_exceed_a_line_or_the_invoice() {
        let inv = invoice();
        let d = draft(&inv, &CreditRequest::Lines(vec![(1, 500)])).unwrap();
        assert_eq!((d.subtotal, d.tax, d.total), (500, 100, 600));
        let inv = after(&inv, &d);
        assert_eq!(
            draft(&inv, &CreditRequest::Lines(vec![(1, 221)])),
            Err(CreditError::LineExceeded {
                line: 2,
                asked: 221,
                left: 220
            })
        );
        assert_eq!(
            draft(&inv, &CreditRequest::Lines(vec![(2, 1)])),
            Err(CreditError::NoSuchLine(3, 2))
        );
        // The lines' rest is 3,100 but the invoice's rest is 2,500 (the discount took 600).
        assert_eq!(
            draft(&inv, &CreditRequest::Amount(2501)),
            Err(CreditError::InvoiceExceeded {
                asked: 2501,
                left: 2500
            })
        );
        let last = draft(&inv, &CreditRequest::Full).unwrap();
        assert_eq!((last.subtotal, last.tax), (2500, 500));
        assert_eq!(
            draft(&inv, &CreditRequest::Amount(0)),
            Err(CreditError::NotPositive)
        );
    }

    #[test]
    fn the_credit_note_completing_an_invoice_takes_exactly_the_vat_left() {
        // Three gestures of 3.33 on a 10.00 base at 5.5 %: 0.18 VAT each by rounding, so the
        // last one takes what is left and the VAT credited in all is the invoice's 0.55.
        let inv = Creditable {
            line_amounts: vec![1000],
            discount: 0,
            tax_rate: Decimal::new(55, 1),
            tax: 55,
            credited_lines: vec![0],
            credited_other: 0,
            credited_tax: 0,
        };
        let a = draft(&inv, &CreditRequest::Amount(333)).unwrap();
        let inv = after(&inv, &a);
        let b = draft(&inv, &CreditRequest::Amount(333)).unwrap();
        let inv = after(&inv, &b);
        let c = draft(&inv, &CreditRequest::Full).unwrap();
        assert_eq!((a.tax, b.tax, c.subtotal, c.tax), (18, 18, 334, 19));
    }

    #[test]
    fn an_unpaid_invoice_is_reduced_before_anything_is_refunded() {
        let paid = Paid {
            amount_due: 1000,
            by_gateway: 0,
            by_credit: 2600,
        };
        let s = settle(3600, paid, RefundMethod::Auto).unwrap();
        assert_eq!((s.reduce_due, s.gateway, s.credit), (1000, 0, 2600));
        // Paid half by card, half by credit: auto follows how it was paid.
        let paid = Paid {
            amount_due: 0,
            by_gateway: 1800,
            by_credit: 1800,
        };
        let s = settle(1001, paid, RefundMethod::Auto).unwrap();
        assert_eq!((s.gateway, s.credit), (501, 500));
        assert_eq!(
            settle(2000, paid, RefundMethod::Gateway),
            Err(SettleError::GatewayExceeded {
                asked: 2000,
                paid: 1800
            })
        );
        let s = settle(2000, paid, RefundMethod::None).unwrap();
        assert_eq!((s.outside, s.gateway, s.credit), (2000, 0, 0));
    }

    #[test]
    fn a_reward_shrinks_by_the_credited_share_and_what_was_used_stays_used() {
        // A 6.00 reward from a 30.00 base; half the base credited: the reward is now 3.00.
        assert_eq!(shrink_reward(600, 0, 3000, 1500), (300, 300));
        // 5.00 already used: nothing remains, never below zero.
        assert_eq!(shrink_reward(600, 500, 3000, 1500), (300, 0));
        assert_eq!(shrink_reward(600, 100, 3000, 3000), (0, 0));
        assert_eq!(format_number(2026, 1), "AV-2026-000001");
    }

    proptest! {
        /// Any sequence of requests: what is accepted never exceeds the invoice (net and VAT),
        /// and a final full credit brings both to the invoice's exact amounts.
        #[test]
        fn credit_notes_together_never_exceed_the_invoice(
            lines in proptest::collection::vec(1i64..100_000, 1..5),
            discount_pct in 0i64..50,
            rate in prop_oneof![Just(Decimal::from(20)), Just(Decimal::new(55, 1)), Just(Decimal::ZERO)],
            requests in proptest::collection::vec((0usize..6, 1i64..60_000, any::<bool>()), 0..8),
        ) {
            let subtotal: i64 = lines.iter().sum();
            let discount = subtotal * discount_pct / 100;
            let tax = percent_of(subtotal - discount, rate, "vat").unwrap();
            let mut inv = Creditable {
                credited_lines: vec![0; lines.len()],
                line_amounts: lines,
                discount,
                tax_rate: rate,
                tax,
                credited_other: 0,
                credited_tax: 0,
            };
            for (line, amount, gesture) in requests {
                let req = if gesture {
                    CreditRequest::Amount(amount)
                } else {
                    CreditRequest::Lines(vec![(line, amount)])
                };
                if let Ok(d) = draft(&inv, &req) {
                    prop_assert!(d.subtotal > 0 && d.tax >= 0);
                    inv = after(&inv, &d);
                    prop_assert!(inv.credited().unwrap() <= inv.base().unwrap());
                    prop_assert!(inv.credited_tax <= inv.tax);
                }
            }
            if let Ok(d) = draft(&inv, &CreditRequest::Full) {
                inv = after(&inv, &d);
            }
            prop_assert_eq!(inv.credited().unwrap(), inv.base().unwrap());
            prop_assert_eq!(inv.credited_tax, inv.tax);
        }

        #[test]
        fn a_settlement_adds_up_to_the_credit(
            total in 1i64..1_000_000, due in 0i64..1_000_000, g in 0i64..1_000_000, c in 0i64..1_000_000,
        ) {
            let paid = Paid { amount_due: due, by_gateway: g, by_credit: c };
            for method in [RefundMethod::Auto, RefundMethod::Credit, RefundMethod::None, RefundMethod::Gateway] {
                if let Ok(s) = settle(total, paid, method) {
                    prop_assert_eq!(s.reduce_due + s.gateway + s.credit + s.outside, total);
                    prop_assert!(s.reduce_due <= due);
                    prop_assert!(s.gateway >= 0 && s.gateway <= g);
                    prop_assert!(s.credit >= 0 && s.outside >= 0);
                }
            }
        }
    }
}
