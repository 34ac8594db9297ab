//! The platform as a whole: deterministic, chunked, in the proportions the module says.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;
use billrun::core::countries::{is_eu_member, is_iso_country, vat_prefix};
use billrun::core::invoice::Language;
use billrun::core::pricing::{BillingWindow, Catalog, UsageKind, price_usage};
use billrun::model::Account;

fn oct() -> Period {
    "2026-10".parse().unwrap()
}

fn periods() -> Vec<Period> {
    ["2026-10", "2025-02", "2024-03", "2024-12"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[test]
fn same_seed_same_output() {
    let a = generate(42, oct(), 240);
    let b = generate(42, oct(), 240);
    assert_eq!(a, b);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn chunks_concatenate_to_the_whole_platform() {
    let whole = generate(42, oct(), 240);
    for size in [1, 7, 100, 240, 1000] {
        let mut g = Generator::new(42, oct(), 240);
        assert_eq!(g.catalog(), whole.catalog);
        let (mut accounts, mut apps, mut usage, mut credits) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        while let Some(c) = g.next_chunk(size) {
            assert!(c.accounts.len() <= size && c.catalog.is_empty());
            accounts.extend(c.accounts);
            apps.extend(c.apps);
            usage.extend(c.usage);
            credits.extend(c.credits);
        }
        assert_eq!(accounts, whole.accounts, "chunks of {size}");
        assert_eq!(apps, whole.apps, "chunks of {size}");
        assert_eq!(usage, whole.usage, "chunks of {size}");
        assert_eq!(credits, whole.credits, "chunks of {size}");
    }
}

#[test]
fn the_bench_platform_has_three_apps_per_account_and_the_same_accounts() {
    let weights: u64 = BENCH_APP_COUNTS.iter().map(|(_, w)| w).sum();
    let apps: u64 = BENCH_APP_COUNTS.iter().map(|&(n, w)| n as u64 * w).sum();
    assert_eq!(
        (weights, apps),
        (100, 300),
        "exactly 3 apps per account by weight"
    );

    let mut demo = Generator::new(42, oct(), 10_000);
    let mut bench = Generator::new(42, oct(), 10_000).with_app_counts(BENCH_APP_COUNTS);
    let (d, b) = (
        demo.next_chunk(10_000).unwrap(),
        bench.next_chunk(10_000).unwrap(),
    );
    assert_eq!(d.accounts, b.accounts);
    assert_eq!(d.credits, b.credits);
    let per_account = |p: &DemoPlatform| p.apps.len() as f64 / p.accounts.len() as f64;
    assert!((2.9..3.1).contains(&per_account(&b)), "{}", per_account(&b));
    assert!((2.4..2.6).contains(&per_account(&d)), "{}", per_account(&d));
    // Per app 2 to 4 container runs and one addon.
    let mut per_app: HashMap<&AppId, (usize, usize)> = HashMap::new();
    for u in &b.usage {
        let e = per_app.entry(&u.app_id).or_default();
        match u.kind {
            UsageKind::Container => e.0 += 1,
            UsageKind::Addon => e.1 += 1,
        }
    }
    assert_eq!(per_app.len(), b.apps.len());
    assert!(
        per_app
            .values()
            .all(|&(c, a)| (2..=4).contains(&c) && a == 1)
    );
}

#[test]
fn different_seed_different_output() {
    let a = generate(42, oct(), 240);
    let b = generate(43, oct(), 240);
    assert_ne!(a.accounts, b.accounts);
    assert_ne!(a.usage, b.usage);
    assert_ne!(a.credits, b.credits);
}

#[test]
fn about_two_and_a_half_apps_per_account() {
    for seed in [1, 42, 2026] {
        let p = generate(seed, oct(), 240);
        assert_eq!(p.accounts.len(), 240);
        assert!(
            (500..=700).contains(&p.apps.len()),
            "seed {seed}: {} apps",
            p.apps.len()
        );
        let mut per_account: HashMap<&AccountId, usize> = HashMap::new();
        for app in &p.apps {
            *per_account.entry(&app.account_id).or_default() += 1;
        }
        assert!(per_account.len() < 240, "some accounts have no app");
        assert!(per_account.values().all(|&n| n <= 6));
        assert!(per_account.values().any(|&n| n >= 5));
    }
}

#[test]
fn country_mix() {
    let p = generate(7, oct(), 240);
    let countries: HashSet<&str> = p.accounts.iter().map(|a| a.country.as_str()).collect();
    assert!(countries.contains("FR"));
    let other_eu = countries
        .iter()
        .filter(|c| **c != "FR" && is_eu_member(c))
        .count();
    assert!(other_eu >= 5, "{countries:?}");
    let non_eu = countries.iter().filter(|c| !is_eu_member(c)).count();
    assert!(non_eu >= 3, "{countries:?}");
    assert!(p.accounts.iter().all(|a| is_iso_country(&a.country)));
}

#[test]
fn proportions_are_about_right() {
    let p = generate(11, oct(), 4000);
    let n = p.accounts.len();
    let pct = |k: usize| k * 100 / n;
    let fr = p.accounts.iter().filter(|a| a.country == "FR").count();
    let eu = p
        .accounts
        .iter()
        .filter(|a| a.country != "FR" && is_eu_member(&a.country))
        .count();
    let business = p.accounts.iter().filter(|a| a.company.is_some()).count();
    let referred = p
        .accounts
        .iter()
        .filter(|a| a.referred_by.is_some())
        .count();
    let new = p
        .accounts
        .iter()
        .filter(|a| a.created_at >= oct().start())
        .count();
    assert!((46..=54).contains(&pct(fr)), "FR {}%", pct(fr));
    assert!((26..=34).contains(&pct(eu)), "other EU {}%", pct(eu));
    assert!(
        (41..=49).contains(&pct(business)),
        "business {}%",
        pct(business)
    );
    assert!(
        (12..=18).contains(&pct(referred)),
        "referred {}%",
        pct(referred)
    );
    assert!((3..=7).contains(&pct(new)), "new {}%", pct(new));
    assert!((8..=12).contains(&pct(p.credits.len())), "credits");
    let fr_speakers = p
        .accounts
        .iter()
        .filter(|a| a.country == "FR" && a.language == Language::Fr)
        .count();
    assert!(fr_speakers * 10 > fr * 9);
    let us_en = p
        .accounts
        .iter()
        .filter(|a| a.country == "US" && a.language == Language::En)
        .count();
    let us = p.accounts.iter().filter(|a| a.country == "US").count();
    assert!(us_en * 10 > us * 9);
}

#[test]
fn accounts_are_consistent() {
    let period = oct();
    let p = generate(5, period, 2000);
    let earliest = months_back(period, 24).start();
    let mut emails = HashSet::new();
    for a in &p.accounts {
        assert!(a.created_at >= earliest && a.created_at < period.end());
        assert!(emails.insert(a.email.as_str()), "duplicate {}", a.email);
        let (local, domain) = a.email.split_once('@').unwrap();
        assert!(["example.com", "example.org", "example.net"].contains(&domain));
        assert!(
            local
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._".contains(&b)),
            "{}",
            a.email
        );
        assert!(!a.name.trim().is_empty() && !a.address.trim().is_empty());
        match (&a.company, &a.vat_number) {
            (None, vat) => assert_eq!(vat, &None, "consumer {} has a VAT number", a.id),
            (Some(_), vat) if is_eu_member(&a.country) => {
                let vat = vat.as_deref().expect("EU businesses have a VAT number");
                assert!(
                    vat.starts_with(vat_prefix(&a.country)),
                    "{vat} for {}",
                    a.country
                );
                assert!(vat.len() >= 10, "{vat}");
                assert_eq!(
                    billrun::core::vat_number::validate(&a.country, vat),
                    Ok(()),
                    "{vat} for {}",
                    a.id
                );
            }
            (Some(_), _) => {}
        }
        if a.country == "FR" && a.company.is_some() {
            let vat = a.vat_number.as_deref().unwrap();
            assert_eq!(vat.len(), 13);
            let key: u64 = vat[2..4].parse().unwrap();
            let siren: u64 = vat[4..].parse().unwrap();
            assert_eq!(key, (12 + 3 * (siren % 97)) % 97, "{vat}");
        }
        if a.country == "GR" && a.company.is_some() {
            assert!(a.vat_number.as_deref().unwrap().starts_with("EL"));
        }
    }
}

#[test]
fn every_referral_points_to_an_earlier_account() {
    let period = oct();
    let p = generate(3, period, 2000);
    let recent = months_back(period, 11).start();
    let mut recent_referrals = 0;
    let mut referrals = 0;
    for (i, a) in p.accounts.iter().enumerate() {
        if let Some(r) = &a.referred_by {
            referrals += 1;
            assert!(r < &a.id, "{} referred by {r}", a.id);
            let j = p.accounts.iter().position(|b| &b.id == r).unwrap();
            assert!(j < i);
            assert!(p.accounts[j].created_at < a.created_at);
            if a.created_at >= recent {
                recent_referrals += 1;
            }
        }
    }
    assert!(referrals > 0);
    assert!(
        recent_referrals * 2 > referrals,
        "most referrals are recent"
    );
    for w in p.accounts.windows(2) {
        assert!(w[0].created_at < w[1].created_at, "ids follow sign-ups");
    }
}

#[test]
fn usage_is_priceable_and_belongs_to_existing_apps() {
    for period in periods() {
        let p = generate(9, period, 500);
        let catalog = Catalog::new(p.catalog.clone());
        let apps: HashMap<&AppId, &App> = p.apps.iter().map(|a| (&a.id, a)).collect();
        let accounts: HashMap<&AccountId, &Account> =
            p.accounts.iter().map(|a| (&a.id, a)).collect();
        let mut per_app: HashMap<&AppId, (usize, usize)> = HashMap::new();
        let (mut whole, mut short, mut crossing, mut running_mid) = (0, 0, 0, 0);
        for u in &p.usage {
            assert!(
                catalog
                    .price_at(u.kind, &u.item, u.started_at.max(period.start()))
                    .is_some(),
                "{u:?}"
            );
            assert!(catalog.price_at(u.kind, &u.item, u.started_at).is_some());
            let app = apps.get(&u.app_id).expect("usage of an existing app");
            let owner = accounts[&app.account_id];
            assert!(u.started_at >= owner.created_at, "{u:?} before {owner:?}");
            assert!(u.started_at < period.end());
            assert!(u.quantity >= 1);
            if let Some(end) = u.ended_at {
                assert!(u.started_at < end, "{u:?}");
                assert!(end > period.start());
            }
            let counts = per_app.entry(&u.app_id).or_default();
            match u.kind {
                UsageKind::Container => counts.0 += 1,
                UsageKind::Addon => {
                    counts.1 += 1;
                    assert_eq!(u.quantity, 1);
                }
            }
            match (u.started_at < period.start(), u.ended_at) {
                (true, None) => whole += 1,
                (true, Some(_)) => crossing += 1,
                (false, None) => running_mid += 1,
                (false, Some(end)) if end - u.started_at <= chrono::Duration::hours(12) => {
                    short += 1
                }
                _ => {}
            }
        }
        assert_eq!(per_app.len(), p.apps.len(), "every app has usage");
        for (containers, addons) in per_app.values() {
            assert!((2..=4).contains(containers));
            assert_eq!(*addons, 1);
        }
        assert!(whole > 0 && short > 0 && crossing > 0 && running_mid > 0);
        price_usage(&BillingWindow::month(period), &p.usage, &catalog)
            .expect("every usage record has a price");
    }
}

#[test]
fn catalog_has_a_mid_month_price_change_and_an_uncapped_item() {
    let period = oct();
    let p = generate(1, period, 10);
    let xxl: Vec<_> = p.catalog.iter().filter(|e| e.item == "2XL").collect();
    assert_eq!(xxl.len(), 2);
    assert!(
        xxl.iter()
            .any(|e| e.effective_from == NaiveDate::from_ymd_opt(2026, 10, 16).unwrap())
    );
    assert!(p.catalog.iter().any(|e| e.monthly_cap.is_none()));
    let s = p.catalog.iter().find(|e| e.item == "S").unwrap();
    assert_eq!(s.hourly_price, Decimal::new(1, 2));
    assert_eq!(s.monthly_cap, Some(Decimal::new(720, 2)));
    let change = NaiveDate::from_ymd_opt(2026, 10, 16).unwrap();
    assert!(
        p.catalog
            .iter()
            .all(|e| e.effective_at() < period.start() || e.effective_from == change)
    );
}

#[test]
fn ids_are_unique_and_well_formed() {
    let p = generate(21, oct(), 1000);
    let accounts: HashSet<_> = p.accounts.iter().map(|a| a.id.as_str()).collect();
    let apps: HashSet<_> = p.apps.iter().map(|a| a.id.as_str()).collect();
    let usage: HashSet<_> = p.usage.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(accounts.len(), p.accounts.len());
    assert_eq!(apps.len(), p.apps.len());
    assert_eq!(usage.len(), p.usage.len());
    assert_eq!(p.accounts[0].id.as_str(), "acc-000001");
    assert_eq!(p.accounts[999].id.as_str(), "acc-001000");
    assert_eq!(p.apps[0].id.as_str(), "app-000001");
    assert_eq!(p.usage[0].id.as_str(), "use-0000001");
    assert!(p.usage.iter().all(|u| u.id.len() == 11));
    let mut names = HashSet::new();
    for app in &p.apps {
        assert!(names.insert((&app.account_id, &app.name)), "{app:?}");
        assert!(
            app.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        assert!(accounts.contains(app.account_id.as_str()));
    }
}

#[test]
fn all_times_are_whole_seconds() {
    let p = generate(8, oct(), 500);
    let times = p
        .accounts
        .iter()
        .map(|a| a.created_at)
        .chain(p.usage.iter().map(|u| u.started_at))
        .chain(p.usage.iter().filter_map(|u| u.ended_at))
        .chain(p.credits.iter().map(|c| c.at));
    for t in times {
        assert_eq!(t.timestamp_subsec_nanos(), 0, "{t}");
    }
}

#[test]
fn credits_are_paypal_with_unique_references() {
    let period = oct();
    let p = generate(13, period, 3000);
    assert!(!p.credits.is_empty());
    let created: HashMap<&AccountId, DateTime<Utc>> =
        p.accounts.iter().map(|a| (&a.id, a.created_at)).collect();
    let mut refs = HashSet::new();
    for c in &p.credits {
        assert!(refs.insert(c.reference.as_str()), "{}", c.reference);
        let tail = c.reference.strip_prefix("PAYPAL-").unwrap();
        assert_eq!(tail.len(), 17);
        assert!(
            tail.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert!((1000..=10_000).contains(&c.amount_minor));
        assert_eq!(c.amount_minor % 100, 0);
        assert!(c.at < period.end());
        assert!(c.at >= created[&c.account_id]);
    }
}

/// Every field of a platform, one record a line, in formats that do not depend on a crate's
/// `Debug`: what "the same platform" means.
fn rendering(p: &DemoPlatform) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let t = |t: DateTime<Utc>| t.to_rfc3339();
    for a in &p.accounts {
        let _ = writeln!(
            out,
            "{}|{}|{}|{:?}|{}|{}|{:?}|{}|{}|{:?}",
            a.id,
            a.email,
            a.name,
            a.company,
            a.address,
            a.country,
            a.vat_number,
            a.language.as_str(),
            t(a.created_at),
            a.referred_by.as_ref().map(|r| r.as_str())
        );
    }
    for a in &p.apps {
        let _ = writeln!(out, "{}|{}|{}", a.id, a.name, a.account_id);
    }
    for e in &p.catalog {
        let _ = writeln!(
            out,
            "{}|{}|{}|{:?}|{}",
            e.kind.as_str(),
            e.item,
            e.hourly_price,
            e.monthly_cap.map(|c| c.to_string()),
            e.effective_from
        );
    }
    for u in &p.usage {
        let _ = writeln!(
            out,
            "{}|{}|{}|{}|{}|{}|{:?}",
            u.id,
            u.app_id,
            u.kind.as_str(),
            u.item,
            u.quantity,
            t(u.started_at),
            u.ended_at.map(t)
        );
    }
    for c in &p.credits {
        let _ = writeln!(
            out,
            "{}|{}|{}|{}",
            c.account_id,
            c.amount_minor,
            c.reference,
            t(c.at)
        );
    }
    out
}

#[test]
fn a_seed_gives_the_same_platform_as_before() {
    use sha2::{Digest, Sha256};
    // SHA-256 of `rendering` for seeds 7 and 42 (October 2026, 3,000 accounts; the demo's
    // and the bench's apps per account). If a change to the generator is meant to change
    // the platform, say so in its commit and update these.
    let mut got = Vec::new();
    for seed in [7, 42] {
        let demo = generate(seed, oct(), 3000);
        let mut g = Generator::new(seed, oct(), 3000).with_app_counts(BENCH_APP_COUNTS);
        let bench = DemoPlatform {
            catalog: g.catalog(),
            ..g.next_chunk(3000).unwrap()
        };
        for p in [demo, bench] {
            let digest = Sha256::digest(rendering(&p).as_bytes());
            got.push(format!("{digest:x}"));
        }
    }
    assert_eq!(
        got,
        [
            "15ebab62ae7865cfc522b36cf9787884df2c6ba9edaf05e72641b443bbc0abde",
            "e2ad066028aeace2fbd44752933c650ef8873f4b21a300dfaf685bc3455b482b",
            "169c934d3df89de4be2f27bd50cb64a44fbffe54264cd7495410f0a013910659",
            "ec2cf326e61728fb8163905490cc319d361bbf9003f18580343cdeaa083e0521",
        ]
    );
}
