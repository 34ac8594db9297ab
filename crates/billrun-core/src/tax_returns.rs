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
//! invoices.
//!
//! Credit notes (*avoirs*, issue 22) count in the period they are *issued* in, at the VAT case,
//! rate and country of the invoice they correct (they copy them):
//! - CA3: article 272-1 of the CGI lets the VAT of a sale later cancelled or reduced be
//!   recovered by a credit note; it is set off ("imputée") in the return of the month the credit
//!   note is issued, whatever the month of the invoice. Each box shows what the month's
//!   invoices charged, what its credit notes took back, and the difference (what is declared).
//! - OSS: a credit note on an invoice of the same quarter lowers that quarter's row; one on an
//!   invoice of an earlier quarter is a correction of that earlier return, declared in the
//!   current return with the period it corrects named (article 61 of Council Implementing
//!   Regulation (EU) 282/2011, article 369k of Directive 2006/112/EC as amended by Directive
//!   (EU) 2017/2455), never mixed into the current quarter's rows. A member state's total
//!   (current rows and corrections) may be negative.

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

/// A credit note as the returns see it: it corrects one invoice, at that invoice's VAT case,
/// rate and country. Amounts are what it credits (positive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxCreditNote {
    /// `AV-2026-000001`.
    pub number: String,
    pub invoice_number: String,
    /// When the invoice it corrects was issued: the OSS period a correction names.
    pub invoice_issued_at: DateTime<Utc>,
    pub country: String,
    pub case: VatCase,
    pub rate: Decimal,
    /// The taxable base credited, in cents.
    pub taxable_minor: i64,
    pub vat_minor: i64,
}

/// A taxable amount and its VAT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    pub taxable_minor: i64,
    pub vat_minor: i64,
}

impl Amounts {
    fn add(&mut self, taxable: i64, vat: i64, what: &'static str) -> Result<(), Overflow> {
        self.taxable_minor = add(self.taxable_minor, taxable, what)?;
        self.vat_minor = add(self.vat_minor, vat, what)?;
        Ok(())
    }
}

/// One box of a return: what the period's invoices charged, what its credit notes took back
/// (positive), and what is declared: the difference, negative when the credit notes exceed
/// the invoices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Corrected {
    pub invoiced: Amounts,
    pub credited: Amounts,
    pub declared: Amounts,
}

impl Corrected {
    fn invoice(&mut self, taxable: i64, vat: i64) -> Result<(), Overflow> {
        self.invoiced.add(taxable, vat, "amount invoiced")?;
        self.settle()
    }

    fn credit(&mut self, taxable: i64, vat: i64) -> Result<(), Overflow> {
        self.credited.add(taxable, vat, "amount credited")?;
        self.settle()
    }

    fn settle(&mut self) -> Result<(), Overflow> {
        let sub = |a: i64, b: i64| a.checked_sub(b).ok_or(Overflow::of("amount declared"));
        self.declared = Amounts {
            taxable_minor: sub(self.invoiced.taxable_minor, self.credited.taxable_minor)?,
            vat_minor: sub(self.invoiced.vat_minor, self.credited.vat_minor)?,
        };
        Ok(())
    }

    fn sum(&mut self, other: &Corrected) -> Result<(), Overflow> {
        self.invoiced.add(
            other.invoiced.taxable_minor,
            other.invoiced.vat_minor,
            "amount invoiced",
        )?;
        self.credited.add(
            other.credited.taxable_minor,
            other.credited.vat_minor,
            "amount credited",
        )?;
        self.settle()
    }
}

impl Quarter {
    /// The quarter an instant (UTC) falls in.
    pub fn containing(at: DateTime<Utc>) -> Quarter {
        let p = Period::containing(at);
        Quarter {
            year: p.year,
            q: (p.month - 1) / 3 + 1,
        }
    }
}

