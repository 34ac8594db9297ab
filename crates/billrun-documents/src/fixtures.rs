//! Hand-built credit notes for the tests of the renderers (PDF, XML, email).

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use billrun_core::credit_note::{CreditLineKind, RefundMethod};
use billrun_core::document::{
    Buyer, CreditNote, CreditNoteLine, CreditNoteRefund, RefundStatus, Seller,
};
use billrun_core::ids::{AccountId, CreditNoteId, InvoiceId};
use billrun_core::locale::Language;
use billrun_core::money::{Currency, Money};
use billrun_core::period::Period;
use billrun_core::vat::VatCase;

pub(crate) fn seller() -> Seller {
    Seller {
        name: "Nuage Ardent".into(),
        legal_form: "SAS au capital de 10 000 €".into(),
        address: vec!["12 rue de la Forêt".into(), "69002 Lyon".into()],
        rcs: "RCS Lyon 912 345 678".into(),
        siren: "912 345 678".into(),
        siret: "912 345 678 00019".into(),
        vat_number: "FR32912345678".into(),
        email: "facturation@nuage-ardent.fr".into(),
        website: "https://nuage-ardent.fr".into(),
        iban: None,
        electronic_address: None,
        sepa_creditor_id: None,
    }
}

fn line(
    description: &str,
    invoice_line: Option<u32>,
    kind: CreditLineKind,
    minor: i64,
) -> CreditNoteLine {
    CreditNoteLine {
        description: description.into(),
        invoice_line,
        kind,
        amount: Money::eur(minor),
    }
}

fn refund(
    method: RefundMethod,
    reduce_due: i64,
    to_payment_method: i64,
    to_credit: i64,
) -> CreditNoteRefund {
    CreditNoteRefund {
        method,
        reduce_due: Money::eur(reduce_due),
        to_payment_method: Money::eur(to_payment_method),
        to_credit: Money::eur(to_credit),
        outside: Money::eur(0),
        status: if to_payment_method + to_credit > 0 {
            RefundStatus::Pending
        } else {
            RefundStatus::NotNeeded
        },
        rerouted: Vec::new(),
    }
}

/// A French business's credit note, domestic VAT at 20 %: part of one line credited (10.00
/// excl. VAT), taken off what the invoice still owed.
pub(crate) fn domestic_partial(language: Language) -> CreditNote {
    CreditNote {
        id: Some(CreditNoteId(7)),
        number: Some("AV-2026-000001".into()),
        invoice_id: InvoiceId(42),
        invoice_number: "2026-000001".into(),
        invoice_issued_at: Utc.with_ymd_and_hms(2026, 11, 1, 6, 0, 0).unwrap(),
        invoice_period: Period::new(2026, 10).unwrap(),
        account_id: AccountId::from("acc-fr-business"),
        issued_at: Utc.with_ymd_and_hms(2026, 11, 15, 9, 30, 0).unwrap(),
        reason: "Instance indisponible du 3 au 5 octobre".into(),
        currency: Currency::Eur,
        language,
        buyer: Buyer {
            name: "Bernard Martin".into(),
            company: Some("Martin & Fils SARL".into()),
            address: "5 quai Kléber\n67000 Strasbourg".into(),
            country: "FR".into(),
            vat_number: Some("FR83404833048".into()),
            vies_consultation: None,
            siren: None,
            electronic_address: None,
        },
        lines: vec![line(
            "web – conteneur M (octobre 2026)",
            Some(1),
            CreditLineKind::Line,
            1000,
        )],
        subtotal: Money::eur(1000),
        vat_case: VatCase::Domestic,
        tax_rate: Decimal::new(20, 0),
        tax: Money::eur(200),
        total: Money::eur(1200),
        refund: refund(RefundMethod::Auto, 1200, 0, 0),
    }
}

/// A full credit of a paid invoice with two lines and a referral discount (the deduction
/// line), domestic VAT at 20 %, refunded to the card.
pub(crate) fn domestic_full_with_deduction(language: Language) -> CreditNote {
    let mut cn = domestic_partial(language);
    cn.reason = "Facture émise par erreur".into();
    cn.lines = vec![
        line(
            "web – conteneur M (octobre 2026)",
            Some(1),
            CreditLineKind::Line,
            1488,
        ),
        line(
            "db – addon postgres S (octobre 2026)",
            Some(2),
            CreditLineKind::Line,
            1488,
        ),
        line(
            &billrun_core::credit_note::describe(CreditLineKind::Deduction, None, language),
            None,
            CreditLineKind::Deduction,
            -500,
        ),
    ];
    cn.subtotal = Money::eur(2476);
    cn.tax = Money::eur(495);
    cn.total = Money::eur(2971);
    cn.refund = refund(RefundMethod::Auto, 0, 2971, 0);
    cn
}

/// A commercial gesture to a German business, reverse charge (AE), given to its prepaid
/// credit.
pub(crate) fn reverse_charge_gesture(language: Language) -> CreditNote {
    let mut cn = domestic_partial(language);
    cn.number = Some("AV-2026-000002".into());
    cn.invoice_number = "2026-000002".into();
    cn.reason = "Geste commercial après un incident".into();
    cn.buyer = Buyer {
        name: "Jürgen Weiß".into(),
        company: Some("Søren & Weiß GmbH".into()),
        address: "Straße des 17. Juni 1\n10623 Berlin".into(),
        country: "DE".into(),
        vat_number: Some("DE123456789".into()),
        vies_consultation: Some("WAPIAAAAX1234567".into()),
        siren: None,
        electronic_address: None,
    };
    cn.lines = vec![line(
        &billrun_core::credit_note::describe(CreditLineKind::Gesture, None, language),
        None,
        CreditLineKind::Gesture,
        500,
    )];
    cn.vat_case = VatCase::ReverseCharge;
    cn.tax_rate = Decimal::ZERO;
    cn.subtotal = Money::eur(500);
    cn.tax = Money::eur(0);
    cn.total = Money::eur(500);
    cn.refund = refund(RefundMethod::Credit, 0, 0, 500);
    cn
}

/// A US business, outside the scope of French VAT (G, export outside the EU): half of the
/// amount taken off what was owed, half refunded to the card.
pub(crate) fn export_outside_eu(language: Language) -> CreditNote {
    let mut cn = domestic_partial(language);
    cn.number = Some("AV-2026-000003".into());
    cn.invoice_number = "2026-000003".into();
    cn.reason = "Overbilled hours".into();
    cn.buyer = Buyer {
        name: "Ada Smith".into(),
        company: Some("Smith Labs Inc.".into()),
        address: "1 Market Street\nSan Francisco, CA 94105".into(),
        country: "US".into(),
        vat_number: None,
        vies_consultation: None,
        siren: None,
        electronic_address: None,
    };
    cn.lines = vec![line(
        "api – container L (October 2026)",
        Some(1),
        CreditLineKind::Line,
        2000,
    )];
    cn.vat_case = VatCase::OutOfScope;
    cn.tax_rate = Decimal::ZERO;
    cn.subtotal = Money::eur(2000);
    cn.tax = Money::eur(0);
    cn.total = Money::eur(2000);
    cn.refund = refund(RefundMethod::Auto, 1000, 1000, 0);
    cn
}
