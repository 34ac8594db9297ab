//! VAT for a French seller of electronically supplied services (B2B and B2C).
//!
//! - customer in France: French VAT, 20%;
//! - customer in another EU state with a VAT number: reverse charge (0%, article 196 of
//!   Directive 2006/112/EC), the invoice says so;
//! - customer in another EU state without one (a consumer): that state's standard rate, from
//!   `vat_rates.csv` (with effective dates) — the OSS rules for e-services;
//! - customer outside the EU: 0%, outside the scope of EU VAT: a business by article 259-1 of
//!   the CGI, a consumer by article 259 B (electronically supplied services); see [`mention`].

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::countries::is_eu_member;
use super::invoice::Language;
use super::money::{Overflow, percent_of};

/// The VAT case of an invoice, decided by the customer's country and VAT number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VatCase {
    /// Customer in France: French VAT.
    Domestic,
    /// EU business customer outside France: the customer accounts for the VAT.
    ReverseCharge,
    /// EU consumer outside France: the VAT of the customer's country.
    EuConsumer,
    /// Customer outside the EU: out of scope of EU VAT.
    OutOfScope,
}

impl VatCase {
    pub fn as_str(self) -> &'static str {
        match self {
            VatCase::Domestic => "domestic",
            VatCase::ReverseCharge => "reverse_charge",
            VatCase::EuConsumer => "eu_consumer",
            VatCase::OutOfScope => "out_of_scope",
        }
    }

    pub fn parse(s: &str) -> Option<VatCase> {
        match s {
            "domestic" => Some(VatCase::Domestic),
            "reverse_charge" => Some(VatCase::ReverseCharge),
            "eu_consumer" => Some(VatCase::EuConsumer),
            "out_of_scope" => Some(VatCase::OutOfScope),
            _ => None,
        }
    }
}

/// Whether the buyer acts as a business (a taxable person) or as a consumer. A buyer that gives
/// a VAT number or a company name is a business; anyone else is a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuyerKind {
    Business,
    Consumer,
}

impl BuyerKind {
    pub fn of(company: Option<&str>, vat_number: Option<&str>) -> BuyerKind {
        let given = |s: Option<&str>| s.is_some_and(|v| !v.trim().is_empty());
        if given(company) || given(vat_number) {
            BuyerKind::Business
        } else {
            BuyerKind::Consumer
        }
    }
}

/// The VAT mention an invoice must carry (article 242 nonies A, I-13° of annex II to the CGI:
/// the provision that exempts or moves the tax), in the invoice's language; `None` when VAT is
/// charged.
pub fn mention(case: VatCase, buyer: BuyerKind, language: Language) -> Option<&'static str> {
    match (case, buyer, language) {
        // French VAT (article 278 of the CGI) or, for an EU consumer, the VAT of their state
        // (article 259 D of the CGI, the OSS scheme): VAT is charged, no mention.
        (VatCase::Domestic | VatCase::EuConsumer, _, _) => None,
        // EU business: the customer accounts for the VAT (article 196 of Directive 2006/112/EC,
        // article 283-2 of the CGI); the invoice says "Autoliquidation".
        (VatCase::ReverseCharge, _, Language::Fr) => Some(
            "Autoliquidation — TVA due par le preneur (article 196 de la directive 2006/112/CE, \
             article 283-2 du CGI).",
        ),
        (VatCase::ReverseCharge, _, Language::En) => Some(
            "Autoliquidation — reverse charge: VAT due by the customer (article 196 of Directive \
             2006/112/EC).",
        ),
        // Business outside the EU: the service is supplied where the customer is established
        // (article 259-1 of the CGI).
        (VatCase::OutOfScope, BuyerKind::Business, Language::Fr) => Some(
            "TVA non applicable, article 259-1 du CGI (preneur assujetti établi hors de l'Union européenne).",
        ),
        (VatCase::OutOfScope, BuyerKind::Business, Language::En) => Some(
            "VAT not applicable, article 259-1 of the French CGI (business customer established outside the EU).",
        ),
        // Consumer outside the EU: electronically supplied services to a non-taxable person
        // established outside the EU are not supplied in France (article 259 B, 12° of the CGI).
        (VatCase::OutOfScope, BuyerKind::Consumer, Language::Fr) => Some(
            "TVA non applicable, article 259 B du CGI (service fourni par voie électronique à un \
             non-assujetti établi hors de l'Union européenne).",
        ),
        (VatCase::OutOfScope, BuyerKind::Consumer, Language::En) => Some(
            "VAT not applicable, article 259 B of the French CGI (electronically supplied service \
             to a non-taxable person established outside the EU).",
        ),
    }
}

