//! The VAT returns of a French seller of electronically supplied services, computed from its
//! invoices: the quarterly OSS return (EU consumers) and the monthly French return (CA3).
//! Pure: plain invoices in, the return's rows out.
//!
//! Which invoices a return covers: those *issued* in its period (the invoice's `issued_at`,
//! UTC). billrun issues an invoice the moment it finalizes it (there is no draft invoice in the
//! store: every stored invoice counts). The seller is taken to have opted to pay VAT on its
//! invoices ("TVA d'après les débits", article 269-2 c of the CGI): the VAT on its services
//! becomes chargeable when it invoices them, not when it is paid. The OSS return covers the
//! supplies on which VAT became chargeable in the calendar quarter (article 369 sexies of
//! Directive 2006/112/EC; article 298 sexdecies G of the CGI for the French OSS portal), so the
//! same rule, the issue of the invoice, sorts invoices into quarters and months. (A seller on
//! cash accounting would sort by payment date instead: not billrun's case.)
//!
//! Amounts are the invoices' own, summed to the cent: an OSS row's VAT is the sum of its
//! invoices' VAT, never recomputed from the row's base, so that the return reconciles with the
//! invoices. Credit notes (issue 22) are not stored yet: when they land, a credit note issued in
//! the period subtracts its base and VAT from its country and rate's row here (article 369
//! sexies: corrections go in the return of the period they are made in).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use super::money::Overflow;
use super::period::Period;
use super::vat::VatCase;

/// One invoice as the returns see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxInvoice {
    pub number: String,
    /// The buyer's country (ISO 3166-1 alpha-2) printed on the invoice.
    pub country: String,
    pub case: VatCase,
    /// The VAT rate in percent (`20`, `25.5`).
    pub rate: Decimal,
    /// The taxable base: subtotal less discounts, in cents.
    pub taxable_minor: i64,
    pub vat_minor: i64,
}

/// A calendar quarter, the OSS return's period: `2026-Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    pub year: i32,
    /// 1 to 4.
    pub q: u32,
}

impl Quarter {
    pub fn first_month(self) -> Period {
        Period::new(self.year, (self.q - 1) * 3 + 1).expect("a quarter's first month")
    }

    pub fn first_day(self) -> NaiveDate {
        self.first_month().first_day()
    }

    /// From the first instant of the quarter (included)…
    pub fn start(self) -> DateTime<Utc> {
        self.first_month().start()
    }

    /// …to the first instant of the next one (excluded).
    pub fn end(self) -> DateTime<Utc> {
        self.first_month().next().next().end()
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-Q{}", self.year, self.q)
    }
}

impl FromStr for Quarter {
    type Err = String;

    fn from_str(s: &str) -> Result<Quarter, String> {
        let bad = || format!("`{s}` is not a quarter such as 2026-Q4");
        let (y, q) = s.split_once("-Q").ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let q: u32 = q.parse().map_err(|_| bad())?;
        if !(1..=4).contains(&q) || y.len() != 4 || Period::new(year, 1).is_none() {
            return Err(bad());
        }
        Ok(Quarter { year, q })
    }
}

/// The first instant of a day, UTC.
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
}

/// A rate as the returns print it: `20`, `25.5` (no trailing zeros).
pub fn rate_text(rate: Decimal) -> String {
    rate.normalize().to_string()
}

fn add(a: i64, b: i64, what: &'static str) -> Result<i64, Overflow> {
    a.checked_add(b).ok_or(Overflow::of(what))
}

/// One line of the OSS return: a member state and a rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssRow {
    pub country: String,
    pub rate: Decimal,
    pub taxable_minor: i64,
    pub vat_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssReturn {
    pub quarter: Quarter,
    /// By country, then rate.
    pub rows: Vec<OssRow>,
    pub taxable_minor: i64,
    pub vat_minor: i64,
}

