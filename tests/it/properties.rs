//! Property tests of the money rules: lines sum to the subtotal; total = subtotal − discount +
//! VAT; nothing is ever negative; splitting a usage record anywhere gives the same invoice.

use billrun::core::ids::AppId;
use billrun::core::invoice::totals;
use billrun::core::period::Period;
use billrun::core::pricing::{
    BillingWindow, Catalog, PriceEntry, UsageKind, UsageRecord, price_usage,
};
use billrun::core::vat::{VatCase, VatTreatment};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn catalog() -> Catalog {
    let p = |kind, item: &str, price: i64, scale, cap: Option<i64>, from: &str| PriceEntry {
        kind,
        item: item.into(),
        hourly_price: Decimal::new(price, scale),
        monthly_cap: cap.map(|c| Decimal::new(c, 2)),
        effective_from: NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap(),
    };
    Catalog::new([
        p(UsageKind::Container, "S", 1, 2, Some(720), "2020-01-01"),
        p(UsageKind::Container, "M", 2, 2, Some(1440), "2020-01-01"),
        p(UsageKind::Container, "M", 3, 2, Some(1440), "2026-10-16"),
        p(UsageKind::Container, "L", 4, 2, None, "2020-01-01"),
        p(UsageKind::Addon, "pg", 25, 3, Some(1800), "2020-01-01"),
        p(UsageKind::Addon, "odd", 12_345, 7, None, "2020-01-01"),
    ])
}

fn oct() -> BillingWindow {
    BillingWindow::month(Period::new(2026, 10).unwrap())
}

fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-09-25T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

prop_compose! {
    fn usage_record(i: usize)(
        app in 0..3usize,
        item in prop::sample::select(vec![
            (UsageKind::Container, "S"), (UsageKind::Container, "M"), (UsageKind::Container, "L"),
            (UsageKind::Addon, "pg"), (UsageKind::Addon, "odd"),
        ]),
        quantity in 0..6i64,
        start in 0..(45 * 86400i64),
        len in 1..(40 * 86400i64),
        running in prop::bool::weighted(0.2),
    ) -> UsageRecord {
        let started_at = base() + Duration::seconds(start);
        UsageRecord {
            id: format!("u{i}"),
            app_id: AppId(format!("app-{app}")),
            kind: item.0,
            item: item.1.to_string(),
            quantity,
            started_at,
            ended_at: (!running).then(|| started_at + Duration::seconds(len)),
        }
    }
}

fn records() -> impl Strategy<Value = Vec<UsageRecord>> {
    (1..12usize).prop_flat_map(|n| (0..n).map(usage_record).collect::<Vec<_>>())
}