/// Whether an invoice or credit note of this case and buyer country is an OSS supply: a
/// service to a consumer in a member state other than France (article 259 D of the CGI).
fn is_oss(case: VatCase, country: &str) -> bool {
    match case {
        VatCase::EuConsumer => country != "FR",
        VatCase::Domestic | VatCase::ReverseCharge | VatCase::OutOfScope => false,
    }
}

/// One line of the OSS return: a member state and a rate, for the quarter's own supplies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssRow {
    pub country: String,
    pub rate: Decimal,
    /// The quarter's invoices, the credit notes of the quarter on them, and the difference.
    pub amounts: Corrected,
}

/// A correction of an earlier quarter's return (article 61 of Regulation (EU) 282/2011): the
/// credit notes issued in this quarter on invoices of `period`, for one member state. Negative:
/// what the earlier return declared too much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssCorrection {
    pub country: String,
    /// The quarter corrected.
    pub period: Quarter,
    pub taxable_minor: i64,
    pub vat_minor: i64,
    /// The credit notes it sums, by number.
    pub credit_notes: Vec<String>,
}

/// What one member state is owed on this return: its current rows' VAT plus its corrections'
/// (negative when the corrections exceed the quarter's VAT: that state refunds it, article 369k
/// of Directive 2006/112/EC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssCountryTotal {
    pub country: String,
    pub vat_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssReturn {
    pub quarter: Quarter,
    /// The quarter's supplies, by country, then rate.
    pub rows: Vec<OssRow>,
    /// Σ rows.
    pub total: Corrected,
    /// Corrections of earlier quarters, by country, then period corrected.
    pub corrections: Vec<OssCorrection>,
    /// Σ corrections (negative or zero).
    pub corrections_taxable_minor: i64,
    pub corrections_vat_minor: i64,
    /// Per member state: the quarter's VAT and its corrections, by country.
    pub by_country: Vec<OssCountryTotal>,
    /// The VAT due on the return: Σ rows' declared VAT + Σ corrections.
    pub vat_due_minor: i64,
}

/// The OSS return (article 369 sexies of Directive 2006/112/EC; article 298 sexdecies G of the
/// CGI): for each member state of consumption other than France, at each rate, the taxable
/// amount and the VAT of the invoices to consumers there (the `EuConsumer` case, article 259 D
/// of the CGI), less the credit notes of the quarter on them; then the corrections of earlier
/// quarters (credit notes of this quarter on their invoices). `invoices` and `credit_notes`
/// are those issued in the quarter (see the module's note).
pub fn oss_return(
    quarter: Quarter,
    invoices: &[TaxInvoice],
    credit_notes: &[TaxCreditNote],
) -> Result<OssReturn, Overflow> {
    let mut rows: BTreeMap<(String, Decimal), Corrected> = BTreeMap::new();
    for inv in invoices.iter().filter(|i| is_oss(i.case, &i.country)) {
        rows.entry((inv.country.clone(), inv.rate.normalize()))
            .or_default()
            .invoice(inv.taxable_minor, inv.vat_minor)?;
    }
    let mut corrections: BTreeMap<(String, Quarter), OssCorrection> = BTreeMap::new();
    for cn in credit_notes.iter().filter(|c| is_oss(c.case, &c.country)) {
        let period = Quarter::containing(cn.invoice_issued_at);
        if period < quarter {
            // Article 61 of Regulation (EU) 282/2011: a change to an earlier return's figures
            // is made in a subsequent return, naming the period it corrects.
            let c = corrections
                .entry((cn.country.clone(), period))
                .or_insert_with(|| OssCorrection {
                    country: cn.country.clone(),
                    period,
                    taxable_minor: 0,
                    vat_minor: 0,
                    credit_notes: Vec::new(),
                });
            c.taxable_minor = sub(c.taxable_minor, cn.taxable_minor, "OSS correction")?;
            c.vat_minor = sub(c.vat_minor, cn.vat_minor, "OSS correction")?;
            c.credit_notes.push(cn.number.clone());
        } else {
            rows.entry((cn.country.clone(), cn.rate.normalize()))
                .or_default()
                .credit(cn.taxable_minor, cn.vat_minor)?;
        }
    }
    let mut out = OssReturn {
        quarter,
        rows: Vec::with_capacity(rows.len()),
        total: Corrected::default(),
        corrections: Vec::with_capacity(corrections.len()),
        corrections_taxable_minor: 0,
        corrections_vat_minor: 0,
        by_country: Vec::new(),
        vat_due_minor: 0,
    };
    let mut by_country: BTreeMap<String, i64> = BTreeMap::new();
    for ((country, rate), amounts) in rows {
        out.total.sum(&amounts)?;
        let c = by_country.entry(country.clone()).or_default();
        *c = add(*c, amounts.declared.vat_minor, "OSS VAT")?;
        out.rows.push(OssRow {
            country,
            rate,
            amounts,
        });
    }
    for (_, mut c) in corrections {
        c.credit_notes.sort();
        out.corrections_taxable_minor = add(
            out.corrections_taxable_minor,
            c.taxable_minor,
            "OSS corrections",
        )?;
        out.corrections_vat_minor = add(out.corrections_vat_minor, c.vat_minor, "OSS corrections")?;
        let t = by_country.entry(c.country.clone()).or_default();
        *t = add(*t, c.vat_minor, "OSS VAT")?;
        out.corrections.push(c);
    }
    out.by_country = by_country
        .into_iter()
        .map(|(country, vat_minor)| OssCountryTotal { country, vat_minor })
        .collect();
    out.vat_due_minor = add(
        out.total.declared.vat_minor,
        out.corrections_vat_minor,
        "OSS VAT due",
    )?;
    Ok(out)
}

