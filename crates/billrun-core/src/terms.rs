//! Payment terms: one truth about when an invoice is paid, printed on the PDF and in the
//! emails, and followed by the suspend job.
//!
//! The truth: an invoice is collected automatically when it is issued (the collect job runs
//! right after the invoice job, and a final invoice is collected at once): prepaid credit
//! first, then the card or SEPA direct debit on file. A failed charge is retried on the
//! schedule. The due date (issue date + `due_days`) is the last day to pay; from the day after,
//! a business owes the late-payment penalties of article L441-10 of the Code de commerce and the
//! account may be suspended — never on the due date itself.

use chrono::{Duration, NaiveDate};

pub use super::locale::long_date;
use super::locale::{Language, Typography};
use super::money::Money;
use super::vat::BuyerKind;

/// The fixed compensation for recovery costs owed by a business paying late: 40 €
/// (article L441-10 II of the Code de commerce, amount set by article D441-5).
pub const RECOVERY_INDEMNITY_MINOR: i64 = 4000;

/// What the terms of an invoice are decided from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermsFacts {
    pub due_date: NaiveDate,
    /// What the invoice asks for when it is issued (before credit is applied).
    pub amount_due_minor: i64,
    pub buyer: BuyerKind,
}

/// How the amount due is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// Nothing to pay (a zero invoice, or one met by discounts).
    NothingDue,
    /// Collected when the invoice is issued: credit first, then the card or SEPA debit on file.
    ChargedAtIssue,
}

/// Late-payment terms between businesses (article L441-10 of the Code de commerce): penalties
/// at three times the legal interest rate (the lowest rate the article allows a contract to
/// set) and the 40 € recovery indemnity (article D441-5), both from the day after the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatePayment {
    pub from: NaiveDate,
    pub recovery_indemnity_minor: i64,
}

/// The payment terms of one invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTerms {
    pub collection: Collection,
    pub due_date: NaiveDate,
    /// `None` for a consumer: article L441-10 binds professionals only.
    pub late_payment: Option<LatePayment>,
    /// The first day the account may be suspended if the invoice is still unpaid.
    pub suspension_from: NaiveDate,
}

/// The first day after the due date: penalties run and suspension may happen from then.
pub fn day_after_due(due_date: NaiveDate) -> NaiveDate {
    due_date + Duration::days(1)
}

/// Whether an invoice due on `due_date` is overdue on `today` (the due date itself is not).
pub fn is_overdue(due_date: NaiveDate, today: NaiveDate) -> bool {
    today >= day_after_due(due_date)
}

pub fn payment_terms(f: &TermsFacts) -> PaymentTerms {
    let after = day_after_due(f.due_date);
    PaymentTerms {
        collection: if f.amount_due_minor > 0 {
            Collection::ChargedAtIssue
        } else {
            Collection::NothingDue
        },
        due_date: f.due_date,
        late_payment: match f.buyer {
            BuyerKind::Business => Some(LatePayment {
                from: after,
                recovery_indemnity_minor: RECOVERY_INDEMNITY_MINOR,
            }),
            BuyerKind::Consumer => None,
        },
        suspension_from: after,
    }
}

/// Whole euros without cents: `40 €`, `€40`.
fn euros(minor: i64, language: Language) -> String {
    let amount = Money::eur(minor).to_decimal();
    let amount = if minor % 100 == 0 {
        amount.trunc()
    } else {
        amount
    };
    super::locale::euros(amount, language, Typography::Plain)
}

impl PaymentTerms {
    /// How and when the invoice is paid, one sentence.
    pub fn collection_sentence(&self, language: Language) -> String {
        match (self.collection, language) {
            (Collection::NothingDue, Language::Fr) => {
                "Aucun paiement n'est dû pour cette facture.".to_string()
            }
            (Collection::NothingDue, Language::En) => {
                "No payment is due for this invoice.".to_string()
            }
            (Collection::ChargedAtIssue, Language::Fr) => {
                "Paiement prélevé automatiquement à l'émission de la facture : le crédit prépayé \
                 est utilisé en premier, puis le reste est débité sur la carte bancaire ou par \
                 prélèvement SEPA enregistré sur le compte."
                    .to_string()
            }
            (Collection::ChargedAtIssue, Language::En) => {
                "Payment is collected automatically when the invoice is issued: prepaid credit \
                 is used first, then the rest is charged to the card or SEPA direct debit on \
                 file."
                    .to_string()
            }
        }
    }