fn vat() -> impl Strategy<Value = VatTreatment> {
    prop::sample::select(vec![
        VatTreatment {
            case: VatCase::Domestic,
            rate_percent: Decimal::from(20),
        },
        VatTreatment {
            case: VatCase::EuConsumer,
            rate_percent: Decimal::new(255, 1),
        },
        VatTreatment {
            case: VatCase::ReverseCharge,
            rate_percent: Decimal::ZERO,
        },
        VatTreatment {
            case: VatCase::OutOfScope,
            rate_percent: Decimal::ZERO,
        },
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn totals_reconcile_and_nothing_is_negative(usage in records(), discount in 0..100_000i64, vat in vat()) {
        let lines = price_usage(&oct(), &usage, &catalog()).unwrap();
        for l in &lines {
            prop_assert!(l.amount_minor >= 0);
            prop_assert!(l.quantity_seconds >= 0);
        }
        let t = totals(lines.iter().map(|l| l.amount_minor), discount, vat).unwrap();
        prop_assert_eq!(t.subtotal, lines.iter().map(|l| l.amount_minor).sum::<i64>());
        prop_assert_eq!(t.total, t.subtotal - t.discount + t.tax);
        prop_assert_eq!(t.discount + t.discount_excess, discount);
        prop_assert!(t.discount >= 0 && t.discount <= t.subtotal);
        prop_assert!(t.tax >= 0 && t.total >= 0 && t.taxable_base >= 0);
    }

    #[test]
    fn splitting_a_record_anywhere_gives_the_same_invoice(usage in records(), which in any::<prop::sample::Index>(), at in 1..(80 * 86400i64)) {
        let before = price_usage(&oct(), &usage, &catalog()).unwrap();
        let i = which.index(usage.len());
        let u = usage[i].clone();
        let end = u.ended_at.unwrap_or(u.started_at + Duration::days(90));
        let cut = u.started_at + Duration::seconds(at % (end - u.started_at).num_seconds().max(2));
        prop_assume!(cut > u.started_at && cut < end);
        let mut split = usage.clone();
        split[i] = UsageRecord { ended_at: Some(cut), ..u.clone() };
        split.push(UsageRecord { id: format!("{}-b", u.id), started_at: cut, ..u });
        let after = price_usage(&oct(), &split, &catalog()).unwrap();
        prop_assert_eq!(before, after);
    }

    #[test]
    fn a_line_never_exceeds_its_cap(usage in records()) {
        for l in price_usage(&oct(), &usage, &catalog()).unwrap() {
            let cap_per_container = match (l.kind, l.item.as_str()) {
                (UsageKind::Container, "S") => Some(720),
                (UsageKind::Container, "M") => Some(1440),
                (UsageKind::Addon, "pg") => Some(1800),
                _ => None,
            };
            if let Some(cap) = cap_per_container {
                prop_assert!(l.amount_minor <= cap * l.max_quantity, "{l:?}");
            }
        }
    }
}

// ---- Extreme values (issue 25): the pricing core returns an error or the exact amount, never
// panics. The reference below is exact big-integer arithmetic, independent of the core's.

/// A non-negative big integer, little-endian 64-bit limbs: just enough to multiply and compare.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Big(Vec<u64>);

impl Big {
    fn from(n: u128) -> Big {
        Big(vec![n as u64, (n >> 64) as u64])
    }

    fn of(factors: &[u128]) -> Big {
        factors
            .iter()
            .fold(Big::from(1), |acc, f| acc.mul(&Big::from(*f)))
    }

    fn mul(&self, other: &Big) -> Big {
        let mut out = vec![0u64; self.0.len() + other.0.len()];
        for (i, a) in self.0.iter().enumerate() {
            let mut carry = 0u128;
            for (j, b) in other.0.iter().enumerate() {
                let t = u128::from(*a) * u128::from(*b) + u128::from(out[i + j]) + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
            }
            let mut k = i + other.0.len();
            while carry > 0 {
                let t = u128::from(out[k]) + carry;
                out[k] = t as u64;
                carry = t >> 64;
                k += 1;
            }
        }
        Big(out)
    }

    fn cmp(&self, other: &Big) -> std::cmp::Ordering {
        let n = self.0.len().max(other.0.len());
        let limb = |b: &Big, i: usize| b.0.get(i).copied().unwrap_or(0);
        (0..n)
            .rev()
            .map(|i| limb(self, i).cmp(&limb(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

/// Whether `minor` is `num / den` in major units rounded half away from zero to cents
/// (num, den ≥ 0): (2·minor − 1)·den ≤ 200·num < (2·minor + 1)·den, as products of factors.
fn rounds_to(minor: i64, num: &[u128], den: &[u128]) -> bool {
    let Ok(m) = u128::try_from(minor) else {
        return false;
    };
    let x = Big::of(num).mul(&Big::from(200));
    let lo_ok = m == 0 || Big::of(den).mul(&Big::from(2 * m - 1)).cmp(&x).is_le();
    let hi_ok = x.cmp(&Big::of(den).mul(&Big::from(2 * m + 1))).is_lt();
    lo_ok && hi_ok
}

/// Whether `num / den` in major units is beyond i64 minor units once rounded: 200·num ≥
/// (2·i64::MAX + 1)·den.
fn beyond_i64(num: &[u128], den: &[u128]) -> bool {
    let x = Big::of(num).mul(&Big::from(200));
    x.cmp(&Big::of(den).mul(&Big::from(2 * i64::MAX as u128 + 1)))
        .is_ge()
}

fn extreme_quantity() -> impl Strategy<Value = i64> {
    prop_oneof![
        0..5i64,
        (i64::MAX - 5)..=i64::MAX,
        0..=i64::MAX,
        Just(1i64 << 40),
    ]
}

fn extreme_time() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
        (0..(45 * 86400i64)).prop_map(|s| base() + Duration::seconds(s)),
        (DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp())
            .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
    ]
}

/// A decimal up to Decimal's largest, with 0 to 28 decimal places.
fn extreme_decimal() -> impl Strategy<Value = Decimal> {
    let mantissa = prop_oneof![
        0..1000i128,
        ((1i128 << 96) - 5)..(1i128 << 96),
        0..(1i128 << 96),
        0..(1i128 << 40),
    ];
    (mantissa, 0..=28u32).prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s))
}

prop_compose! {
    fn extreme_record(i: usize)(
        quantity in extreme_quantity(),
        a in extreme_time(),
        b in prop::option::weighted(0.8, extreme_time()),
    ) -> UsageRecord {
        UsageRecord {
            id: format!("u{i}"),
            app_id: AppId("app-x".into()),
            kind: UsageKind::Container,
            item: "X".into(),
            quantity,
            started_at: a,
            ended_at: b,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn pricing_extreme_values_gives_an_error_or_the_exact_amount_never_a_panic(
        usage in (1..4usize).prop_flat_map(|n| (0..n).map(extreme_record).collect::<Vec<_>>()),
        price in extreme_decimal(),
        cap in prop::option::of(extreme_decimal()),
    ) {
        let catalog = Catalog::new([PriceEntry {
            kind: UsageKind::Container,
            item: "X".into(),
            hourly_price: price,
            monthly_cap: cap,
            effective_from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        }]);
        let w = oct();
        // Σ seconds × quantity over the month, exactly (a few records: no i128 overflow).
        let mut quantity_seconds = 0i128;
        let mut max_quantity = 0i64;
        for u in &usage {
            let from = u.started_at.max(w.from);
            let to = u.ended_at.unwrap_or(w.to).min(w.to);
            if from < to {
                quantity_seconds += i128::from((to - from).num_seconds()) * i128::from(u.quantity);
                max_quantity = max_quantity.max(u.quantity);
            }
        }
        let result = price_usage(&w, &usage, &catalog);
        let (p, c) = (price.normalize(), cap.map(|c| c.normalize()));
        let pow = |s: u32| 10u128.pow(s);
        let qs = quantity_seconds as u128;
        // Uncapped: qs × price / 3600; cap: cap × highest quantity (the price holds all month).
        let exact_num = [qs, p.mantissa() as u128];
        let exact_den = [3600, pow(p.scale())];
        let cap_frac = c.map(|c| ([c.mantissa() as u128, max_quantity as u128], [pow(c.scale())]));
        let capped = cap_frac.as_ref().is_some_and(|(cn, cd)| {
            // exact > cap  <=>  qs·p_m·10^c_s > c_m·maxq·3600·10^p_s
            Big::of(&[qs, p.mantissa() as u128, cd[0]])
                .cmp(&Big::of(&[cn[0], cn[1], 3600, pow(p.scale())]))
                .is_gt()
        });
        match result {
            Ok(lines) => {
                if quantity_seconds == 0 {
                    prop_assert!(lines.is_empty());
                } else {
                    prop_assert_eq!(lines.len(), 1);
                    let l = &lines[0];
                    prop_assert_eq!(l.quantity_seconds, quantity_seconds);
                    prop_assert_eq!(l.max_quantity, max_quantity);
                    prop_assert_eq!(l.capped, capped);
                    let ok = match (&cap_frac, capped) {
                        (Some((cn, cd)), true) => rounds_to(l.amount_minor, cn, cd),
                        _ => rounds_to(l.amount_minor, &exact_num, &exact_den),
                    };
                    prop_assert!(ok, "{l:?} for {quantity_seconds} s at {price} (cap {cap:?})");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("usage u"), "{msg}");
                // An amount that fits is computed unless its steps are beyond i128 (absurdly
                // precise prices on absurd quantities): checked on the ordinary half.
                let (num, den) = match (&cap_frac, capped) {
                    (Some((cn, cd)), true) => (cn.to_vec(), cd.to_vec()),
                    _ => (exact_num.to_vec(), exact_den.to_vec()),
                };
                let ordinary = quantity_seconds < (1i128 << 64) && p.mantissa() < (1i128 << 40)
                    && c.is_none_or(|c| c.mantissa() < (1i128 << 40));
                prop_assert!(!ordinary || beyond_i64(&num, &den), "{msg}");
            }
        }
    }

    #[test]
    fn totals_of_extreme_amounts_give_an_error_or_reconcile_exactly(
        amounts in prop::collection::vec(prop_oneof![0..=i64::MAX, (i64::MAX - 3)..=i64::MAX, 0..1_000_000i64], 0..4),
        discount in prop_oneof![0..=i64::MAX, Just(i64::MAX), 0..1000i64],
        vat in vat(),
    ) {
        let subtotal: i128 = amounts.iter().map(|a| i128::from(*a)).sum();
        match totals(amounts.iter().copied(), discount, vat) {
            Ok(t) => {
                prop_assert_eq!(i128::from(t.subtotal), subtotal);
                prop_assert_eq!(t.discount, discount.min(t.subtotal));
                prop_assert_eq!(t.discount + t.discount_excess, discount);
                prop_assert_eq!(t.taxable_base, t.subtotal - t.discount);
                // tax = base × rate / 100, half away from zero: checked by multiplication.
                let r = vat.rate_percent.normalize();
                let num = [t.taxable_base as u128, r.mantissa() as u128];
                let den = [100u128, 10u128.pow(r.scale())];
                prop_assert!(rounds_to(t.tax, &num, &[den[0] * den[1], 100]), "{t:?}");
                prop_assert_eq!(i128::from(t.total), i128::from(t.taxable_base) + i128::from(t.tax));
            }
            Err(e) => {
                // Only when an amount is beyond i64 minor units.
                let base = subtotal - i128::from(discount.min(subtotal.min(i128::from(i64::MAX)) as i64));
                let r = vat.rate_percent;
                let tax_exact_hi = base * (r.mantissa() + 1) / (100 * 10i128.pow(r.scale()));
                prop_assert!(
                    subtotal > i128::from(i64::MAX) || base + tax_exact_hi > i128::from(i64::MAX),
                    "{e}"
                );
            }
        }
    }
}
