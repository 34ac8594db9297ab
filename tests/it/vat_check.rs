//! VAT numbers checked with VIES, on both stores: the vat-check job against a fake VIES
//! (valid, invalid, a member state down, a timeout), the evidence it stores (article 18 of
//! Implementing Regulation (EU) 282/2011), and the invoice job's reverse charge (article 196 of
//! Directive 2006/112/EC, article 283-2 of the CGI) only on a recently confirmed number, else
//! VAT charged or the invoice held (`on_unverified`).

use crate::common::fake_vies::FakeVies;
use crate::common::{TestApp, opts};
use billrun::core::vat::OnUnverified;
use billrun::import::ImportKind;
use billrun::jobs::{Count, JobName};
use billrun::store::vies;

/// Four more EU businesses, each with an app used in October 2026.
async fn seed_eu_businesses(app: &TestApp) {
    app.import_csv(
        ImportKind::Accounts,
        "eu.csv",
        "id,email,name,company,address,country,vat_number,language,created_at,referred_by\n\
         acc-it-business,it@example.it,Ida Russo,Russo Srl,\"Via Po 1, Torino\",IT,IT00743110157,en,2025-01-01T00:00:00Z,\n\
         acc-nl-business,nl@example.nl,Nils Bakker,Bakker BV,\"Dam 1, Amsterdam\",NL,NL004495445B01,en,2025-01-01T00:00:00Z,\n\
         acc-at-business,at@example.at,Anna Huber,Huber GmbH,\"Ring 1, Wien\",AT,ATU13585627,en,2025-01-01T00:00:00Z,\n\
         acc-be-business,be@example.be,Bram Peeters,Peeters NV,\"Meir 1, Antwerpen\",BE,BE0403019261,fr,2025-01-01T00:00:00Z,\n",
    )
    .await
    .unwrap();
    app.import_csv(
        ImportKind::Apps,
        "eu-apps.csv",
        "id,name,account_id\napp-it,it-site,acc-it-business\napp-nl,nl-site,acc-nl-business\n\
         app-at,at-site,acc-at-business\napp-be,be-site,acc-be-business\n",
    )
    .await
    .unwrap();
    app.import_csv(
        ImportKind::Usage,
        "eu-usage.csv",
        "id,app_id,kind,item,quantity,started_at,ended_at\n\
         u-it,app-it,container,M,1,2026-10-01T00:00:00Z,2026-10-11T00:00:00Z\n\
         u-nl,app-nl,container,M,1,2026-10-01T00:00:00Z,2026-10-11T00:00:00Z\n\
         u-at,app-at,container,M,1,2026-10-01T00:00:00Z,2026-10-11T00:00:00Z\n\
         u-be,app-be,container,M,1,2026-10-01T00:00:00Z,2026-10-11T00:00:00Z\n",
    )
    .await
    .unwrap();
}

/// A fake VIES knowing the DE fixture and the Italian business; the test app pointed at it.
fn use_vies(app: &mut TestApp) -> FakeVies {
    let fake = FakeVies::start();
    fake.register("DE123456788", "Schmidt GmbH");
    fake.register("IT00743110157", "RUSSO SRL");
    fake.register("ATU13585627", "HUBER GMBH");
    app.env.jobs.vat_check.settings.vies_base_url = fake.base_url();
    app.env.jobs.vat_check.settings.request_timeout_seconds = 1;
    fake
}

fn outcome_of(checks: &[vies::ViesCheckRow]) -> Vec<(String, Option<String>)> {
    checks
        .iter()
        .map(|c| (c.outcome.clone(), c.detail.clone()))
        .collect()
}