/// The VAT that applies to an invoice: its case and rate in percent (`20` for 20%).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VatTreatment {
    pub case: VatCase,
    pub rate_percent: Decimal,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VatError {
    #[error("no standard VAT rate for {country} on {on} in the VAT table")]
    NoRate { country: String, on: NaiveDate },
}

#[derive(Debug, Clone)]
struct RateRow {
    rate: Decimal,
    from: NaiveDate,
}

static RATES: LazyLock<BTreeMap<String, Vec<RateRow>>> = LazyLock::new(|| {
    parse_rates(include_str!("vat_rates.csv")).expect("the bundled VAT table is valid")
});

fn parse_rates(text: &str) -> Result<BTreeMap<String, Vec<RateRow>>, String> {
    let mut out: BTreeMap<String, Vec<RateRow>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let mut cols = line.splitn(4, ',');
        let (Some(country), Some(rate), Some(from)) = (cols.next(), cols.next(), cols.next())
        else {
            return Err(format!(
                "vat_rates.csv line {}: expected country,rate,effective_from",
                i + 1
            ));
        };
        let rate = Decimal::from_str(rate).map_err(|e| format!("line {}: rate: {e}", i + 1))?;
        let from = NaiveDate::parse_from_str(from, "%Y-%m-%d")
            .map_err(|e| format!("line {}: effective_from: {e}", i + 1))?;
        out.entry(country.to_string())
            .or_default()
            .push(RateRow { rate, from });
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r.from);
    }
    Ok(out)
}

/// The standard VAT rate of an EU country on a date.
pub fn standard_rate(country: &str, on: NaiveDate) -> Result<Decimal, VatError> {
    RATES
        .get(country)
        .and_then(|rows| rows.iter().rev().find(|r| r.from <= on))
        .map(|r| r.rate)
        .ok_or_else(|| VatError::NoRate {
            country: country.to_string(),
            on,
        })
}

/// Decides the VAT of an invoice for a customer, at the date the supply is taxed (the last
/// day of the billed period).
pub fn treatment(
    country: &str,
    vat_number: Option<&str>,
    on: NaiveDate,
) -> Result<VatTreatment, VatError> {
    let has_vat_number = vat_number.is_some_and(|v| !v.trim().is_empty());
    if country == "FR" || country == "MC" {
        // Monaco is part of the French VAT territory.
        return Ok(VatTreatment {
            case: VatCase::Domestic,
            rate_percent: standard_rate("FR", on)?,
        });
    }
    if is_eu_member(country) {
        if has_vat_number {
            return Ok(VatTreatment {
                case: VatCase::ReverseCharge,
                rate_percent: Decimal::ZERO,
            });
        }
        return Ok(VatTreatment {
            case: VatCase::EuConsumer,
            rate_percent: standard_rate(country, on)?,
        });
    }
    Ok(VatTreatment {
        case: VatCase::OutOfScope,
        rate_percent: Decimal::ZERO,
    })
}

