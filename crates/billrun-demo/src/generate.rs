//! A deterministic synthetic platform for `billrun demo` and the benchmarks.
//!
//! Everything comes from one `u64` seed through a self-contained xoshiro256** generator (seeded
//! by SplitMix64) and integer arithmetic only: the same seed, period and size give the same
//! platform on every machine. No hashing with random state, no floats, no clock.
//!
//! The shape of the platform, for a billing period `P`:
//! - accounts `acc-000001`…, numbered in the order they signed up (over the 24 months before
//!   `P`, about 5% during `P` itself); about 50% in France, 30% in 15 other EU states, 20%
//!   outside the EU; about 45% businesses (company name with a legal form, VAT number for EU
//!   businesses, sometimes a local tax id elsewhere); about 15% referred by an earlier account,
//!   mostly recently;
//! - 2.5 apps per account on average (0 to 6), `app-000001`…;
//! - per app 2 to 4 container runs and one addon, `use-0000001`…, with whole-month, crossing,
//!   mid-month and short runs;
//! - a catalog of 5 container sizes and 6 addon plans, with a mid-month price change for `2XL`;
//! - prepaid PayPal credit for about 10% of accounts.

//!
//! The countries and the names drawn from are data files (`crates/billrun-demo/src/data/`, see `tables`).

use chrono::{DateTime, Utc};

use billrun::core::ids::{AccountId, AppId};
use billrun::core::period::Period;
use billrun::model::{Account, App, PriceEntry, UsageRecord};

mod accounts;
mod rng;
mod tables;
#[cfg(test)]
mod tests;
mod usage;

use accounts::make_account;
use rng::{Rng, mix64};
use tables::{Names, Tables, tables};
use usage::{add_usage, catalog};

/// Prepaid credit an account bought (through PayPal) before or during the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCredit {
    pub account_id: AccountId,
    pub amount_minor: i64,
    pub reference: String,
    pub at: DateTime<Utc>,
}

/// A whole synthetic platform: what an import would bring in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPlatform {
    pub accounts: Vec<Account>,
    pub apps: Vec<App>,
    pub catalog: Vec<PriceEntry>,
    pub usage: Vec<UsageRecord>,
    pub credits: Vec<DemoCredit>,
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// Deterministic from `seed`: same inputs, same output, on every machine.
pub fn generate(seed: u64, period: Period, accounts: usize) -> DemoPlatform {
    let mut g = Generator::new(seed, period, accounts);
    let mut out = DemoPlatform {
        accounts: Vec::with_capacity(accounts),
        apps: Vec::with_capacity(accounts * 5 / 2 + accounts / 8 + 16),
        catalog: g.catalog(),
        usage: Vec::with_capacity((accounts * 5 / 2 + accounts / 8 + 16) * 4),
        credits: Vec::with_capacity(accounts / 8 + 8),
    };
    while let Some(chunk) = g.next_chunk(accounts.max(1)) {
        out.accounts.extend(chunk.accounts);
        out.apps.extend(chunk.apps);
        out.usage.extend(chunk.usage);
        out.credits.extend(chunk.credits);
    }
    out
}

/// The same platform as [`generate`], a chunk of accounts at a time (with their apps, usage and
/// credits), so that a large platform never has to be held in memory at once: the benchmark
/// seeds 100,000 accounts this way. Concatenating the chunks gives exactly `generate`'s output.
pub struct Generator {
    period: Period,
    p0: i64,
    p1: i64,
    recent_from: i64,
    // Independent streams, so that changing how usage is drawn leaves the accounts alone. Each
    // is drawn in account order, so drawing them chunk by chunk gives the same numbers.
    rng_accounts: Rng,
    rng_apps: Rng,
    rng_usage: Rng,
    rng_credits: Rng,
    reference_key: u64,
    tables: &'static Tables,
    /// Sign-up times, sorted, so that ids follow the order of creation (strictly).
    created: Vec<i64>,
    /// The next account (index into `created`).
    next: usize,
    apps_so_far: usize,
    usage_so_far: usize,
    credits_so_far: u64,
    /// How many apps an account has, with weights: [`APP_COUNTS`] (the demo's) unless
    /// [`Generator::with_app_counts`] says otherwise.
    app_counts: &'static [(usize, u64)],
}