/// The OSS return (article 369 sexies of Directive 2006/112/EC; article 298 sexdecies G of the
/// CGI): for each member state of consumption other than France, at each rate, the taxable
/// amount and the VAT of the invoices to consumers there (the `EuConsumer` case, article 259 D
/// of the CGI). `invoices` are the quarter's (see the module's note on which).
pub fn oss_return(quarter: Quarter, invoices: &[TaxInvoice]) -> Result<OssReturn, Overflow> {
    let mut rows: BTreeMap<(String, Decimal), (i64, i64)> = BTreeMap::new();
    for inv in invoices {
        match inv.case {
            VatCase::EuConsumer if inv.country != "FR" => {}
            VatCase::EuConsumer
            | VatCase::Domestic
            | VatCase::ReverseCharge
            | VatCase::OutOfScope => continue,
        }
        let row = rows
            .entry((inv.country.clone(), inv.rate.normalize()))
            .or_default();
        row.0 = add(row.0, inv.taxable_minor, "OSS taxable amount")?;
        row.1 = add(row.1, inv.vat_minor, "OSS VAT")?;
    }
    let mut out = OssReturn {
        quarter,
        rows: Vec::with_capacity(rows.len()),
        taxable_minor: 0,
        vat_minor: 0,
    };
    for ((country, rate), (taxable, vat)) in rows {
        out.taxable_minor = add(out.taxable_minor, taxable, "OSS taxable amount")?;
        out.vat_minor = add(out.vat_minor, vat, "OSS VAT")?;
        out.rows.push(OssRow {
            country,
            rate,
            taxable_minor: taxable,
            vat_minor: vat,
        });
    }
    Ok(out)
}

/// Domestic sales at one rate (CA3 line 08 "taux normal 20 %", 9B "taux réduit 10 %", 09
/// "taux réduit 5,5 %"…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTotal {
    pub rate: Decimal,
    pub taxable_minor: i64,
    pub vat_minor: i64,
}

/// The month's figures for the French VAT return (form 3310-CA3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatReturn {
    pub period: Period,
    /// Line A1 "ventes, prestations de services" (their sum) and, per rate, lines 08/09/9B:
    /// services taxed in France (article 278 of the CGI), by rate.
    pub domestic: Vec<RateTotal>,
    /// Services to EU consumers taxed in their member state (article 259 D of the CGI): not
    /// taxable in France, so line E2 "autres opérations non imposables"; their VAT is declared
    /// and paid through the quarterly OSS return, not on the CA3.
    pub eu_consumers_taxable_minor: i64,
    pub eu_consumers_vat_minor: i64,
    /// Services to EU businesses, VAT due by the customer (article 196 of Directive
    /// 2006/112/EC, article 283-2 of the CGI): line E2, and the "déclaration européenne de
    /// services" (article 289 B of the CGI).
    pub eu_reverse_charge_taxable_minor: i64,
    /// Services to customers outside the EU (articles 259-1 and 259 B of the CGI): line E2.
    pub outside_eu_taxable_minor: i64,
    /// The French VAT the month's invoices collected: line 16 "total de la TVA brute due"
    /// (= Σ domestic VAT; the OSS VAT is not part of it).
    pub vat_collected_minor: i64,
}

