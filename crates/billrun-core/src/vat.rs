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

use chrono::{DateTime, NaiveDate, Utc};
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

/// What VIES last answered conclusively about an account's VAT number (`valid` or `invalid`;
/// an `unavailable` answer leaves the one before standing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViesAnswer {
    pub vat_number: String,
    pub valid: bool,
    pub checked_at: DateTime<Utc>,
    /// VIES's `requestIdentifier`: the consultation number an auditor asks for.
    pub consultation: Option<String>,
}

/// Why an EU business's VAT number cannot carry reverse charge now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unverified {
    #[error("VAT number {number} has not been confirmed by VIES (run `billrun run vat-check`)")]
    NeverChecked { number: String },
    #[error("VIES answered on {on} that VAT number {number} is not valid")]
    Invalid { number: String, on: NaiveDate },
    #[error(
        "VIES last confirmed VAT number {number} on {on}, {age_days} days ago (more than max_age_days = {max_age_days})"
    )]
    Stale {
        number: String,
        on: NaiveDate,
        age_days: i64,
        max_age_days: u32,
    },
}

/// Whether a customer's reverse charge rests on a recent VIES confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReverseChargeCheck {
    /// No reverse charge is claimed: a customer in France or outside the EU, or one without a
    /// VAT number.
    NotClaimed,
    /// VIES confirmed this very number within `max_age_days`.
    Confirmed {
        consultation: Option<String>,
        on: NaiveDate,
    },
    Unverified(Unverified),
}

/// What the invoice job does with an EU business whose number VIES has not confirmed recently
/// (`on_unverified` in `jobs/invoice.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnverified {
    /// Bill it as a consumer of its state is billed (article 18(1)(b) of Implementing
    /// Regulation (EU) 282/2011: without a valid number the supplier may treat the customer as
    /// a non-taxable person).
    #[default]
    ChargeVat,
    /// Do not invoice it this run; the report names it and why.
    Hold,
}

/// Reverse charge on a supply to a business in another member state (article 196 of
/// Directive 2006/112/EC, article 283-2 of the CGI) rests on the customer's VAT number, which
/// the supplier verifies: article 18(1)(a) of Implementing Regulation (EU) 282/2011 (the
/// confirmation of the number through VIES, article 31 of Regulation (EU) 904/2010). Pure:
/// `last` is VIES's last conclusive answer for the account, `now` the run's clock.
pub fn reverse_charge_check(
    country: &str,
    vat_number: Option<&str>,
    last: Option<&ViesAnswer>,
    now: DateTime<Utc>,
    max_age_days: u32,
) -> ReverseChargeCheck {
    let number = match vat_number.map(str::trim) {
        Some(n) if !n.is_empty() => n,
        _ => return ReverseChargeCheck::NotClaimed,
    };
    if country == "FR" || country == "MC" || !is_eu_member(country) {
        return ReverseChargeCheck::NotClaimed;
    }
    let Some(last) = last.filter(|a| a.vat_number == number) else {
        // Never checked, or only an earlier number of the account was.
        return ReverseChargeCheck::Unverified(Unverified::NeverChecked {
            number: number.to_string(),
        });
    };
    let on = last.checked_at.date_naive();
    if !last.valid {
        return ReverseChargeCheck::Unverified(Unverified::Invalid {
            number: number.to_string(),
            on,
        });
    }
    let age_days = (now - last.checked_at).num_days();
    if age_days > i64::from(max_age_days) {
        return ReverseChargeCheck::Unverified(Unverified::Stale {
            number: number.to_string(),
            on,
            age_days,
            max_age_days,
        });
    }
    ReverseChargeCheck::Confirmed {
        consultation: last.consultation.clone(),
        on,
    }
}

/// The VAT of an invoice once its reverse charge is checked: what to bill, or to hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VatDecision {
    Bill {
        treatment: VatTreatment,
        /// The VIES consultation the reverse charge rests on (reverse charge only).
        consultation: Option<String>,
    },
    Hold(Unverified),
}

/// Decides an invoice's VAT from the customer's country, VAT number, its check and the
/// `on_unverified` setting, at the date the supply is taxed. Reverse charge only on a
/// confirmed number; an unverified one is billed as a consumer (its state's VAT, article 58 of
/// Directive 2006/112/EC, article 259 D of the CGI) or held.
pub fn decide(
    country: &str,
    vat_number: Option<&str>,
    check: &ReverseChargeCheck,
    on_unverified: OnUnverified,
    on: NaiveDate,
) -> Result<VatDecision, VatError> {
    match check {
        ReverseChargeCheck::NotClaimed => Ok(VatDecision::Bill {
            treatment: treatment(country, vat_number, on)?,
            consultation: None,
        }),
        ReverseChargeCheck::Confirmed { consultation, .. } => {
            let t = treatment(country, vat_number, on)?;
            let consultation = match t.case {
                VatCase::ReverseCharge => consultation.clone(),
                VatCase::Domestic | VatCase::EuConsumer | VatCase::OutOfScope => None,
            };
            Ok(VatDecision::Bill {
                treatment: t,
                consultation,
            })
        }
        ReverseChargeCheck::Unverified(why) => match on_unverified {
            OnUnverified::ChargeVat => Ok(VatDecision::Bill {
                treatment: treatment(country, None, on)?,
                consultation: None,
            }),
            OnUnverified::Hold => Ok(VatDecision::Hold(why.clone())),
        },
    }
}