both_stores!(
    art_18_reg_282_2011_vies_answers_valid_invalid_ms_unavailable_and_timeout_are_stored_as_evidence,
    |app: TestApp| async move {
        let mut app = app;
        app.seed_fixtures().await;
        seed_eu_businesses(&app).await;
        let fake = use_vies(&mut app);
        fake.set_down("AT", true);
        fake.hang("BE0403019261");
        let r = app.run(JobName::VatCheck, "2026-11-01T05:00:00Z").await;
        assert_eq!(r.counts.get(&Count::Valid), Some(&2), "{:?}", r.counts);
        assert_eq!(r.counts.get(&Count::Invalid), Some(&1), "{:?}", r.counts);
        assert_eq!(r.counts.get(&Count::Unavailable), Some(&2), "{:?}", r.counts);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        // French and non-EU accounts are not asked about: reverse charge is not theirs.
        let asked: Vec<String> = r.vat_checks.iter().map(|c| c.account_id.clone()).collect();
        assert_eq!(
            asked,
            [
                "acc-at-business",
                "acc-be-business",
                "acc-de-business",
                "acc-it-business",
                "acc-nl-business"
            ]
        );
        // Each request carries the number without its prefix and the seller as requester.
        let req = fake
            .requests()
            .into_iter()
            .find(|b| b["countryCode"] == "IT")
            .unwrap();
        assert_eq!(req["vatNumber"], "00743110157");
        assert_eq!(req["requesterMemberStateCode"], "FR");

        // Valid: its consultation number, date and the name VIES has.
        let it = vies::for_account(app.db(), "acc-it-business").await.unwrap();
        assert_eq!(it.len(), 1);
        assert_eq!(it[0].outcome, "valid");
        assert!(
            it[0]
                .consultation_number
                .as_deref()
                .unwrap()
                .starts_with("WAPIFAKE")
        );
        assert_eq!(it[0].name.as_deref(), Some("RUSSO SRL"));
        assert_eq!(
            it[0].request_date.as_deref(),
            Some("2026-11-01T05:00:00.000Z")
        );
        assert_eq!(it[0].checked_at, crate::common::t("2026-11-01T05:00:00Z"));
        // Invalid: not registered.
        let nl = vies::for_account(app.db(), "acc-nl-business").await.unwrap();
        assert_eq!(outcome_of(&nl), [("invalid".to_string(), None)]);
        // Austria's service down: no answer on the number.
        let at = vies::for_account(app.db(), "acc-at-business").await.unwrap();
        assert_eq!(
            outcome_of(&at),
            [("unavailable".to_string(), Some("MS_UNAVAILABLE".to_string()))]
        );
        // A timeout: no answer either.
        let be = vies::for_account(app.db(), "acc-be-business").await.unwrap();
        assert_eq!(be.len(), 1);
        assert_eq!(be[0].outcome, "unavailable");
        assert!(be[0].detail.as_deref().unwrap().starts_with("TIMEOUT"), "{be:?}");
        // The run names each account without an answer, and why.
        for account in ["acc-at-business", "acc-be-business", "acc-nl-business"] {
            assert!(
                r.notes.iter().any(|n| n.starts_with(&format!("account {account}:"))),
                "{account}: {:?}",
                r.notes
            );
        }
    }
);

both_stores!(
    vat_check_dry_run_and_one_account_ask_only_what_they_say,
    |app: TestApp| async move {
        let mut app = app;
        app.seed_fixtures().await;
        seed_eu_businesses(&app).await;
        let fake = use_vies(&mut app);
        let before = app.dump().await;
        let mut o = opts("2026-11-01T05:00:00Z");
        o.dry_run = true;
        let r = app.run_with(JobName::VatCheck, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::WouldCheck), Some(&5), "{:?}", r.counts);
        assert!(fake.requests().is_empty(), "a dry-run asks VIES nothing");
        assert_eq!(app.dump().await, before, "a dry-run writes nothing");

        let mut o = opts("2026-11-01T05:00:00Z");
        o.accounts = vec!["acc-it-business".into()];
        let r = app.run_with(JobName::VatCheck, o).await.unwrap();
        assert_eq!(r.counts.get(&Count::Valid), Some(&1), "{:?}", r.counts);
        assert_eq!(fake.requests().len(), 1);
        assert_eq!(app.count("vies_checks").await, 16 + 1);
    }
);