impl Generator {
    pub fn new(seed: u64, period: Period, accounts: usize) -> Generator {
        let p0 = period.start().timestamp();
        let p1 = period.end().timestamp();
        let signups_from = months_back(period, 24).start().timestamp();
        let recent_from = months_back(period, 11).start().timestamp();

        let mut rng_accounts = Rng::new(seed, 1);
        let rng_apps = Rng::new(seed, 2);
        let rng_usage = Rng::new(seed, 3);
        let mut rng_credits = Rng::new(seed, 4);

        let mut created: Vec<i64> = Vec::with_capacity(accounts);
        for _ in 0..accounts {
            let t = if rng_accounts.chance(5) {
                rng_accounts.range(p0 + DAY, p1 - 3 * DAY)
            } else {
                rng_accounts.range(signups_from, p0 - 1)
            };
            created.push(t);
        }
        created.sort_unstable();
        for i in 1..created.len() {
            if created[i] <= created[i - 1] {
                created[i] = created[i - 1] + 1;
            }
        }
        let reference_key = rng_credits.next_u64();
        Generator {
            period,
            p0,
            p1,
            recent_from,
            rng_accounts,
            rng_apps,
            rng_usage,
            rng_credits,
            reference_key,
            tables: tables(),
            created,
            next: 0,
            apps_so_far: 0,
            usage_so_far: 0,
            credits_so_far: 0,
            app_counts: APP_COUNTS,
        }
    }

    /// The same platform but with apps per account drawn from `counts` ((apps, weight) pairs):
    /// the benchmark's platform has 3 apps per account on average ([`BENCH_APP_COUNTS`]) where
    /// the demo's has 2.5. Accounts and credits are drawn from streams of their own, so they
    /// stay the same.
    pub fn with_app_counts(mut self, counts: &'static [(usize, u64)]) -> Generator {
        self.app_counts = counts;
        self
    }

    /// The platform's price catalog.
    pub fn catalog(&self) -> Vec<PriceEntry> {
        catalog(self.period)
    }

    /// The number of accounts the platform has.
    pub fn accounts(&self) -> usize {
        self.created.len()
    }

