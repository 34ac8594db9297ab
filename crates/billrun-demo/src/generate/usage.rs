//! The catalog the demo's usage is priced from, and the runs of each app: whole-month,
//! crossing, mid-month and short, in container sizes and addon plans drawn by weight.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::rng::Rng;
use super::{DAY, HOUR, at_second, months_back};
use billrun::core::ids::AppId;
use billrun::core::period::Period;
use billrun::core::pricing::UsageKind;
use billrun::model::{PriceEntry, UsageRecord};

/// Container sizes: name, hourly price in 1/10000 €, monthly cap in cents (720 h), weight.
const SIZES: &[(&str, i64, i64, u64)] = &[
    ("S", 100, 720, 35),
    ("M", 200, 1440, 30),
    ("L", 400, 2880, 18),
    ("XL", 800, 5760, 10),
    ("2XL", 1600, 11520, 7),
];

/// Addon plans: name, hourly price in 1/10000 €, monthly cap in cents, weight.
const ADDONS: &[(&str, i64, Option<i64>, u64)] = &[
    ("postgresql-sandbox", 0, None, 25),
    ("postgresql-starter-512", 250, Some(1800), 24),
    ("postgresql-business-1024", 1000, Some(7200), 8),
    ("redis-starter-256", 125, Some(900), 20),
    ("mongodb-starter-512", 250, Some(1800), 12),
    ("elasticsearch-starter-1024", 700, Some(5040), 11),
];

pub fn catalog(period: Period) -> Vec<PriceEntry> {
    // In force before any generated account or usage, and no later than 2024-01-01.
    let base = NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date");
    let from = base.min(months_back(period, 24).first_day());
    let change =
        NaiveDate::from_ymd_opt(period.year, period.month, 16).expect("every month has a 16th");
    let entry = |kind, item: &str, hourly: i64, cap: Option<i64>, from| PriceEntry {
        kind,
        item: item.to_string(),
        hourly_price: Decimal::new(hourly, 4),
        monthly_cap: cap.map(|c| Decimal::new(c, 2)),
        effective_from: from,
    };
    let mut out = Vec::with_capacity(SIZES.len() + ADDONS.len() + 1);
    for &(item, hourly, cap, _) in SIZES {
        out.push(entry(UsageKind::Container, item, hourly, Some(cap), from));
    }
    // A mid-month price cut, to show two lines for one item on an invoice.
    out.push(entry(
        UsageKind::Container,
        "2XL",
        1500,
        Some(10800),
        change,
    ));
    for &(item, hourly, cap, _) in ADDONS {
        out.push(entry(UsageKind::Addon, item, hourly, cap, from));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Started before the period, still running.
    Whole,
    /// Started before the period, stopped during it.
    CrossStart,
    /// Started during the period, still running at its end.
    MidRunning,
    /// Started and stopped during the period, over days.
    MidStop,
    /// A few minutes to a few hours.
    Short,
}

const CONTAINER_RUNS: &[(Run, u64)] = &[
    (Run::Whole, 30),
    (Run::CrossStart, 10),
    (Run::MidRunning, 15),
    (Run::MidStop, 20),
    (Run::Short, 25),
];

const ADDON_RUNS: &[(Run, u64)] = &[
    (Run::Whole, 78),
    (Run::CrossStart, 8),
    (Run::MidRunning, 8),
    (Run::MidStop, 6),
];

const RUNS_PER_APP: &[(usize, u64)] = &[(2, 40), (3, 35), (4, 25)];

const QUANTITIES: &[(i64, u64)] = &[(1, 45), (2, 28), (3, 12), (4, 8), (0, 7)];

/// A run's `[start, end)` in Unix seconds, never before `earliest` (the account's sign-up).
fn run_window(
    rng: &mut Rng,
    runs: &[(Run, u64)],
    lookback: i64,
    earliest: i64,
    p0: i64,
    p1: i64,
) -> (i64, Option<i64>) {
    let mut run = rng.weighted(runs);
    if earliest >= p0 - HOUR {
        // Signed up (just before or) during the period: nothing can predate it.
        run = match run {
            Run::Whole => Run::MidRunning,
            Run::CrossStart => Run::MidStop,
            other => other,
        };
    }
    match run {
        Run::Whole => (rng.range((p0 - lookback).max(earliest), p0 - HOUR), None),
        Run::CrossStart => {
            let start = rng.range((p0 - 20 * DAY).max(earliest), p0 - HOUR);
            (start, Some(rng.range(p0 + HOUR, p1 - HOUR)))
        }
        Run::MidRunning => (rng.range(earliest.max(p0 + HOUR), p1 - HOUR), None),
        Run::MidStop => {
            let start = rng.range(earliest.max(p0), p1 - 2 * DAY);
            let duration = rng.range(DAY, (12 * DAY).min(p1 - HOUR - start));
            (start, Some(start + duration))
        }
        Run::Short => {
            let start = rng.range(earliest.max(p0), p1 - 13 * HOUR);
            (start, Some(start + rng.range(600, 12 * HOUR)))
        }
    }
}

/// Adds an app's runs to `usage`; `before` records were made in earlier chunks (ids go on).
pub fn add_usage(
    rng: &mut Rng,
    usage: &mut Vec<UsageRecord>,
    before: usize,
    app_id: &AppId,
    earliest: i64,
    p0: i64,
    p1: i64,
) {
    let push = |usage: &mut Vec<UsageRecord>, kind, item: &str, quantity, window| {
        let (start, end): (i64, Option<i64>) = window;
        usage.push(UsageRecord {
            id: format!("use-{:07}", before + usage.len() + 1),
            app_id: app_id.clone(),
            kind,
            item: item.to_string(),
            quantity,
            started_at: at_second(start),
            ended_at: end.map(at_second),
        });
    };
    for _ in 0..rng.weighted(RUNS_PER_APP) {
        let size = SIZES[rng.weighted(SIZE_INDEX)].0;
        let quantity = match rng.weighted(QUANTITIES) {
            0 => rng.range(5, 10),
            q => q,
        };
        let window = run_window(rng, CONTAINER_RUNS, 90 * DAY, earliest, p0, p1);
        push(usage, UsageKind::Container, size, quantity, window);
    }
    let plan = ADDONS[rng.weighted(ADDON_INDEX)].0;
    let window = run_window(rng, ADDON_RUNS, 365 * DAY, earliest, p0, p1);
    push(usage, UsageKind::Addon, plan, 1, window);
}

/// Indices into `SIZES` with their weights.
const SIZE_INDEX: &[(usize, u64)] = &[
    (0, SIZES[0].3),
    (1, SIZES[1].3),
    (2, SIZES[2].3),
    (3, SIZES[3].3),
    (4, SIZES[4].3),
];

/// Indices into `ADDONS` with their weights.
const ADDON_INDEX: &[(usize, u64)] = &[
    (0, ADDONS[0].3),
    (1, ADDONS[1].3),
    (2, ADDONS[2].3),
    (3, ADDONS[3].3),
    (4, ADDONS[4].3),
    (5, ADDONS[5].3),
];