/// VAT on a taxable base in minor units, computed once and rounded half away from zero; an
/// error (never a panic) when it does not fit in minor units.
pub fn vat_on(base_minor: i64, rate_percent: Decimal) -> Result<i64, Overflow> {
    percent_of(base_minor, rate_percent, "VAT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::countries::EU_MEMBERS_FOR_TESTS;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_eu_member_has_a_rate_today() {
        for c in EU_MEMBERS_FOR_TESTS {
            assert!(standard_rate(c, d("2026-10-31")).is_ok(), "{c}");
        }
    }

    #[test]
    fn rates_follow_their_effective_dates() {
        assert_eq!(
            standard_rate("EE", d("2025-06-30")).unwrap(),
            Decimal::from(22)
        );
        assert_eq!(
            standard_rate("EE", d("2025-07-01")).unwrap(),
            Decimal::from(24)
        );
        assert_eq!(
            standard_rate("FI", d("2026-10-31")).unwrap(),
            Decimal::from_str("25.5").unwrap()
        );
        assert_eq!(
            standard_rate("DE", d("2020-10-31")).unwrap(),
            Decimal::from(16)
        );
        assert_eq!(
            standard_rate("DE", d("2026-10-31")).unwrap(),
            Decimal::from(19)
        );
    }

    #[test]
    fn the_four_cases() {
        let on = d("2026-10-31");
        let fr = treatment("FR", Some("FR40303265045"), on).unwrap();
        assert_eq!(
            (fr.case, fr.rate_percent),
            (VatCase::Domestic, Decimal::from(20))
        );
        let de_b2b = treatment("DE", Some("DE123456789"), on).unwrap();
        assert_eq!(
            (de_b2b.case, de_b2b.rate_percent),
            (VatCase::ReverseCharge, Decimal::ZERO)
        );
        let de_b2c = treatment("DE", None, on).unwrap();
        assert_eq!(
            (de_b2c.case, de_b2c.rate_percent),
            (VatCase::EuConsumer, Decimal::from(19))
        );
        let us = treatment("US", Some("12-3456789"), on).unwrap();
        assert_eq!(
            (us.case, us.rate_percent),
            (VatCase::OutOfScope, Decimal::ZERO)
        );
        let gb = treatment("GB", None, on).unwrap();
        assert_eq!(gb.case, VatCase::OutOfScope);
    }

    fn mentions(case: VatCase, buyer: BuyerKind) -> [Option<&'static str>; 2] {
        [Language::Fr, Language::En].map(|l| mention(case, buyer, l))
    }

    #[test]
    fn domestic_art_278_cgi_charges_vat_and_has_no_mention() {
        let t = treatment("FR", None, d("2026-10-31")).unwrap();
        assert_eq!(
            (t.case, t.rate_percent),
            (VatCase::Domestic, Decimal::from(20))
        );
        assert_eq!(
            mentions(VatCase::Domestic, BuyerKind::Business),
            [None, None]
        );
        assert_eq!(
            mentions(VatCase::Domestic, BuyerKind::Consumer),
            [None, None]
        );
    }

    #[test]
    fn eu_consumer_art_259_d_cgi_charges_the_member_state_vat_and_has_no_mention() {
        let t = treatment("BE", Some(" "), d("2026-10-31")).unwrap();
        assert_eq!(
            (t.case, t.rate_percent),
            (VatCase::EuConsumer, Decimal::from(21))
        );
        assert_eq!(
            mentions(VatCase::EuConsumer, BuyerKind::Consumer),
            [None, None]
        );
    }

    #[test]
    fn reverse_charge_art_196_directive_2006_112_and_283_2_cgi_says_autoliquidation() {
        let t = treatment("DE", Some("DE123456789"), d("2026-10-31")).unwrap();
        assert_eq!(t.case, VatCase::ReverseCharge);
        let [fr, en] = mentions(VatCase::ReverseCharge, BuyerKind::Business);
        assert!(fr.unwrap().starts_with("Autoliquidation"), "{fr:?}");
        assert!(
            fr.unwrap()
                .contains("article 196 de la directive 2006/112/CE")
        );
        assert!(en.unwrap().contains("Autoliquidation"), "{en:?}");
        assert!(en.unwrap().contains("article 196 of Directive 2006/112/EC"));
    }

    #[test]
    fn business_outside_the_eu_art_259_1_cgi() {
        let t = treatment("US", Some("12-3456789"), d("2026-10-31")).unwrap();
        assert_eq!(
            (t.case, t.rate_percent),
            (VatCase::OutOfScope, Decimal::ZERO)
        );
        assert_eq!(BuyerKind::of(Some("Acme Inc."), None), BuyerKind::Business);
        let [fr, en] = mentions(VatCase::OutOfScope, BuyerKind::Business);
        assert!(
            fr.unwrap()
                .starts_with("TVA non applicable, article 259-1 du CGI"),
            "{fr:?}"
        );
        assert!(
            en.unwrap().contains("article 259-1 of the French CGI"),
            "{en:?}"
        );
        for m in [fr, en] {
            assert!(!m.unwrap().contains("259 B"));
        }
    }

    #[test]
    fn consumer_outside_the_eu_art_259_b_cgi_not_259_1() {
        let t = treatment("CH", None, d("2026-10-31")).unwrap();
        assert_eq!(
            (t.case, t.rate_percent),
            (VatCase::OutOfScope, Decimal::ZERO)
        );
        assert_eq!(BuyerKind::of(None, Some("")), BuyerKind::Consumer);
        let [fr, en] = mentions(VatCase::OutOfScope, BuyerKind::Consumer);
        assert!(
            fr.unwrap()
                .starts_with("TVA non applicable, article 259 B du CGI"),
            "{fr:?}"
        );
        assert!(
            fr.unwrap()
                .contains("non-assujetti établi hors de l'Union européenne")
        );
        assert!(
            en.unwrap().contains("article 259 B of the French CGI"),
            "{en:?}"
        );
        for m in [fr, en] {
            assert!(!m.unwrap().contains("259-1"));
        }
    }

    #[test]
    fn vat_rounds_half_away_from_zero() {
        assert_eq!(vat_on(1481, Decimal::from(20)), Ok(296)); // 2.962
        assert_eq!(vat_on(1, Decimal::from_str("25.5").unwrap()), Ok(0)); // 0.00255
        assert_eq!(vat_on(2, Decimal::from(25)), Ok(1)); // 0.005 -> 0.01
    }
}