both_stores!(
    art_196_directive_2006_112_reverse_charge_needs_a_vies_confirmed_number_else_vat_is_charged,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        seed_eu_businesses(&app).await;
        // No vat-check has run for the new accounts: default `on_unverified = "charge_vat"`.
        assert_eq!(
            app.env.jobs.invoice.settings.on_unverified,
            OnUnverified::ChargeVat
        );
        let r = app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let it = app.invoice("acc-it-business", "2026-10").await;
        assert_eq!(
            (it.tax_case.as_str(), it.tax_rate.as_str()),
            ("eu_consumer", "22")
        );
        assert_eq!(it.tax_mention, None);
        assert_eq!(it.buyer.vies_consultation, None);
        assert!(
            r.notes
                .iter()
                .any(|n| n.starts_with("account acc-it-business:")
                    && n.contains("not been confirmed by VIES")),
            "{:?}",
            r.notes
        );
        // The fixture business, confirmed on 2026-11-01: reverse charge, with the consultation.
        let de = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!(de.tax_case, "reverse_charge");
        assert_eq!(
            de.buyer.vies_consultation.as_deref(),
            Some("WAPIFIXTURE202611")
        );
        assert!(
            !r.notes.iter().any(|n| n.contains("acc-de-business")),
            "{:?}",
            r.notes
        );
    }
);

both_stores!(
    art_18_reg_282_2011_on_unverified_hold_leaves_the_account_uninvoiced_and_says_why,
    |app: TestApp| async move {
        let mut app = app;
        app.seed_fixtures().await;
        seed_eu_businesses(&app).await;
        let fake = use_vies(&mut app);
        app.env.jobs.invoice.settings.on_unverified = OnUnverified::Hold;
        // VIES: IT valid, NL invalid, AT down (never confirmed), BE times out.
        fake.set_down("AT", true);
        fake.hang("BE0403019261");
        app.run(JobName::VatCheck, "2026-11-01T05:00:00Z").await;
        let r = app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        let held: Vec<&str> = r.failures.iter().map(|f| f.item.as_str()).collect();
        assert_eq!(
            held,
            [
                "account acc-at-business",
                "account acc-be-business",
                "account acc-nl-business"
            ],
            "{:?}",
            r.failures
        );
        let nl = r
            .failures
            .iter()
            .find(|f| f.item == "account acc-nl-business")
            .unwrap();
        assert!(
            nl.error.contains("held") && nl.error.contains("VIES answered on 2026-11-01"),
            "{}",
            nl.error
        );
        for account in ["acc-at-business", "acc-be-business", "acc-nl-business"] {
            assert!(
                billrun::store::invoices::list(app.db(), &Default::default())
                    .await
                    .unwrap()
                    .iter()
                    .all(|i| i.account_id != account),
                "{account} was invoiced"
            );
        }
        // Confirmed today: reverse charge, with VIES's consultation number on the invoice.
        let it = app.invoice("acc-it-business", "2026-10").await;
        assert_eq!(it.tax_case, "reverse_charge");
        let consultation = vies::for_account(app.db(), "acc-it-business")
            .await
            .unwrap()[0]
            .consultation_number
            .clone();
        assert!(consultation.is_some());
        assert_eq!(it.buyer.vies_consultation, consultation);
        // The fixture business keeps its reverse charge.
        let de = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!(de.tax_case, "reverse_charge");
    }
);

both_stores!(
    art_18_reg_282_2011_a_member_state_down_leaves_a_recent_confirmation_standing_until_max_age_days,
    |app: TestApp| async move {
        let mut app = app;
        app.seed_fixtures().await;
        seed_eu_businesses(&app).await;
        let fake = use_vies(&mut app);
        // Confirmed on October 20th, then Italy's service is down on November 1st.
        app.run_with(JobName::VatCheck, {
            let mut o = opts("2026-10-20T05:00:00Z");
            o.accounts = vec!["acc-it-business".into()];
            o
        })
        .await
        .unwrap();
        fake.set_down("IT", true);
        let r = app.run(JobName::VatCheck, "2026-11-01T05:00:00Z").await;
        assert!(
            r.notes
                .iter()
                .any(|n| n.starts_with("account acc-it-business:")
                    && n.contains("MS_UNAVAILABLE")),
            "{:?}",
            r.notes
        );
        // 12 days old on November 1st: reverse charge, with the October consultation.
        let r = app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let it = app.invoice("acc-it-business", "2026-10").await;
        assert_eq!(it.tax_case, "reverse_charge");
        let checks = vies::for_account(app.db(), "acc-it-business").await.unwrap();
        assert_eq!(
            outcome_of(&checks),
            [
                ("valid".to_string(), None),
                ("unavailable".to_string(), Some("MS_UNAVAILABLE".to_string()))
            ]
        );
        assert_eq!(it.buyer.vies_consultation, checks[0].consultation_number);

        // With max_age_days = 10 the same confirmation is too old: VAT charged, and said.
        app.env.jobs.vat_check.settings.max_age_days = 10;
        let r = app
            .run_with(JobName::Invoice, {
                let mut o = opts("2026-12-01T06:00:00Z");
                o.accounts = vec!["acc-it-business".into()];
                o
            })
            .await
            .unwrap();
        // No November usage: nothing to bill, so nothing said either.
        assert_eq!(r.counts.get(&Count::NothingToBill), Some(&1), "{:?}", r.counts);
        app.import_csv(
            ImportKind::Usage,
            "nov.csv",
            "id,app_id,kind,item,quantity,started_at,ended_at\n\
             u-it-nov,app-it,container,M,1,2026-11-01T00:00:00Z,2026-11-11T00:00:00Z\n",
        )
        .await
        .unwrap();
        let r = app.run(JobName::Invoice, "2026-12-01T06:00:00Z").await;
        let nov = app.invoice("acc-it-business", "2026-11").await;
        assert_eq!(
            (nov.tax_case.as_str(), nov.buyer.vies_consultation.as_deref()),
            ("eu_consumer", None)
        );
        assert!(
            r.notes.iter().any(|n| n.starts_with("account acc-it-business:")
                && n.contains("VIES last confirmed VAT number IT00743110157 on 2026-10-20")),
            "{:?}",
            r.notes
        );
    }
);