fn sub(a: i64, b: i64, what: &'static str) -> Result<i64, Overflow> {
    a.checked_sub(b).ok_or(Overflow::of(what))
}

/// Domestic sales at one rate (CA3 line 08 "taux normal 20 %", 9B "taux réduit 10 %", 09
/// "taux réduit 5,5 %"…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTotal {
    pub rate: Decimal,
    pub amounts: Corrected,
}

/// The month's figures for the French VAT return (form 3310-CA3). Each box: the month's
/// invoices, less the month's credit notes (whatever month their invoice is of: article 272-1
/// of the CGI), and what is declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatReturn {
    pub period: Period,
    /// Line A1 "ventes, prestations de services" (their sum) and, per rate, lines 08/09/9B:
    /// services taxed in France (article 278 of the CGI), by rate.
    pub domestic: Vec<RateTotal>,
    /// Services to EU consumers taxed in their member state (article 259 D of the CGI): not
    /// taxable in France, so line E2 "autres opérations non imposables"; their VAT is declared
    /// and paid through the quarterly OSS return, not on the CA3.
    pub eu_consumers: Corrected,
    /// Services to EU businesses, VAT due by the customer (article 196 of Directive
    /// 2006/112/EC, article 283-2 of the CGI): line E2, and the "déclaration européenne de
    /// services" (article 289 B of the CGI). No VAT.
    pub eu_reverse_charge: Corrected,
    /// Services to customers outside the EU (articles 259-1 and 259 B of the CGI): line E2. No
    /// VAT.
    pub outside_eu: Corrected,
    /// The French VAT: line 16 "total de la TVA brute due" is `declared` (= Σ domestic
    /// declared VAT; the OSS VAT is not part of it).
    pub vat_collected: Corrected,
    /// The credit notes the month counts, by number: the trace of `credited`.
    pub credit_notes: Vec<TaxCreditNote>,
}

