//! Usage pricing: metered usage records and a price catalog in, invoice lines out.
//!
//! Billed by the second: a line's exact amount is Σ(seconds × quantity) × hourly price / 3600,
//! summed over the line's usage before the one division and the one rounding (half away from
//! zero, to cents), so that splitting a usage record anywhere never changes a cent. A line
//! never exceeds `monthly_cap` × the highest quantity seen on it (prorated when a price only
//! holds for part of the month).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ids::AppId;
use super::money::{Overflow, div_round_half_away};
use super::period::Period;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageKind {
    Container,
    Addon,
}

impl UsageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageKind::Container => "container",
            UsageKind::Addon => "addon",
        }
    }

    pub fn parse(s: &str) -> Option<UsageKind> {
        match s {
            "container" => Some(UsageKind::Container),
            "addon" => Some(UsageKind::Addon),
            _ => None,
        }
    }
}

impl fmt::Display for UsageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the price catalog: the price of a container size or addon plan from a date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceEntry {
    pub kind: UsageKind,
    pub item: String,
    pub hourly_price: Decimal,
    pub monthly_cap: Option<Decimal>,
    pub effective_from: NaiveDate,
}

impl PriceEntry {
    pub fn effective_at(&self) -> DateTime<Utc> {
        Utc.from_utc_datetime(&self.effective_from.and_hms_opt(0, 0, 0).expect("midnight"))
    }
}

/// The price catalog, each item's prices sorted by the date they take effect.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    items: BTreeMap<(UsageKind, String), Vec<PriceEntry>>,
}

/// A part `[start, end)` of an interval and the price in force over it.
type PriceWindow<'a> = (DateTime<Utc>, DateTime<Utc>, &'a PriceEntry);

impl Catalog {
    pub fn new(entries: impl IntoIterator<Item = PriceEntry>) -> Catalog {
        let mut items: BTreeMap<(UsageKind, String), Vec<PriceEntry>> = BTreeMap::new();
        for e in entries {
            items.entry((e.kind, e.item.clone())).or_default().push(e);
        }
        for prices in items.values_mut() {
            prices.sort_by_key(|p| p.effective_from);
        }
        Catalog { items }
    }

    pub fn knows(&self, kind: UsageKind, item: &str) -> bool {
        self.items.contains_key(&(kind, item.to_string()))
    }

    /// The price in force at `at`, if any.
    pub fn price_at(&self, kind: UsageKind, item: &str, at: DateTime<Utc>) -> Option<&PriceEntry> {
        self.items
            .get(&(kind, item.to_string()))?
            .iter()
            .rev()
            .find(|p| p.effective_at() <= at)
    }

    /// The prices in force over `[from, to)`, each with the part of the interval it covers.
    /// The part before the first price (if any) is returned as `Err(uncovered_start)`.
    fn windows(
        &self,
        kind: UsageKind,
        item: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<PriceWindow<'_>>, DateTime<Utc>> {
        let Some(prices) = self.items.get(&(kind, item.to_string())) else {
            return Err(from);
        };
        let mut out = Vec::new();
        for (i, p) in prices.iter().enumerate() {
            let start = p.effective_at();
            let end = prices.get(i + 1).map(|n| n.effective_at());
            let lo = from.max(start);
            let hi = end.map_or(to, |e| to.min(e));
            if lo < hi {
                out.push((lo, hi, p));
            }
        }
        match prices.first() {
            Some(first) if first.effective_at() <= from => Ok(out),
            _ => Err(from),
        }
    }
}

/// A metered usage record: `quantity` containers (or one addon) running from `started_at`
/// until `ended_at` (still running when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    pub id: String,
    pub app_id: AppId,
    pub kind: UsageKind,
    pub item: String,
    pub quantity: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// What a run bills: the part `[from, to)` of a calendar month. A monthly invoice bills the
/// whole month; a final invoice at account closing bills it up to the closing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingWindow {
    pub period: Period,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl BillingWindow {
    pub fn month(period: Period) -> BillingWindow {
        BillingWindow {
            period,
            from: period.start(),
            to: period.end(),
        }
    }
}