    /// The next `max_accounts` accounts (at least one) with their apps, usage and credits;
    /// `None` once every account was given. The chunk's `catalog` is empty: see
    /// [`Generator::catalog`].
    pub fn next_chunk(&mut self, max_accounts: usize) -> Option<DemoPlatform> {
        let from = self.next;
        let to = (from + max_accounts.max(1)).min(self.created.len());
        if from >= to {
            return None;
        }
        self.next = to;
        let n = to - from;
        let (p0, p1) = (self.p0, self.p1);

        let mut out_accounts = Vec::with_capacity(n);
        // Per account: the slug its app names may start with.
        let mut slugs: Vec<String> = Vec::with_capacity(n);
        for i in from..to {
            let (account, slug) = make_account(
                &mut self.rng_accounts,
                self.tables,
                i,
                self.created[i],
                self.recent_from,
            );
            out_accounts.push(account);
            slugs.push(slug);
        }

        let mut apps: Vec<App> = Vec::with_capacity(n * 5 / 2 + n / 8 + 16);
        let mut usage: Vec<UsageRecord> = Vec::with_capacity(apps.capacity() * 4);
        for (k, account) in out_accounts.iter().enumerate() {
            let count = self.rng_apps.weighted(self.app_counts);
            let first_app = apps.len();
            for _ in 0..count {
                let name = unique_app_name(
                    &mut self.rng_apps,
                    &self.tables.names,
                    &slugs[k],
                    &apps[first_app..],
                );
                let app_id = AppId(format!("app-{:06}", self.apps_so_far + apps.len() + 1));
                add_usage(
                    &mut self.rng_usage,
                    &mut usage,
                    self.usage_so_far,
                    &app_id,
                    self.created[from + k],
                    p0,
                    p1,
                );
                apps.push(App {
                    id: app_id,
                    name,
                    account_id: account.id.clone(),
                });
            }
        }
        self.apps_so_far += apps.len();
        self.usage_so_far += usage.len();

        let mut credits = Vec::with_capacity(n / 8 + 8);
        let rng = &mut self.rng_credits;
        for (k, account) in out_accounts.iter().enumerate() {
            if !rng.chance(10) {
                continue;
            }
            let euros = if rng.chance(10) {
                rng.range(10, 100)
            } else {
                rng.weighted(CREDIT_EUROS)
            };
            let at = rng.range(self.created[from + k].max(p0 - 180 * DAY), p1 - 1);
            let reference = paypal_reference(rng, self.reference_key, self.credits_so_far);
            self.credits_so_far += 1;
            credits.push(DemoCredit {
                account_id: account.id.clone(),
                amount_minor: euros * 100,
                reference,
                at: at_second(at),
            });
        }

        Some(DemoPlatform {
            accounts: out_accounts,
            apps,
            catalog: Vec::new(),
            usage,
            credits,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Time

fn at_second(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("generated times are in chrono's range")
}

fn months_back(period: Period, months: u32) -> Period {
    (0..months).fold(period, |p, _| p.prev())
}

// ---------------------------------------------------------------------------------------------
// Apps

/// Apps per account: mean 2.5.
const APP_COUNTS: &[(usize, u64)] = &[(0, 5), (1, 22), (2, 28), (3, 22), (4, 13), (5, 6), (6, 4)];

/// Apps per account for the benchmark: mean 3.00 exactly (weights sum to 100; 300 apps per
/// 100 accounts).
pub const BENCH_APP_COUNTS: &[(usize, u64)] =
    &[(0, 4), (1, 14), (2, 22), (3, 24), (4, 18), (5, 10), (6, 8)];

/// A name no sibling (app of the same account) has.
fn unique_app_name(rng: &mut Rng, names: &Names, slug: &str, siblings: &[App]) -> String {
    let stem = rng.pick(&names.app_stems);
    let role = rng.pick(&names.app_roles);
    let name = match rng.below(100) {
        0..=44 => format!("{stem}-{role}"),
        45..=59 => format!("{slug}-{role}"),
        60..=74 => format!("{slug}-{stem}"),
        75..=84 => stem.clone(),
        _ => format!("{slug}-{role}-{}", rng.range(2, 4)),
    };
    let taken = |n: &str| siblings.iter().any(|a| a.name == n);
    if !taken(&name) {
        return name;
    }
    // At most 6 siblings: one of `-2` to `-8` is free.
    let mut k = 2;
    loop {
        let candidate = format!("{name}-{k}");
        if !taken(&candidate) {
            return candidate;
        }
        k += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Credits

const CREDIT_EUROS: &[(i64, u64)] = &[
    (10, 15),
    (20, 20),
    (25, 10),
    (30, 10),
    (50, 25),
    (75, 5),
    (100, 15),
];

const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `PAYPAL-` and 17 uppercase alphanumerics: 4 random, then 13 encoding a bijection of the
/// credit's number, so that references never repeat within a platform.
fn paypal_reference(rng: &mut Rng, key: u64, number: u64) -> String {
    let mut out = String::with_capacity(24);
    out.push_str("PAYPAL-");
    for _ in 0..4 {
        out.push(char::from(*rng.pick(BASE36)));
    }
    let mut value = mix64(number.wrapping_add(key));
    let mut tail = [b'0'; 13];
    for slot in tail.iter_mut().rev() {
        *slot = BASE36[(value % 36) as usize];
        value /= 36;
    }
    out.extend(tail.iter().map(|&b| char::from(b)));
    out
}
