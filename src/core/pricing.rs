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
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::ids::AppId;
use super::money::round_to_minor;
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
        (Decimal::from_i128_with_scale(self.quantity_seconds, 0) / Decimal::from(3600))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
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
}

#[derive(Debug, Default)]
struct Acc {
    quantity_seconds: i128,
    max_quantity: i64,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// Prices the usage of one account (or any set of records) over a billing window.
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
        for (lo, hi, price) in pieces {
            let secs = i128::from((hi - lo).num_seconds());
            let key = (
                u.app_id.clone(),
                u.kind,
                u.item.clone(),
                price.effective_from,
            );
            let (a, _) = acc.entry(key).or_insert_with(|| (Acc::default(), price));
            a.quantity_seconds += secs * i128::from(u.quantity);
            a.max_quantity = a.max_quantity.max(u.quantity);
            a.from = Some(a.from.map_or(lo, |f| f.min(lo)));
            a.to = Some(a.to.map_or(hi, |t| t.max(hi)));
        }
    }

    let month_from = window.period.start();
    let month_to = window.period.end();
    let month_secs = Decimal::from(window.period.seconds());
    let mut lines = Vec::with_capacity(acc.len());
    for ((app_id, kind, item, _), (a, price)) in acc {
        if a.quantity_seconds == 0 {
            continue;
        }
        let exact = Decimal::from_i128_with_scale(a.quantity_seconds, 0) * price.hourly_price
            / Decimal::from(3600);
        let (amount, capped) = match price.monthly_cap {
            Some(cap) => {
                // The part of the month this price is in force, for a prorated cap.
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
                let cap_exact =
                    cap * Decimal::from(a.max_quantity) * Decimal::from(validity) / month_secs;
                if exact > cap_exact {
                    (cap_exact, true)
                } else {
                    (exact, false)
                }
            }
            None => (exact, false),
        };
        lines.push(PricedLine {
            app_id,
            kind,
            item,
            unit_price: price.hourly_price,
            quantity_seconds: a.quantity_seconds,
            max_quantity: a.max_quantity,
            from: a.from.expect("set with quantity"),
            to: a.to.expect("set with quantity"),
            capped,
            amount_minor: round_to_minor(amount),
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
}