/// A priced invoice line: one app × kind × item (× price, when the price changed in the month).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub app_id: AppId,
    pub kind: UsageKind,
    pub item: String,
    pub unit_price: Decimal,
    /// Σ seconds × quantity over the line's usage.
    pub quantity_seconds: i128,
    pub max_quantity: i64,
    /// The first and last instants billed on this line.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub capped: bool,
    pub amount_minor: i64,
}

impl PricedLine {
    /// Quantity in hours (container-hours), to two decimals, for display.
    pub fn quantity_hours(&self) -> Decimal {
        // Hundredths of an hour: Σ seconds × quantity / 36, half away from zero; exact.
        let hundredths = div_round_half_away(self.quantity_seconds, 36);
        // `price_usage` refuses a line whose quantity does not fit a Decimal: the fallback is
        // never taken for a line it priced.
        Decimal::try_from_i128_with_scale(hundredths, 2).unwrap_or(Decimal::MAX)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("usage {usage_id}: no {kind} price for `{item}` in force at {at}")]
    NoPrice {
        usage_id: String,
        kind: UsageKind,
        item: String,
        at: DateTime<Utc>,
    },
    #[error("usage {usage_id}: quantity {quantity} is negative")]
    NegativeQuantity { usage_id: String, quantity: i64 },
    #[error("usage {usage_id}: the {kind} price of `{item}` from {effective_from} is negative")]
    NegativePrice {
        usage_id: String,
        kind: UsageKind,
        item: String,
        effective_from: NaiveDate,
    },
    /// A step of pricing does not fit its type (absurd quantities, durations or prices): the
    /// record named is the one with the highest quantity on the line.
    #[error("usage {usage_id} (app {app_id}, {kind} `{item}`): {overflow}")]
    Overflow {
        usage_id: String,
        app_id: AppId,
        kind: UsageKind,
        item: String,
        overflow: Overflow,
    },
}

#[derive(Debug, Default)]
struct Acc {
    quantity_seconds: i128,
    max_quantity: i64,
    /// The record with the highest quantity (the first one seen), named by errors.
    max_usage_id: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// An exact non-negative rational amount in major units: `num / den`, `den` > 0.
#[derive(Debug, Clone, Copy)]
struct Exact {
    num: i128,
    den: i128,
}

impl Exact {
    /// `d` × `times`, all exact; `None` when a step does not fit an i128.
    fn of(d: Decimal, times: &[i128], per: i128) -> Option<Exact> {
        let d = d.normalize();
        let mut num = d.mantissa();
        for t in times {
            num = num.checked_mul(*t)?;
        }
        let den = 10i128.checked_pow(d.scale())?.checked_mul(per)?;
        Some(Exact { num, den })
    }

    /// Rounded to minor units, half away from zero (once, on the exact amount).
    fn to_minor(self) -> Option<i64> {
        let whole = self.num / self.den;
        let rest = self.num % self.den;
        // rest < den <= 10^28 × 2^32: × 100 fits in an i128.
        let cents = div_round_half_away(rest.checked_mul(100)?, self.den);
        i64::try_from(whole.checked_mul(100)?.checked_add(cents)?).ok()
    }

    /// Compares two non-negative fractions without overflow (by their continued fractions:
    /// equal whole parts, then the remainders' reciprocals).
    fn cmp(self, other: Exact) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let (mut a, mut b, mut c, mut d) = (self.num, self.den, other.num, other.den);
        loop {
            let (qa, qc) = (a / b, c / d);
            if qa != qc {
                return qa.cmp(&qc);
            }
            let (ra, rc) = (a % b, c % d);
            match (ra == 0, rc == 0) {
                (true, true) => return Ordering::Equal,
                (true, false) => return Ordering::Less,
                (false, true) => return Ordering::Greater,
                // ra/b < rc/d  <=>  ra·d < rc·b  <=>  d/rc < b/ra
                (false, false) => (a, b, c, d) = (d, rc, b, ra),
            }
        }
    }
}

/// The largest integer a `Decimal` holds (2^96 − 1).
const DECIMAL_MAX_MANTISSA: i128 = (1i128 << 96) - 1;