    /// The due date and what follows it, one sentence (none when nothing is due).
    pub fn due_sentence(&self, language: Language) -> Option<String> {
        let due = long_date(self.due_date, language);
        let after = long_date(self.suspension_from, language);
        match (self.collection, language) {
            (Collection::NothingDue, _) => None,
            (Collection::ChargedAtIssue, Language::Fr) => Some(format!(
                "Date d'échéance : {due}. Si le paiement échoue, nous réessayons \
                 automatiquement ; un montant encore impayé après l'échéance peut entraîner la \
                 suspension du compte à partir du {after}."
            )),
            (Collection::ChargedAtIssue, Language::En) => Some(format!(
                "Due date: {due}. If the payment fails, we retry automatically; an amount still \
                 unpaid after the due date may lead to the account's suspension from {after}."
            )),
        }
    }

    /// The collection and due-date sentences, as the emails and the PDF print them.
    pub fn text(&self, language: Language) -> String {
        let mut s = self.collection_sentence(language);
        if let Some(due) = self.due_sentence(language) {
            s.push(' ');
            s.push_str(&due);
        }
        s
    }

    /// The late-payment mention of a business invoice (article L441-10 of the Code de
    /// commerce; the 40 € indemnity of article D441-5); `None` on a consumer's invoice.
    pub fn late_payment_sentence(&self, language: Language) -> Option<String> {
        let late = self.late_payment?;
        let from = long_date(late.from, language);
        let indemnity = euros(late.recovery_indemnity_minor, language);
        Some(match language {
            Language::Fr => format!(
                "En cas de retard de paiement, des pénalités de retard sont exigibles de plein \
                 droit à compter du {from}, au taux de trois fois le taux d'intérêt légal, ainsi \
                 qu'une indemnité forfaitaire pour frais de recouvrement de {indemnity} (articles \
                 L441-10 et D441-5 du Code de commerce)."
            ),
            Language::En => format!(
                "In case of late payment, late-payment penalties are due by operation of law \
                 from {from}, at three times the French legal interest rate, together with a \
                 fixed compensation for recovery costs of {indemnity} (articles L441-10 and \
                 D441-5 of the French Commercial Code)."
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn facts(buyer: BuyerKind, due: i64) -> TermsFacts {
        TermsFacts {
            due_date: d("2026-11-16"),
            amount_due_minor: due,
            buyer,
        }
    }

    #[test]
    fn charged_at_issue_never_says_on_receipt_or_on_the_due_date() {
        let t = payment_terms(&facts(BuyerKind::Consumer, 1481));
        assert_eq!(t.collection, Collection::ChargedAtIssue);
        for lang in [Language::Fr, Language::En] {
            let text = t.text(lang);
            assert!(
                !text.contains("réception") && !text.contains("receipt"),
                "{text}"
            );
            assert!(text.contains("16"), "{text}");
        }
        assert!(t.text(Language::Fr).contains("à l'émission de la facture"));
        assert!(
            t.text(Language::Fr)
                .contains("Date d'échéance : 16 novembre 2026")
        );
        assert!(t.text(Language::En).contains("when the invoice is issued"));
        assert!(
            t.text(Language::En)
                .contains("suspension from 17 November 2026")
        );
    }

    #[test]
    fn the_due_date_itself_is_not_overdue_the_day_after_is() {
        let due = d("2026-11-16");
        assert!(!is_overdue(due, d("2026-11-15")));
        assert!(!is_overdue(due, due));
        assert!(is_overdue(due, d("2026-11-17")));
        assert_eq!(
            payment_terms(&facts(BuyerKind::Business, 1)).suspension_from,
            d("2026-11-17")
        );
    }

    #[test]
    fn late_penalties_and_40_eur_indemnity_l441_10_d441_5_code_de_commerce_for_businesses_only() {
        let b2b = payment_terms(&facts(BuyerKind::Business, 1481));
        assert_eq!(
            b2b.late_payment,
            Some(LatePayment {
                from: d("2026-11-17"),
                recovery_indemnity_minor: 4000
            })
        );
        let fr = b2b.late_payment_sentence(Language::Fr).unwrap();
        assert!(fr.contains("à compter du 17 novembre 2026"), "{fr}");
        assert!(fr.contains("trois fois le taux d'intérêt légal"), "{fr}");
        assert!(fr.contains("40 € (articles L441-10 et D441-5"), "{fr}");
        let en = b2b.late_payment_sentence(Language::En).unwrap();
        assert!(en.contains("recovery costs of €40"), "{en}");
        let b2c = payment_terms(&facts(BuyerKind::Consumer, 1481));
        assert_eq!(b2c.late_payment, None);
        assert_eq!(b2c.late_payment_sentence(Language::Fr), None);
    }

    #[test]
    fn nothing_due_says_so_and_has_no_due_sentence() {
        let t = payment_terms(&facts(BuyerKind::Business, 0));
        assert_eq!(t.collection, Collection::NothingDue);
        assert_eq!(t.due_sentence(Language::En), None);
        assert_eq!(t.text(Language::En), "No payment is due for this invoice.");
    }
}