/// VAT on a taxable base in minor units, computed once and rounded half away from zero; an
/// error (never a panic) when it does not fit in minor units.
pub fn vat_on(base_minor: i64, rate_percent: Decimal) -> Result<i64, Overflow> {
    percent_of(base_minor, rate_percent, "VAT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::countries::EU_MEMBERS_FOR_TESTS;

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

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn answer(number: &str, valid: bool, when: &str) -> ViesAnswer {
        ViesAnswer {
            vat_number: number.into(),
            valid,
            checked_at: at(when),
            consultation: Some("WAPIAAAAW1234567".into()),
        }
    }

    #[test]
    fn art_18_reg_282_2011_reverse_charge_needs_a_recent_vies_confirmation() {
        let now = at("2026-11-01T06:00:00Z");
        let de = Some("DE123456788");
        let fresh = answer("DE123456788", true, "2026-10-20T06:00:00Z");
        assert_eq!(
            reverse_charge_check("DE", de, Some(&fresh), now, 31),
            ReverseChargeCheck::Confirmed {
                consultation: Some("WAPIAAAAW1234567".into()),
                on: d("2026-10-20")
            }
        );
        // 32 days old: stale at 31.
        let old = answer("DE123456788", true, "2026-09-30T06:00:00Z");
        assert!(matches!(
            reverse_charge_check("DE", de, Some(&old), now, 31),
            ReverseChargeCheck::Unverified(Unverified::Stale { age_days: 32, .. })
        ));
        let invalid = answer("DE123456788", false, "2026-10-31T06:00:00Z");
        assert!(matches!(
            reverse_charge_check("DE", de, Some(&invalid), now, 31),
            ReverseChargeCheck::Unverified(Unverified::Invalid { .. })
        ));
        // A confirmation of another number (the account's earlier one) does not count.
        let other = answer("DE136695976", true, "2026-10-31T06:00:00Z");
        assert!(matches!(
            reverse_charge_check("DE", de, Some(&other), now, 31),
            ReverseChargeCheck::Unverified(Unverified::NeverChecked { .. })
        ));
        assert!(matches!(
            reverse_charge_check("DE", de, None, now, 31),
            ReverseChargeCheck::Unverified(Unverified::NeverChecked { .. })
        ));
        // No reverse charge claimed: France, outside the EU, no number.
        for (c, n) in [
            ("FR", Some("FR40303265045")),
            ("US", Some("12-3456789")),
            ("DE", None),
        ] {
            assert_eq!(
                reverse_charge_check(c, n, None, now, 31),
                ReverseChargeCheck::NotClaimed
            );
        }
    }

    #[test]
    fn art_196_directive_reverse_charge_only_on_a_confirmed_number_else_charge_vat_or_hold() {
        let on = d("2026-10-31");
        let de = Some("DE123456788");
        let confirmed = ReverseChargeCheck::Confirmed {
            consultation: Some("WAPI1".into()),
            on,
        };
        let VatDecision::Bill {
            treatment: t,
            consultation,
        } = decide("DE", de, &confirmed, OnUnverified::ChargeVat, on).unwrap()
        else {
            panic!("billed")
        };
        assert_eq!(t.case, VatCase::ReverseCharge);
        assert_eq!(consultation.as_deref(), Some("WAPI1"));
        let why = Unverified::NeverChecked {
            number: "DE123456788".into(),
        };
        let unverified = ReverseChargeCheck::Unverified(why.clone());
        // charge_vat: billed as a consumer in Germany would be (19%), no consultation.
        assert_eq!(
            decide("DE", de, &unverified, OnUnverified::ChargeVat, on).unwrap(),
            VatDecision::Bill {
                treatment: VatTreatment {
                    case: VatCase::EuConsumer,
                    rate_percent: Decimal::from(19)
                },
                consultation: None
            }
        );
        assert_eq!(
            decide("DE", de, &unverified, OnUnverified::Hold, on).unwrap(),
            VatDecision::Hold(why)
        );
    }

    #[test]
    fn vat_rounds_half_away_from_zero() {
        assert_eq!(vat_on(1481, Decimal::from(20)), Ok(296)); // 2.962
        assert_eq!(vat_on(1, Decimal::from_str("25.5").unwrap()), Ok(0)); // 0.00255
        assert_eq!(vat_on(2, Decimal::from(25)), Ok(1)); // 0.005 -> 0.01
    }
}