both_stores!(
    art_18_reg_282_2011_the_pdf_keeps_the_vies_consultation_number,
    |app: TestApp| async move {
        app.seed_fixtures().await;
        app.run(JobName::Invoice, "2026-11-01T06:00:00Z").await;
        for (account, expected, absent) in [
            (
                "acc-de-business",
                Some("VAT number checked (VIES): WAPIFIXTURE202611"),
                None,
            ),
            ("acc-fr-business", None, Some("VIES")),
        ] {
            let inv = app.invoice(account, "2026-10").await;
            let (pdf, _) = billrun::store::documents::get(app.db(), inv.id.unwrap())
                .await
                .unwrap()
                .unwrap();
            let path = app.dir.path().join(format!("{account}.pdf"));
            std::fs::write(&path, &pdf).unwrap();
            let out = std::process::Command::new("pdftotext")
                .arg(&path)
                .arg("-")
                .output()
                .expect("pdftotext is installed");
            let text = String::from_utf8(out.stdout)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if let Some(e) = expected {
                assert!(text.contains(e), "{account}: {text}");
            }
            if let Some(a) = absent {
                assert!(!text.contains(a), "{account}: {text}");
            }
        }
    }
);

both_stores!(
    import_refuses_a_vat_number_with_wrong_check_digits_exit_2_naming_file_line_and_field,
    |app: TestApp| async move {
        let path = app.dir.path().join("accounts-vat.csv");
        std::fs::write(
            &path,
            "id,email,name,company,address,country,vat_number,language,created_at,referred_by\n\
             acc-ok,ok@example.de,Ok,Ok GmbH,Berlin,DE,DE 136 695 976,en,2025-01-10T09:00:00Z,\n\
             acc-bad,bad@example.de,Bad,Bad GmbH,Berlin,DE,DE123456789,en,2025-01-10T09:00:00Z,\n\
             acc-fr,fr@example.fr,Fr,Fr SAS,Paris,FR,FR41303265045,fr,2025-01-10T09:00:00Z,\n\
             acc-it,it@example.it,It,It Srl,Roma,IT,DE136695976,en,2025-01-10T09:00:00Z,\n",
        )
        .unwrap();
        let out = app.cli(&["import", "accounts", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{err}");
        for expected in [
            "accounts-vat.csv:3: vat_number: `DE123456789` is not a DE VAT number: its check digits are wrong",
            "accounts-vat.csv:4: vat_number: `FR41303265045` is not a FR VAT number: its check digits are wrong",
            "accounts-vat.csv:5: vat_number: `DE136695976` is not a IT VAT number: it must start with IT",
        ] {
            assert!(err.contains(expected), "{expected}: {err}");
        }
        assert!(!err.contains("accounts-vat.csv:2"), "{err}");
        assert_eq!(app.count("accounts").await, 0, "all or nothing");
    }
);
