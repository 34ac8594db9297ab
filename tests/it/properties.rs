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
        let t = totals(lines.iter().map(|l| l.amount_minor), discount, vat);
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
