//! Referral rewards across a year: 20% of what the invitee pays, for its first 12 months,
//! as discounts on the referrer's next invoices, carried forward, never lost or granted twice.

use crate::common::TestApp;
use billrun::core::period::Period;
use billrun::import::ImportKind;
use billrun::jobs::JobName;

both_stores!(
    a_referral_pays_twelve_months_and_carries_forward,
    |app: TestApp| async move {
        app.import_fixture(ImportKind::Catalog, "catalog.csv").await;
        app.import_csv(
            ImportKind::Accounts,
            "accounts.csv",
            "id,email,name,company,address,country,vat_number,language,created_at,referred_by
acc-r,rita@example.com,Rita Referrer,,\"1 rue A, Paris\",FR,,fr,2025-06-01T00:00:00Z,
acc-i,ines@example.com,Inès Invitée,,\"2 rue B, Lyon\",FR,,fr,2026-01-15T00:00:00Z,acc-r
",
        )
        .await
        .unwrap();
        app.import_csv(
            ImportKind::Apps,
            "apps.csv",
            "id,name,account_id\napp-r,rita-site,acc-r\napp-i,ines-shop,acc-i\n",
        )
        .await
        .unwrap();
        // The invitee runs an M container from its sign-up on; the referrer 100 h of S a month.
        let mut usage = String::from(
            "id,app_id,kind,item,quantity,started_at,ended_at\nu-i,app-i,container,M,1,2026-01-15T00:00:00Z,\n",
        );
        let mut p: Period = "2026-01".parse().unwrap();
        let mut months = Vec::new();
        for _ in 0..14 {
            let start = p.start();
            usage.push_str(&format!(
                "u-r-{p},app-r,container,S,1,{},{}\n",
                start.to_rfc3339(),
                (start + chrono::Duration::hours(100)).to_rfc3339()
            ));
            months.push(p);
            p = p.next();
        }
        app.import_csv(ImportKind::Usage, "usage.csv", &usage)
            .await
            .unwrap();
        app.set_pm("acc-r", "card", "pm_card_visa", "2025-06-01T00:00:00Z")
            .await;
        app.set_pm("acc-i", "card", "pm_card_visa", "2026-01-15T00:00:00Z")
            .await;

        for m in &months {
            let next = m.next().start();
            app.run(
                JobName::Invoice,
                &(next + chrono::Duration::hours(6)).to_rfc3339(),
            )
            .await;
            app.run(
                JobName::Collect,
                &(next + chrono::Duration::hours(7)).to_rfc3339(),
            )
            .await;
            // Running collect again grants nothing twice.
            app.run(
                JobName::Collect,
                &(next + chrono::Duration::hours(8)).to_rfc3339(),
            )
            .await;
        }

        let rewards = billrun::store::collection::rewards_of(app.db(), "acc-r")
            .await
            .unwrap();
        let periods: Vec<String> = rewards.iter().map(|r| r.period.to_string()).collect();
        assert_eq!(periods.len(), 12, "{periods:?}");
        assert_eq!(periods.first().map(String::as_str), Some("2026-01"));
        assert_eq!(
            periods.last().map(String::as_str),
            Some("2026-12"),
            "none for month 13 (2027-01) and after"
        );
        // January: 17 days of M = 408 h × 0.02 = 8.16 → 1.63; February: 672 h = 13.44 → 2.69;
        // then 14.40 (capped in 31-day months) → 2.88 a month.
        assert_eq!(rewards[0].amount_minor, 163);
        assert_eq!(rewards[1].amount_minor, 269);
        assert!(rewards[2..].iter().all(|r| r.amount_minor == 288));
        let earned: i64 = rewards.iter().map(|r| r.amount_minor).sum();
        assert_eq!(earned, 163 + 269 + 10 * 288);

        // The referrer's invoices: nothing to use in January; from February on, each 1.00 subtotal
        // is fully discounted and the rest waits for the next invoice.
        let mut used = 0;
        for m in &months {
            let inv = app.invoice("acc-r", &m.to_string()).await;
            assert_eq!(inv.subtotal, "1.00");
            let discount = billrun::core::money::parse_major(&inv.discount).unwrap();
            used += discount;
            if m.to_string() == "2026-01" {
                assert_eq!(inv.discount, "0.00");
                assert_eq!(inv.status, "paid", "charged by card");
                assert_eq!(inv.attempts.len(), 1);
            } else {
                assert_eq!(inv.discount, "1.00", "{m}");
                assert_eq!(inv.total, "0.00", "never negative");
                assert_eq!(inv.status, "paid");
                assert!(inv.attempts.is_empty(), "{m}: nothing to charge");
                assert!(
                    inv.discounts[0]
                        .description
                        .starts_with("Récompense de parrainage : Inès Invitée, "),
                    "{:?}",
                    inv.discounts
                );
            }
        }
        assert_eq!(used, 1300);
        let remaining: i64 = rewards.iter().map(|r| r.remaining_minor).sum();
        assert_eq!(earned, used + remaining, "never lost, never granted twice");
        assert_eq!(remaining, 163 + 269 + 10 * 288 - 1300);
        let feb = app.invoice("acc-r", "2026-02").await;
        assert_eq!(
            feb.discounts[0].description,
            "Récompense de parrainage : Inès Invitée, janvier 2026"
        );
    }
);