/// Prices the usage of one account (or any set of records) over a billing window.
///
/// Every step is exact integer arithmetic on the prices' decimal mantissas, checked: a step
/// that does not fit is a [`PricingError::Overflow`] naming the record, never a panic or a
/// wrapped amount.
pub fn price_usage(
    window: &BillingWindow,
    usage: &[UsageRecord],
    catalog: &Catalog,
) -> Result<Vec<PricedLine>, PricingError> {
    // Key: app, kind, item, the date the price took effect.
    let mut acc: BTreeMap<(AppId, UsageKind, String, NaiveDate), (Acc, &PriceEntry)> =
        BTreeMap::new();
    for u in usage {
        if u.quantity < 0 {
            return Err(PricingError::NegativeQuantity {
                usage_id: u.id.clone(),
                quantity: u.quantity,
            });
        }
        let start = u.started_at.max(window.from);
        let end = u.ended_at.unwrap_or(window.to).min(window.to);
        if start >= end {
            continue;
        }
        let pieces =
            catalog
                .windows(u.kind, &u.item, start, end)
                .map_err(|at| PricingError::NoPrice {
                    usage_id: u.id.clone(),
                    kind: u.kind,
                    item: u.item.clone(),
                    at,
                })?;
        let overflow = |what| PricingError::Overflow {
            usage_id: u.id.clone(),
            app_id: u.app_id.clone(),
            kind: u.kind,
            item: u.item.clone(),
            overflow: Overflow::of(what),
        };
        for (lo, hi, price) in pieces {
            if (price.hourly_price.is_sign_negative() && !price.hourly_price.is_zero())
                || price
                    .monthly_cap
                    .is_some_and(|c| c.is_sign_negative() && !c.is_zero())
            {
                return Err(PricingError::NegativePrice {
                    usage_id: u.id.clone(),
                    kind: u.kind,
                    item: u.item.clone(),
                    effective_from: price.effective_from,
                });
            }
            let secs = i128::from((hi - lo).num_seconds());
            let key = (
                u.app_id.clone(),
                u.kind,
                u.item.clone(),
                price.effective_from,
            );
            let (a, _) = acc.entry(key).or_insert_with(|| (Acc::default(), price));
            a.quantity_seconds = secs
                .checked_mul(i128::from(u.quantity))
                .and_then(|q| a.quantity_seconds.checked_add(q))
                .filter(|q| *q <= DECIMAL_MAX_MANTISSA)
                .ok_or_else(|| overflow("Σ seconds × quantity"))?;
            if a.max_usage_id.is_empty() || u.quantity > a.max_quantity {
                a.max_quantity = u.quantity;
                a.max_usage_id = u.id.clone();
            }
            a.from = Some(a.from.map_or(lo, |f| f.min(lo)));
            a.to = Some(a.to.map_or(hi, |t| t.max(hi)));
        }
    }

    let month_from = window.period.start();
    let month_to = window.period.end();
    let month_secs = i128::from(window.period.seconds());
    let mut lines = Vec::with_capacity(acc.len());
    for ((app_id, kind, item, _), (a, price)) in acc {
        if a.quantity_seconds == 0 {
            continue;
        }
        let overflow = |what| PricingError::Overflow {
            usage_id: a.max_usage_id.clone(),
            app_id: app_id.clone(),
            kind,
            item: item.clone(),
            overflow: Overflow::of(what),
        };
        // Σ(seconds × quantity) × hourly price / 3600.
        let exact = Exact::of(price.hourly_price, &[a.quantity_seconds], 3600)
            .ok_or_else(|| overflow("Σ seconds × quantity × hourly price"))?;
        let (amount, capped) = match price.monthly_cap {
            Some(cap) => {
                // The part of the month this price is in force, for a prorated cap. The
                // windows are disjoint parts of one month: their sum cannot overflow.
                let validity = catalog
                    .windows(kind, &item, month_from, month_to)
                    .unwrap_or_else(|_| Vec::new())
                    .into_iter()
                    .filter(|(_, _, p)| p.effective_from == price.effective_from)
                    .map(|(lo, hi, _)| (hi - lo).num_seconds())
                    .sum::<i64>();
                let validity = if validity == 0 {
                    window.period.seconds()
                } else {
                    validity
                };
                // cap × highest quantity × validity / seconds in the month.
                let cap_exact = Exact::of(
                    cap,
                    &[i128::from(a.max_quantity), i128::from(validity)],
                    month_secs,
                )
                .ok_or_else(|| overflow("monthly cap × quantity"))?;
                if exact.cmp(cap_exact) == std::cmp::Ordering::Greater {
                    (cap_exact, true)
                } else {
                    (exact, false)
                }
            }
            None => (exact, false),
        };
        let amount_minor = amount
            .to_minor()
            .ok_or_else(|| overflow("the line's amount"))?;
        let (Some(from), Some(to)) = (a.from, a.to) else {
            continue; // never: set with the quantity
        };
        lines.push(PricedLine {
            app_id,
            kind,
            item,
            unit_price: price.hourly_price,
            quantity_seconds: a.quantity_seconds,
            max_quantity: a.max_quantity,
            from,
            to,
            capped,
            amount_minor,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn price(item: &str, hourly: &str, cap: Option<&str>, from: &str) -> PriceEntry {
        PriceEntry {
            kind: UsageKind::Container,
            item: item.into(),
            hourly_price: Decimal::from_str(hourly).unwrap(),
            monthly_cap: cap.map(|c| Decimal::from_str(c).unwrap()),
            effective_from: NaiveDate::from_str(from).unwrap(),
        }
    }

    fn usage(id: &str, q: i64, from: &str, to: Option<&str>) -> UsageRecord {
        UsageRecord {
            id: id.into(),
            app_id: AppId::from("app-1"),
            kind: UsageKind::Container,
            item: "M".into(),
            quantity: q,
            started_at: t(from),
            ended_at: to.map(t),
        }
    }

    fn oct() -> BillingWindow {
        BillingWindow::month("2026-10".parse().unwrap())
    }

    #[test]
    fn bills_by_the_second_and_rounds_once_per_line() {
        let cat = Catalog::new([price("M", "0.03", None, "2026-01-01")]);
        // 10h + 0.5h at 2 containers, and 1 second: exact sum 21.0002777... h
        let lines = price_usage(
            &oct(),
            &[
                usage(
                    "u1",
                    2,
                    "2026-10-02T00:00:00Z",
                    Some("2026-10-02T10:30:00Z"),
                ),
                usage(
                    "u2",
                    1,
                    "2026-10-03T00:00:00Z",
                    Some("2026-10-03T00:00:01Z"),
                ),
            ],
            &cat,
        )
        .unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].quantity_seconds, 2 * 37800 + 1);
        // 75601 s * 0.03 / 3600 = 0.630008.. -> 0.63
        assert_eq!(lines[0].amount_minor, 63);
        assert_eq!(lines[0].max_quantity, 2);
    }

    #[test]
    fn splits_at_month_boundaries_and_bills_running_usage_to_the_end() {
        let cat = Catalog::new([price("M", "1", None, "2026-01-01")]);
        let lines = price_usage(
            &oct(),
            &[
                usage(
                    "u1",
                    1,
                    "2026-09-30T22:00:00Z",
                    Some("2026-10-01T02:00:00Z"),
                ),
                usage("u2", 1, "2026-10-31T23:00:00Z", None),
            ],
            &cat,
        )
        .unwrap();
        assert_eq!(lines[0].amount_minor, 300); // 2 h in October + 1 h running to the end
    }

    #[test]
    fn caps_at_the_monthly_cap_times_the_highest_quantity() {
        let cat = Catalog::new([price("M", "0.03", Some("14.40"), "2026-01-01")]);
        let lines = price_usage(
            &oct(),
            &[usage("u1", 2, "2026-09-01T00:00:00Z", None)],
            &cat,
        )
        .unwrap();
        // uncapped: 744 h * 2 * 0.03 = 44.64; cap 14.40 * 2
        assert_eq!(lines[0].amount_minor, 2880);
        assert!(lines[0].capped);
    }

    #[test]
    fn a_price_change_mid_month_makes_two_lines() {
        let cat = Catalog::new([
            price("M", "1", None, "2026-01-01"),
            price("M", "2", None, "2026-10-16"),
        ]);
        let lines = price_usage(
            &oct(),
            &[usage(
                "u1",
                1,
                "2026-10-15T23:00:00Z",
                Some("2026-10-16T01:00:00Z"),
            )],
            &cat,
        )
        .unwrap();
        assert_eq!(
            lines.iter().map(|l| l.amount_minor).collect::<Vec<_>>(),
            vec![100, 200]
        );
    }

    #[test]
    fn usage_before_any_price_is_an_error() {
        let cat = Catalog::new([price("M", "1", None, "2026-10-10")]);
        let err = price_usage(
            &oct(),
            &[usage("u9", 1, "2026-10-05T00:00:00Z", None)],
            &cat,
        )
        .unwrap_err();
        assert!(err.to_string().contains("usage u9"), "{err}");
    }

    #[test]
    fn an_i64_max_quantity_is_an_error_naming_the_record_not_a_panic() {
        let cat = Catalog::new([price("M", "0.03", None, "2026-01-01")]);
        let err = price_usage(
            &oct(),
            &[
                usage("u-ok", 1, "2026-10-02T00:00:00Z", None),
                usage("u-huge", i64::MAX, "2026-10-02T00:00:00Z", None),
            ],
            &cat,
        )
        .unwrap_err();
        assert!(matches!(err, PricingError::Overflow { ref usage_id, .. } if usage_id == "u-huge"));
        let msg = err.to_string();
        assert!(
            msg.contains("usage u-huge") && msg.contains("app app-1"),
            "{msg}"
        );
    }

    #[test]
    fn a_price_at_the_decimal_maximum_is_an_error_not_a_panic() {
        let cat = Catalog::new([price(
            "M",
            "79228162514264337593543950335",
            Some("79228162514264337593543950335"),
            "2026-01-01",
        )]);
        let err = price_usage(
            &oct(),
            &[usage("u1", 1, "2026-10-02T00:00:00Z", None)],
            &cat,
        )
        .unwrap_err();
        assert!(err.to_string().contains("usage u1"), "{err}");
        // Running from the dawn of time to the end of time is one month in this window.
        let cat = Catalog::new([price("M", "1", None, "2026-01-01")]);
        let far = UsageRecord {
            started_at: DateTime::<Utc>::MIN_UTC,
            ended_at: Some(DateTime::<Utc>::MAX_UTC),
            ..usage("u2", 1, "2026-10-02T00:00:00Z", None)
        };
        let lines = price_usage(&oct(), &[far], &cat).unwrap();
        assert_eq!(lines[0].amount_minor, 744 * 100);
    }

    #[test]
    fn the_largest_amounts_that_fit_are_billed_exactly() {
        // 10^10 containers all month: an amount close to i64::MAX cents, exact to the cent.
        let cat = Catalog::new([price("M", "12396.7366086757", None, "2026-01-01")]);
        let lines = price_usage(
            &oct(),
            &[usage("u1", 10_000_000_000, "2026-09-01T00:00:00Z", None)],
            &cat,
        )
        .unwrap();
        // 744 h × 10^10 × 12396.7366086757 = 92 231 720 368 547 208 EUR (exact), in cents:
        assert_eq!(lines[0].amount_minor, 9_223_172_036_854_720_800);
        assert_eq!(
            lines[0].quantity_hours(),
            Decimal::from(7_440_000_000_000i64)
        );
    }

    #[test]
    fn exact_fractions_compare_without_overflow() {
        let e = |num, den| Exact { num, den };
        use std::cmp::Ordering::*;
        assert_eq!(e(1, 3).cmp(e(1, 3)), Equal);
        assert_eq!(e(2, 6).cmp(e(1, 3)), Equal);
        assert_eq!(e(1, 3).cmp(e(1, 2)), Less);
        assert_eq!(e(5, 2).cmp(e(7, 3)), Greater);
        assert_eq!(e(0, 7).cmp(e(0, 1)), Equal);
        assert_eq!(e(0, 7).cmp(e(1, i128::MAX)), Less);
        let big = i128::MAX;
        assert_eq!(e(big - 1, big).cmp(e(big - 2, big - 1)), Greater);
        assert_eq!(e(big, big - 1).cmp(e(big - 1, big - 2)), Less);
    }
}