/// The month's VAT return from the invoices issued in it.
pub fn vat_return(period: Period, invoices: &[TaxInvoice]) -> Result<VatReturn, Overflow> {
    let mut domestic: BTreeMap<Decimal, (i64, i64)> = BTreeMap::new();
    let mut out = VatReturn {
        period,
        domestic: Vec::new(),
        eu_consumers_taxable_minor: 0,
        eu_consumers_vat_minor: 0,
        eu_reverse_charge_taxable_minor: 0,
        outside_eu_taxable_minor: 0,
        vat_collected_minor: 0,
    };
    for inv in invoices {
        match inv.case {
            VatCase::Domestic => {
                let row = domestic.entry(inv.rate.normalize()).or_default();
                row.0 = add(row.0, inv.taxable_minor, "domestic taxable amount")?;
                row.1 = add(row.1, inv.vat_minor, "domestic VAT")?;
                out.vat_collected_minor =
                    add(out.vat_collected_minor, inv.vat_minor, "VAT collected")?;
            }
            VatCase::EuConsumer => {
                out.eu_consumers_taxable_minor = add(
                    out.eu_consumers_taxable_minor,
                    inv.taxable_minor,
                    "EU consumers' taxable amount",
                )?;
                out.eu_consumers_vat_minor = add(
                    out.eu_consumers_vat_minor,
                    inv.vat_minor,
                    "EU consumers' VAT",
                )?;
            }
            VatCase::ReverseCharge => {
                out.eu_reverse_charge_taxable_minor = add(
                    out.eu_reverse_charge_taxable_minor,
                    inv.taxable_minor,
                    "reverse-charge amount",
                )?;
            }
            VatCase::OutOfScope => {
                out.outside_eu_taxable_minor = add(
                    out.outside_eu_taxable_minor,
                    inv.taxable_minor,
                    "outside-EU amount",
                )?;
            }
        }
    }
    out.domestic = domestic
        .into_iter()
        .rev() // the standard rate first, as on the form
        .map(|(rate, (taxable_minor, vat_minor))| RateTotal {
            rate,
            taxable_minor,
            vat_minor,
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(country: &str, case: VatCase, rate: &str, taxable: i64, vat: i64) -> TaxInvoice {
        TaxInvoice {
            number: format!("n-{country}-{taxable}"),
            country: country.into(),
            case,
            rate: rate.parse().unwrap(),
            taxable_minor: taxable,
            vat_minor: vat,
        }
    }

    #[test]
    fn quarters_parse_and_bound() {
        let q: Quarter = "2026-Q4".parse().unwrap();
        assert_eq!(q, Quarter { year: 2026, q: 4 });
        assert_eq!(q.to_string(), "2026-Q4");
        assert_eq!(q.start().to_rfc3339(), "2026-10-01T00:00:00+00:00");
        assert_eq!(q.end().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        for bad in ["2026-Q0", "2026-Q5", "2026Q4", "26-Q1", "2026-q4", ""] {
            assert!(bad.parse::<Quarter>().is_err(), "{bad}");
        }
    }

    #[test]
    fn oss_art_369_sexies_directive_groups_eu_consumers_by_country_and_rate() {
        let invoices = [
            inv("DE", VatCase::EuConsumer, "19", 1000, 190),
            inv("DE", VatCase::EuConsumer, "19.00", 333, 63),
            inv("FI", VatCase::EuConsumer, "25.5", 200, 51),
            inv("FI", VatCase::EuConsumer, "24", 100, 24),
            inv("DE", VatCase::ReverseCharge, "0", 5000, 0),
            inv("FR", VatCase::Domestic, "20", 700, 140),
            inv("US", VatCase::OutOfScope, "0", 900, 0),
        ];
        let r = oss_return("2026-Q4".parse().unwrap(), &invoices).unwrap();
        let rows: Vec<(&str, String, i64, i64)> = r
            .rows
            .iter()
            .map(|x| {
                (
                    x.country.as_str(),
                    rate_text(x.rate),
                    x.taxable_minor,
                    x.vat_minor,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("DE", "19".to_string(), 1333, 253),
                ("FI", "24".to_string(), 100, 24),
                ("FI", "25.5".to_string(), 200, 51),
            ]
        );
        assert_eq!((r.taxable_minor, r.vat_minor), (1633, 328));
    }

    #[test]
    fn ca3_3310_lines_split_the_month_by_vat_case() {
        let invoices = [
            inv("FR", VatCase::Domestic, "20", 1000, 200),
            inv("MC", VatCase::Domestic, "20", 500, 100),
            inv("DE", VatCase::EuConsumer, "19", 1000, 190),
            inv("DE", VatCase::ReverseCharge, "0", 5000, 0),
            inv("US", VatCase::OutOfScope, "0", 900, 0),
        ];
        let r = vat_return(Period::new(2026, 10).unwrap(), &invoices).unwrap();
        assert_eq!(
            r.domestic,
            [RateTotal {
                rate: Decimal::from(20),
                taxable_minor: 1500,
                vat_minor: 300
            }]
        );
        assert_eq!(
            (r.eu_consumers_taxable_minor, r.eu_consumers_vat_minor),
            (1000, 190)
        );
        assert_eq!(r.eu_reverse_charge_taxable_minor, 5000);
        assert_eq!(r.outside_eu_taxable_minor, 900);
        assert_eq!(r.vat_collected_minor, 300);
    }

    #[test]
    fn sums_that_do_not_fit_are_errors_not_panics() {
        let invoices = [
            inv("DE", VatCase::EuConsumer, "19", i64::MAX, 0),
            inv("DE", VatCase::EuConsumer, "19", 1, 0),
        ];
        assert!(oss_return("2026-Q4".parse().unwrap(), &invoices).is_err());
        assert!(vat_return(Period::new(2026, 10).unwrap(), &invoices).is_err());
    }
}