/// The month's VAT return from the invoices and credit notes issued in it.
pub fn vat_return(
    period: Period,
    invoices: &[TaxInvoice],
    credit_notes: &[TaxCreditNote],
) -> Result<VatReturn, Overflow> {
    let mut domestic: BTreeMap<Decimal, Corrected> = BTreeMap::new();
    let mut out = VatReturn {
        period,
        domestic: Vec::new(),
        eu_consumers: Corrected::default(),
        eu_reverse_charge: Corrected::default(),
        outside_eu: Corrected::default(),
        vat_collected: Corrected::default(),
        credit_notes: Vec::new(),
    };
    // Invoices add to their box, credit notes take from it: the same case, the same box.
    let entries = invoices
        .iter()
        .map(|i| (i.case, i.rate, i.taxable_minor, i.vat_minor, false))
        .chain(
            credit_notes
                .iter()
                .map(|c| (c.case, c.rate, c.taxable_minor, c.vat_minor, true)),
        );
    for (case, rate, taxable, vat, credit) in entries {
        let put = |b: &mut Corrected| {
            if credit {
                b.credit(taxable, vat)
            } else {
                b.invoice(taxable, vat)
            }
        };
        match case {
            VatCase::Domestic => {
                put(domestic.entry(rate.normalize()).or_default())?;
                put(&mut out.vat_collected)?;
            }
            VatCase::EuConsumer => put(&mut out.eu_consumers)?,
            VatCase::ReverseCharge => put(&mut out.eu_reverse_charge)?,
            VatCase::OutOfScope => put(&mut out.outside_eu)?,
        }
    }
    out.domestic = domestic
        .into_iter()
        .rev() // the standard rate first, as on the form
        .map(|(rate, amounts)| RateTotal { rate, amounts })
        .collect();
    out.credit_notes = credit_notes.to_vec();
    out.credit_notes.sort_by(|a, b| a.number.cmp(&b.number));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    fn note(
        number: &str,
        invoice_issued: &str,
        country: &str,
        case: VatCase,
        rate: &str,
        taxable: i64,
        vat: i64,
    ) -> TaxCreditNote {
        TaxCreditNote {
            number: number.into(),
            invoice_number: format!("inv-{number}"),
            invoice_issued_at: DateTime::parse_from_rfc3339(invoice_issued)
                .unwrap()
                .with_timezone(&Utc),
            country: country.into(),
            case,
            rate: rate.parse().unwrap(),
            taxable_minor: taxable,
            vat_minor: vat,
        }
    }

    fn amounts(invoiced: (i64, i64), credited: (i64, i64)) -> Corrected {
        let mut c = Corrected::default();
        c.invoice(invoiced.0, invoiced.1).unwrap();
        c.credit(credited.0, credited.1).unwrap();
        c
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
        for (at, q) in [
            ("2026-01-01T00:00:00Z", "2026-Q1"),
            ("2026-03-31T23:59:59Z", "2026-Q1"),
            ("2026-04-01T00:00:00Z", "2026-Q2"),
            ("2026-12-31T23:59:59Z", "2026-Q4"),
        ] {
            let at = DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(Quarter::containing(at).to_string(), q);
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
        let r = oss_return("2026-Q4".parse().unwrap(), &invoices, &[]).unwrap();
        let rows: Vec<(&str, String, i64, i64)> = r
            .rows
            .iter()
            .map(|x| {
                (
                    x.country.as_str(),
                    rate_text(x.rate),
                    x.amounts.declared.taxable_minor,
                    x.amounts.declared.vat_minor,
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
        assert_eq!(
            (r.total.declared.taxable_minor, r.total.declared.vat_minor),
            (1633, 328)
        );
        assert!(r.corrections.is_empty());
        assert_eq!(r.vat_due_minor, 328);
    }

    #[test]
    fn oss_art_61_reg_282_2011_a_credit_note_on_an_earlier_quarter_is_a_correction_naming_it() {
        let invoices = [
            inv("DE", VatCase::EuConsumer, "19", 1000, 190),
            inv("FI", VatCase::EuConsumer, "25.5", 200, 51),
        ];
        let notes = [
            // On this quarter's DE invoice: lowers the DE row.
            note(
                "AV-2026-000003",
                "2026-10-01T06:00:00Z",
                "DE",
                VatCase::EuConsumer,
                "19",
                400,
                76,
            ),
            // On Q3's DE invoices: corrections of 2026-Q3, not in the rows.
            note(
                "AV-2026-000002",
                "2026-08-01T06:00:00Z",
                "DE",
                VatCase::EuConsumer,
                "19",
                500,
                95,
            ),
            note(
                "AV-2026-000001",
                "2026-09-01T06:00:00Z",
                "DE",
                VatCase::EuConsumer,
                "19",
                1000,
                190,
            ),
            // On Q2's Austrian invoice: Austria has no row this quarter, only a correction.
            note(
                "AV-2026-000004",
                "2026-05-01T06:00:00Z",
                "AT",
                VatCase::EuConsumer,
                "20",
                100,
                20,
            ),
            // Not OSS supplies: not on the OSS return at all.
            note(
                "AV-2026-000005",
                "2026-05-01T06:00:00Z",
                "FR",
                VatCase::Domestic,
                "20",
                100,
                20,
            ),
            note(
                "AV-2026-000006",
                "2026-05-01T06:00:00Z",
                "DE",
                VatCase::ReverseCharge,
                "0",
                100,
                0,
            ),
        ];
        let r = oss_return("2026-Q4".parse().unwrap(), &invoices, &notes).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].country, "DE");
        assert_eq!(r.rows[0].amounts, amounts((1000, 190), (400, 76)));
        assert_eq!(r.rows[0].amounts.declared.vat_minor, 114);
        assert_eq!(r.rows[1].amounts, amounts((200, 51), (0, 0)));
        let corrections: Vec<(&str, String, i64, i64, Vec<String>)> = r
            .corrections
            .iter()
            .map(|c| {
                (
                    c.country.as_str(),
                    c.period.to_string(),
                    c.taxable_minor,
                    c.vat_minor,
                    c.credit_notes.clone(),
                )
            })
            .collect();
        assert_eq!(
            corrections,
            [
                (
                    "AT",
                    "2026-Q2".to_string(),
                    -100,
                    -20,
                    vec!["AV-2026-000004".to_string()]
                ),
                (
                    "DE",
                    "2026-Q3".to_string(),
                    -1500,
                    -285,
                    vec!["AV-2026-000001".to_string(), "AV-2026-000002".to_string()]
                ),
            ]
        );
        assert_eq!(
            (r.corrections_taxable_minor, r.corrections_vat_minor),
            (-1600, -305)
        );
        // Per member state, negative where the corrections exceed the quarter's VAT.
        let by_country: Vec<(&str, i64)> = r
            .by_country
            .iter()
            .map(|c| (c.country.as_str(), c.vat_minor))
            .collect();
        assert_eq!(by_country, [("AT", -20), ("DE", 114 - 285), ("FI", 51)]);
        assert_eq!(r.vat_due_minor, 114 + 51 - 305);
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
        let r = vat_return(Period::new(2026, 10).unwrap(), &invoices, &[]).unwrap();
        assert_eq!(
            r.domestic,
            [RateTotal {
                rate: Decimal::from(20),
                amounts: amounts((1500, 300), (0, 0)),
            }]
        );
        assert_eq!(r.eu_consumers, amounts((1000, 190), (0, 0)));
        assert_eq!(r.eu_reverse_charge.declared.taxable_minor, 5000);
        assert_eq!(r.outside_eu.declared.taxable_minor, 900);
        assert_eq!(r.vat_collected.declared.vat_minor, 300);
        assert!(r.credit_notes.is_empty());
    }

    #[test]
    fn ca3_cgi_272_1_credit_notes_of_the_month_are_deducted_in_their_own_box() {
        let invoices = [
            inv("FR", VatCase::Domestic, "20", 1000, 200),
            inv("DE", VatCase::EuConsumer, "19", 1000, 190),
            inv("DE", VatCase::ReverseCharge, "0", 5000, 0),
        ];
        // Credit notes of October on invoices of any month, in each VAT case; one at 5.5 %,
        // a rate no invoice of the month has: its row is negative.
        let notes = [
            note(
                "AV-2026-000002",
                "2026-09-01T06:00:00Z",
                "FR",
                VatCase::Domestic,
                "20",
                250,
                50,
            ),
            note(
                "AV-2026-000001",
                "2026-10-01T06:00:00Z",
                "FR",
                VatCase::Domestic,
                "5.5",
                100,
                6,
            ),
            note(
                "AV-2026-000003",
                "2026-07-01T06:00:00Z",
                "DE",
                VatCase::EuConsumer,
                "19",
                100,
                19,
            ),
            note(
                "AV-2026-000004",
                "2026-07-01T06:00:00Z",
                "DE",
                VatCase::ReverseCharge,
                "0",
                5000,
                0,
            ),
            note(
                "AV-2026-000005",
                "2026-07-01T06:00:00Z",
                "US",
                VatCase::OutOfScope,
                "0",
                300,
                0,
            ),
        ];
        let r = vat_return(Period::new(2026, 10).unwrap(), &invoices, &notes).unwrap();
        assert_eq!(
            r.domestic,
            [
                RateTotal {
                    rate: Decimal::from(20),
                    amounts: amounts((1000, 200), (250, 50)),
                },
                RateTotal {
                    rate: Decimal::new(55, 1),
                    amounts: amounts((0, 0), (100, 6)),
                },
            ]
        );
        assert_eq!(
            r.domestic[1].amounts.declared,
            Amounts {
                taxable_minor: -100,
                vat_minor: -6
            }
        );
        assert_eq!(r.vat_collected.invoiced.vat_minor, 200);
        assert_eq!(r.vat_collected.credited.vat_minor, 56);
        assert_eq!(r.vat_collected.declared.vat_minor, 144);
        assert_eq!(r.eu_consumers, amounts((1000, 190), (100, 19)));
        assert_eq!(r.eu_reverse_charge, amounts((5000, 0), (5000, 0)));
        assert_eq!(r.eu_reverse_charge.declared.taxable_minor, 0);
        assert_eq!(r.outside_eu, amounts((0, 0), (300, 0)));
        let numbers: Vec<&str> = r.credit_notes.iter().map(|c| c.number.as_str()).collect();
        assert_eq!(
            numbers,
            [
                "AV-2026-000001",
                "AV-2026-000002",
                "AV-2026-000003",
                "AV-2026-000004",
                "AV-2026-000005"
            ]
        );
    }

    #[test]
    fn sums_that_do_not_fit_are_errors_not_panics() {
        let invoices = [
            inv("DE", VatCase::EuConsumer, "19", i64::MAX, 0),
            inv("DE", VatCase::EuConsumer, "19", 1, 0),
        ];
        assert!(oss_return("2026-Q4".parse().unwrap(), &invoices, &[]).is_err());
        assert!(vat_return(Period::new(2026, 10).unwrap(), &invoices, &[]).is_err());
        let notes = [note(
            "AV-1",
            "2026-10-01T00:00:00Z",
            "DE",
            VatCase::EuConsumer,
            "19",
            i64::MAX,
            0,
        )];
        let owed = [inv("DE", VatCase::EuConsumer, "19", -2, 0)];
        assert!(oss_return("2026-Q4".parse().unwrap(), &owed, &notes).is_err());
        assert!(vat_return(Period::new(2026, 10).unwrap(), &owed, &notes).is_err());
    }

    fn case() -> impl Strategy<Value = VatCase> {
        prop_oneof![
            Just(VatCase::Domestic),
            Just(VatCase::EuConsumer),
            Just(VatCase::ReverseCharge),
            Just(VatCase::OutOfScope),
        ]
    }

    proptest! {
        /// Article 272-1 of the CGI and article 61 of Regulation (EU) 282/2011: whatever the
        /// invoices and credit notes, each return declares exactly the invoices less the credit
        /// notes, case by case (the CA3), and the OSS rows plus corrections are the OSS
        /// invoices less the OSS credit notes; nothing is counted twice or lost.
        #[test]
        fn returns_declare_invoices_less_credit_notes_cgi_272_1_reg_282_2011_art_61(
            invoices in proptest::collection::vec(
                (prop_oneof![Just("FR"), Just("DE"), Just("FI")], case(), 0i64..1_000_000, 0i64..200_000), 0..12),
            notes in proptest::collection::vec(
                (prop_oneof![Just("FR"), Just("DE"), Just("AT")], case(), 1u32..=12, 1i64..1_000_000, 0i64..200_000), 0..12),
        ) {
            let invoices: Vec<TaxInvoice> = invoices
                .into_iter()
                .map(|(c, case, t, v)| inv(c, case, "20", t, v))
                .collect();
            let notes: Vec<TaxCreditNote> = notes
                .into_iter()
                .enumerate()
                .map(|(n, (c, case, month, t, v))| {
                    note(&format!("AV-{n}"), &format!("2026-{month:02}-15T00:00:00Z"), c, case, "20", t, v)
                })
                .collect();
            let quarter: Quarter = "2026-Q3".parse().unwrap();
            let r = oss_return(quarter, &invoices, &notes).unwrap();
            let oss = |case: VatCase, c: &str| is_oss(case, c);
            let inv_vat: i64 = invoices.iter().filter(|i| oss(i.case, &i.country)).map(|i| i.vat_minor).sum();
            let note_vat: i64 = notes.iter().filter(|n| oss(n.case, &n.country)).map(|n| n.vat_minor).sum();
            prop_assert_eq!(r.vat_due_minor, inv_vat - note_vat);
            prop_assert_eq!(r.by_country.iter().map(|c| c.vat_minor).sum::<i64>(), r.vat_due_minor);
            // A correction names an earlier quarter; the rows hold the quarter's own only.
            prop_assert!(r.corrections.iter().all(|c| c.period < quarter && c.vat_minor <= 0));
            let earlier: i64 = notes
                .iter()
                .filter(|n| oss(n.case, &n.country) && Quarter::containing(n.invoice_issued_at) < quarter)
                .map(|n| n.vat_minor)
                .sum();
            prop_assert_eq!(r.corrections_vat_minor, -earlier);
            for row in &r.rows {
                prop_assert_eq!(
                    row.amounts.declared.vat_minor,
                    row.amounts.invoiced.vat_minor - row.amounts.credited.vat_minor
                );
            }

            let v = vat_return(Period::new(2026, 8).unwrap(), &invoices, &notes).unwrap();
            let of = |case: VatCase| -> (i64, i64) {
                let i: (i64, i64) = invoices.iter().filter(|x| x.case == case)
                    .fold((0, 0), |a, x| (a.0 + x.taxable_minor, a.1 + x.vat_minor));
                let n: (i64, i64) = notes.iter().filter(|x| x.case == case)
                    .fold((0, 0), |a, x| (a.0 + x.taxable_minor, a.1 + x.vat_minor));
                (i.0 - n.0, i.1 - n.1)
            };
            let domestic = v.domestic.iter().fold((0, 0), |a, d| {
                (a.0 + d.amounts.declared.taxable_minor, a.1 + d.amounts.declared.vat_minor)
            });
            prop_assert_eq!(domestic, of(VatCase::Domestic));
            prop_assert_eq!(v.vat_collected.declared.vat_minor, of(VatCase::Domestic).1);
            let pair = |c: &Corrected| (c.declared.taxable_minor, c.declared.vat_minor);
            prop_assert_eq!(pair(&v.eu_consumers), of(VatCase::EuConsumer));
            prop_assert_eq!(pair(&v.eu_reverse_charge), of(VatCase::ReverseCharge));
            prop_assert_eq!(pair(&v.outside_eu), of(VatCase::OutOfScope));
            prop_assert_eq!(v.credit_notes.len(), notes.len());
        }
    }
}
