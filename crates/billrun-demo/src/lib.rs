//! `billrun demo`: seeds a realistic platform (deterministic from `--seed`) in a fresh embedded
//! database, runs the month's jobs on it and prints what happened. Each job that lands adds
//! its step here.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};

use billrun::config::JobsConfig;
use billrun::core::email::EmailKind;
use billrun::core::money::format_minor;
use billrun::core::period::Period;
use billrun::jobs::deliver::DeliveryOutcome;
use billrun::jobs::{self, Env, JobName, RunOptions};
use billrun::store::{Db, accounts, catalog, collection};
use billrun::views::{self, table};

mod args;
pub mod generate;

pub use args::DemoArgs;

pub const DEFAULT_DEMO_DB: &str = "billrun-demo.db";
/// Where the demo writes its PDFs (`invoices/`) and emails (`emails/`, as .eml files).
pub const DEMO_OUT: &str = "demo-out";

/// Removes `file` (and its WAL and shared-memory files) left by a previous run, and returns the
/// URL of a fresh SQLite store there (the demo's and the bench's default store).
pub fn fresh_sqlite_file(file: &str) -> anyhow::Result<String> {
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{file}{suffix}");
        if std::path::Path::new(&f).exists() {
            std::fs::remove_file(&f).with_context(|| format!("removing the previous {f}"))?;
        }
    }
    Ok(format!("sqlite://{file}"))
}

pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let url = match &args.database_url {
        Some(u) => u.clone(),
        // A fresh file each time: the demo always starts from the same platform.
        None => fresh_sqlite_file(DEFAULT_DEMO_DB)?,
    };
    let db = Db::connect_and_migrate(&url).await?;
    let mut jobs_config = JobsConfig::load(None)?;
    // The demo's emails are .eml files next to its PDFs, whatever BILLRUN_SMTP_URL says.
    jobs_config.deliver.settings.smtp_url = String::new();
    jobs_config.deliver.settings.outbox_dir = format!("{DEMO_OUT}/emails");
    if args.database_url.is_none() && std::path::Path::new(DEMO_OUT).exists() {
        std::fs::remove_dir_all(DEMO_OUT)
            .with_context(|| format!("removing the previous {DEMO_OUT}/"))?;
    }
    let env = Env::new(db, jobs_config);
    let period = Period::previous_to(args.now);
    println!(
        "billrun demo: seed {}, {} accounts, billing {} at {} in {}",
        args.seed,
        args.accounts,
        period,
        args.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        billrun::store::redact_url(&url)
    );

    let platform = generate::generate(args.seed, period, args.accounts);
    seed(&env.db, &platform).await?;
    seed_platform_extras(&env.db, &platform, period).await?;
    let eu = platform
        .accounts
        .iter()
        .filter(|a| a.country != "FR" && billrun::core::countries::is_eu_member(&a.country))
        .count();
    let fr = platform
        .accounts
        .iter()
        .filter(|a| a.country == "FR")
        .count();
    println!(
        "seeded: {} accounts ({} France, {} other EU, {} outside the EU; {} businesses, {} referred), {} apps, {} catalog prices, {} usage records",
        platform.accounts.len(),
        fr,
        eu,
        platform.accounts.len() - fr - eu,
        platform
            .accounts
            .iter()
            .filter(|a| a.company.is_some())
            .count(),
        platform
            .accounts
            .iter()
            .filter(|a| a.referred_by.is_some())
            .count(),
        platform.apps.len(),
        platform.catalog.len(),
        platform.usage.len(),
    );

    let mut opts = RunOptions::at(args.now);
    opts.period = Some(period);
    for job in billrun::jobs::ALL_JOBS {
        if *job == JobName::VatCheck {
            // No network in the demo: its EU businesses' numbers are recorded as VIES would
            // confirm them, as if `billrun run vat-check` had run against VIES.
            let n = record_demo_confirmations(&env, args.now).await?;
            println!(
                "vat-check (demo, no network): {n} EU business VAT numbers recorded as confirmed by VIES, as a vat-check run would"
            );
            continue;
        }
        let report = jobs::run(&env, *job, &opts).await?;
        println!("{}", report.summary());
        for f in &report.failures {
            println!("  failed: {}: {}", f.item, f.error);
        }
        match job {
            JobName::Invoice => print_invoice_summary(&report.invoices),
            JobName::Collect => print_collection_summary(&report),
            JobName::Deliver => print_deliveries(&report, ""),
            JobName::Suspend | JobName::Hds | JobName::Delete | JobName::VatCheck => {}
        }
    }
    weeks_after(&env, args.now).await?;
    credit_note(&env, args.now).await?;
    // Every email the demo queued, by its state: all sent, none cancelled or left behind.
    let states: Vec<String> = billrun::store::delivery::counts(&env.db)
        .await?
        .into_iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    println!("outbox: {}", states.join(", "));
    let written = write_pdfs(&env).await?;
    println!(
        "wrote {written} invoice PDFs to {DEMO_OUT}/invoices/ and the emails to {DEMO_OUT}/emails/"
    );
    println!();
    println!("Look closer:");
    println!("  cargo run --release -- invoices list --database-url {url}");
    if let Some(first) = billrun::store::invoices::list(&env.db, &Default::default())
        .await?
        .first()
    {
        println!(
            "  cargo run --release -- invoices show {} --database-url {url}",
            first.number
        );
        println!(
            "  cargo run --release -- account show {} --database-url {url}",
            first.account_id
        );
    }
    env.db.close().await;
    Ok(())
}

/// Records a VIES confirmation (outcome `valid`, a consultation number `DEMO-…`) for each EU
/// business account outside France, through the store function the vat-check job uses (the
/// demo and the bench: no network).
pub async fn record_demo_confirmations(env: &Env, now: DateTime<Utc>) -> anyhow::Result<usize> {
    use billrun::store::vies::{self, NewViesCheck, ViesOutcome};
    let accounts = vies::accounts_to_check(&env.db).await?;
    let mut tx = env.db.begin().await?;
    let mut n = 0;
    for (account, country, number) in accounts {
        if country == "FR" || !billrun::core::countries::is_eu_member(&country) {
            continue;
        }
        let consultation = format!("DEMO-{account}");
        vies::record(
            &mut tx,
            &NewViesCheck {
                account_id: &account,
                vat_number: &number,
                checked_at: now,
                outcome: ViesOutcome::Valid,
                request_date: Some(&now.to_rfc3339()),
                consultation_number: Some(&consultation),
                name: None,
                address: None,
                detail: Some("recorded by billrun demo, not by VIES"),
            },
        )
        .await?;
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

/// The weeks after billing: the retries on their schedule, the suspensions after the last
/// one, and one owner closing their account (apps deleted, request, the emailed token,
/// confirmation, the delete job). The deliver job runs after each step, as the daemon runs it
/// every few minutes.
async fn weeks_after(env: &Env, now: DateTime<Utc>) -> anyhow::Result<()> {
    println!();
    println!("The weeks after:");
    let mut day = 0i64;
    for offset in env.jobs.collect.settings.retry_offsets_days.clone() {
        day += i64::from(offset);
        let at = now + Duration::days(day) + Duration::hours(1);
        for job in [JobName::Collect, JobName::Suspend] {
            let report = jobs::run(env, job, &RunOptions::at(at)).await?;
            println!("  day {day:>2}: {}", report.summary());
        }
        deliver(env, at + Duration::minutes(5), day, None).await?;
    }
    // Suspension comes the day after the due date, never on it (`core::terms`): when the last
    // retry falls on or before the due date, the suspend job runs again that day.
    let after_due = i64::from(env.jobs.invoice.settings.due_days) + 1;
    if after_due > day {
        day = after_due;
        let at = now + Duration::days(day) + Duration::hours(1);
        let report = jobs::run(env, JobName::Suspend, &RunOptions::at(at)).await?;
        println!("  day {day:>2}: {}", report.summary());
        deliver(env, at + Duration::minutes(5), day, None).await?;
    }

    // The first account in id order that owes nothing and has a paid invoice closes itself.
    let at = now + Duration::days(day + 2);
    let mut closing = None;
    for inv in billrun::store::invoices::list(&env.db, &Default::default()).await? {
        let owes = billrun::store::deletion::owed_invoices(&env.db, &inv.account_id).await?;
        let row = accounts::get_account(&env.db, &inv.account_id).await?;
        if inv.status == billrun::core::document::InvoiceStatus::Paid
            && owes.is_empty()
            && row.is_some_and(|r| r.status == billrun::core::lifecycle::AccountStatus::Active)
        {
            closing = Some(inv.account_id.clone());
            break;
        }
    }
    let Some(id) = closing else {
        println!("  no account to close");
        return Ok(());
    };
    let owner = accounts::get_account(&env.db, &id)
        .await?
        .context("the closing account exists")?
        .email;
    for app in accounts::apps_of(&env.db, &id).await? {
        billrun::closing::delete_app(env, &app.id, at).await?;
    }
    let request = billrun::closing::request(env, &id, at + Duration::minutes(5)).await?;
    // The final invoices as they stand after the request collected them.
    let numbers: Vec<Option<&str>> = request
        .final_invoices
        .iter()
        .map(|i| i.number.as_deref())
        .collect();
    let finals: Vec<String> = billrun::store::invoices::list(
        &env.db,
        &billrun::store::invoices::ListFilter {
            account: Some(id.to_string()),
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .filter(|i| numbers.contains(&Some(i.number.as_str())))
    .map(|i| format!("{} {}", i.number, i.status))
    .collect();
    println!(
        "  day {:>2}: account {id} deleted its apps and asked for its deletion: {} final invoice(s) ({}), {}",
        day + 2,
        request.final_invoices.len(),
        finals.join(", "),
        match &request.outcome {
            billrun::closing::RequestOutcome::ConfirmationSent { .. } => "confirmation queued",
            billrun::closing::RequestOutcome::AwaitingPayment { .. } => "awaiting payment",
        }
    );
    // The token as the email carries it: the outbox drops its copy once the email is sent.
    let token =
        billrun::store::outbox::latest_data(&env.db, &id, EmailKind::AccountDeletionConfirmation)
            .await?
            .and_then(|d| d["token"].as_str().map(str::to_string));
    let sent = deliver(env, at + Duration::minutes(10), day + 2, Some(&owner)).await?;
    let confirmation_sent = sent.deliveries.iter().any(|d| {
        d.kind == EmailKind::AccountDeletionConfirmation && d.outcome == DeliveryOutcome::Sent
    });
    match (&request.outcome, token) {
        (billrun::closing::RequestOutcome::ConfirmationSent { .. }, Some(token))
            if confirmation_sent =>
        {
            // The demo plays the owner clicking the link in the email just sent.
            billrun::closing::confirm(env, &id, &token, at + Duration::hours(1)).await?;
            println!(
                "  day {:>2}: the owner confirmed with the emailed token: account deactivated, deletion queued",
                day + 2
            );
        }
        _ => {
            println!(
                "  day {:>2}: no confirmation email was sent: the account stays",
                day + 2
            );
            return Ok(());
        }
    }
    let end = at + Duration::days(1);
    let report = jobs::run(env, JobName::Delete, &RunOptions::at(end)).await?;
    println!("  day {:>2}: {}", day + 3, report.summary());
    for d in &report.deletions {
        println!("          {}", d.line());
    }
    deliver(env, end + Duration::minutes(5), day + 3, Some(&owner)).await?;
    Ok(())
}

/// Runs the deliver job at `at` and prints what it sent, by kind; with `owner`, every email to
/// that address one by one.
async fn deliver(
    env: &Env,
    at: DateTime<Utc>,
    day: i64,
    owner: Option<&str>,
) -> anyhow::Result<billrun::jobs::JobReport> {
    let report = jobs::run(env, JobName::Deliver, &RunOptions::at(at)).await?;
    println!("  day {day:>2}: {}", report.summary());
    print_deliveries(&report, "          ");
    if let Some(owner) = owner {
        for d in report.deliveries.iter().filter(|d| d.to.contains(owner)) {
            println!(
                "          to the owner: {} — \"{}\" ({})",
                d.kind, d.subject, d.outcome
            );
        }
    }
    for f in &report.failures {
        println!("          failed: {}: {}", f.item, f.error);
    }
    Ok(report)
}

/// A deliver run's emails by outcome and kind.
fn print_deliveries(report: &billrun::jobs::JobReport, indent: &str) {
    let mut by: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for d in &report.deliveries {
        *by.entry((d.outcome.as_str(), d.kind.as_str())).or_default() += 1;
    }
    let mut outcomes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((outcome, kind), n) in by {
        outcomes
            .entry(outcome)
            .or_default()
            .push(format!("{n} {kind}"));
    }
    for (outcome, kinds) in outcomes {
        println!("{indent}{outcome}: {}", kinds.join(", "));
    }
}

/// What accounts own besides apps, for the deletion the demo shows: an alias per account, two
/// deployments per app, a domain with its certificate for every other app.
async fn seed_platform_extras(
    db: &Db,
    p: &generate::DemoPlatform,
    period: Period,
) -> anyhow::Result<()> {
    use billrun::model::{Alias, Certificate, Deployment, Domain};
    let mut tx = db.begin().await?;
    for a in &p.accounts {
        accounts::insert_alias(
            &mut tx,
            &Alias {
                id: format!("alias-{}", a.id.as_str()),
                account_id: a.id.clone(),
                name: a.id.as_str().to_string(),
            },
        )
        .await?;
    }
    for (i, app) in p.apps.iter().enumerate() {
        for n in 0..2 {
            accounts::insert_deployment(
                &mut tx,
                &Deployment {
                    id: format!("dep-{}-{n}", app.id.as_str()),
                    app_id: app.id.clone(),
                    git_ref: if n == 0 {
                        "main".into()
                    } else {
                        format!("v1.{i}.0")
                    },
                    created_at: period.start() + Duration::days(3 + 10 * n),
                },
            )
            .await?;
        }
        if i % 2 == 0 {
            let domain = format!("dom-{}", app.id.as_str());
            accounts::insert_domain(
                &mut tx,
                &Domain {
                    id: domain.clone(),
                    app_id: app.id.clone(),
                    name: format!("{}.example.com", app.id.as_str()),
                },
            )
            .await?;
            accounts::insert_certificate(
                &mut tx,
                &Certificate {
                    id: format!("cert-{}", app.id.as_str()),
                    domain_id: domain,
                    issuer: "Let's Encrypt".into(),
                    expires_at: period.end() + Duration::days(60),
                },
            )
            .await?;
        }
    }
    tx.commit()
        .await
        .context("seeding the demo's deployments, domains and certificates")
}

/// Writes a generated platform (accounts, apps, prices, usage, credit, payment methods) in one
/// transaction.
pub async fn seed(db: &Db, p: &generate::DemoPlatform) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    for a in &p.accounts {
        accounts::insert_account(&mut tx, a).await?;
    }
    for a in &p.apps {
        accounts::insert_app(&mut tx, a).await?;
    }
    for c in &p.catalog {
        catalog::insert_price(&mut tx, c).await?;
    }
    for u in &p.usage {
        accounts::insert_usage(&mut tx, u).await?;
    }
    for c in &p.credits {
        collection::add_credit(
            &mut tx,
            c.account_id.as_str(),
            c.amount_minor,
            &c.reference,
            c.at,
        )
        .await?;
    }
    for a in &p.accounts {
        if let Some((kind, pm)) = demo_payment_method(a.id.as_str()) {
            let customer = format!("cus_demo_{}", a.id.as_str().replace('-', ""));
            collection::set_payment_method(
                &mut tx,
                a.id.as_str(),
                kind,
                &customer,
                pm,
                a.created_at,
            )
            .await?;
            if kind == "sepa_debit" {
                // The mandate reference (RUM) the invoices name (EN 16931 BT-89).
                let rum = format!("RUM-{}", a.id.as_str().to_uppercase());
                collection::set_sepa_mandate(&mut tx, a.id.as_str(), Some(&rum)).await?;
            }
        }
    }
    tx.commit().await.context("seeding the demo platform")
}

/// The demo's payment methods, as Stripe's test methods: mostly cards that pay, some SEPA
/// mandates, a few declines of each kind, and some accounts with none (prepaid credit only).
pub fn demo_payment_method(account: &str) -> Option<(&'static str, &'static str)> {
    use sha2::{Digest, Sha256};
    let roll = Sha256::digest(account.as_bytes())[0] as u32 * 100 / 256;
    match roll {
        0..=64 => Some(("card", "pm_card_visa")),
        65..=76 => Some(("sepa_debit", "pm_sepa_debit_ok")),
        77..=78 => Some(("sepa_debit", "pm_sepa_debit_fail")),
        79..=82 => Some(("card", "pm_card_visa_chargeDeclinedInsufficientFunds")),
        83..=85 => Some(("card", "pm_card_visa_chargeDeclined")),
        86..=88 => Some(("card", "pm_card_chargeDeclinedExpiredCard")),
        89..=90 => Some(("card", "pm_card_authenticationRequired")),
        _ => None,
    }
}

fn print_invoice_summary(invoices: &[billrun::core::document::Invoice]) {
    let mut by_case: BTreeMap<String, (usize, i64, i64, i64)> = BTreeMap::new();
    for i in invoices {
        let key = format!("{} ({}%)", i.vat_case.as_str(), i.tax_rate.normalize());
        let e = by_case.entry(key).or_default();
        e.0 += 1;
        e.1 += i.subtotal.minor;
        e.2 += i.tax.minor;
        e.3 += i.total.minor;
    }
    let mut rows: Vec<Vec<String>> = by_case
        .iter()
        .map(|(k, (n, s, t, tot))| {
            vec![
                k.clone(),
                n.to_string(),
                format_minor(*s),
                format_minor(*t),
                format_minor(*tot),
            ]
        })
        .collect();
    let all = by_case.values().fold((0, 0, 0, 0), |a, b| {
        (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3)
    });
    rows.push(vec![
        "all".into(),
        all.0.to_string(),
        format_minor(all.1),
        format_minor(all.2),
        format_minor(all.3),
    ]);
    println!();
    print!(
        "{}",
        table(
            &["VAT CASE", "INVOICES", "SUBTOTAL", "VAT", "TOTAL (EUR)"],
            &rows
        )
    );
    println!();
    let sample: Vec<_> = invoices.iter().take(8).cloned().collect();
    print!("{}", views::invoice_table(&sample));
    if invoices.len() > sample.len() {
        println!("… and {} more", invoices.len() - sample.len());
    }
}

fn print_collection_summary(report: &billrun::jobs::JobReport) {
    let mut rows: BTreeMap<(String, String), (usize, i64)> = BTreeMap::new();
    for c in &report.collections {
        let method = c.method.clone().unwrap_or_else(|| "-".into());
        let e = rows
            .entry((c.outcome.as_str().to_string(), method))
            .or_default();
        e.0 += 1;
        e.1 += billrun::core::money::parse_major(&c.charge).unwrap_or(0);
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|((outcome, method), (n, amount))| {
            vec![outcome, method, n.to_string(), format_minor(amount)]
        })
        .collect();
    println!();
    print!(
        "{}",
        table(&["OUTCOME", "METHOD", "INVOICES", "AMOUNT (EUR)"], &rows)
    );
}

/// A goodwill gesture on the first paid invoice (issue 22): a credit note of 10 % of it,
/// refunded as it was paid, its PDF written beside the invoices', and the email sent.
async fn credit_note(env: &Env, now: DateTime<Utc>) -> anyhow::Result<()> {
    let paid = billrun::store::invoices::list(
        &env.db,
        &billrun::store::invoices::ListFilter {
            status: Some(billrun::core::document::InvoiceStatus::Paid),
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .filter(|i| i.subtotal_minor - i.discount_minor >= 1000);
    // An account still active, so that its email goes out (the demo closed one account).
    let mut chosen = None;
    for inv in paid {
        if let Some(a) = billrun::store::accounts::get_account(&env.db, &inv.account_id).await?
            && a.status == billrun::core::lifecycle::AccountStatus::Active
            && !a.email.is_empty()
        {
            chosen = Some(inv);
            break;
        }
    }
    let Some(inv) = chosen else {
        return Ok(());
    };
    // After the weeks the demo plays out (its last step is about day 19).
    let at = now + Duration::days(25);
    let cn = billrun::credit_notes::issue(
        env,
        &billrun::credit_notes::Request {
            invoice: inv.number.clone(),
            reason: match inv.language {
                billrun::core::locale::Language::Fr => "Geste commercial : incident de plateforme",
                billrun::core::locale::Language::En => "Commercial gesture: platform incident",
            }
            .into(),
            what: billrun::core::credit_note::CreditRequest::Amount(
                (inv.subtotal_minor - inv.discount_minor) / 10,
            ),
            method: billrun::core::credit_note::RefundMethod::Auto,
            now: at,
            dry_run: false,
        },
    )
    .await?;
    println!();
    println!(
        "A credit note (billrun invoices credit-note {} …):",
        inv.number
    );
    for line in billrun::views::credit_note_text(&cn).lines() {
        println!("  {line}");
    }
    let dir = std::path::Path::new(DEMO_OUT).join("credit-notes");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let (Some(id), Some(number)) = (cn.id, cn.number.as_deref())
        && let Some((pdf, _)) = billrun::store::credit_notes::document(&env.db, id.0).await?
    {
        let path = dir.join(format!("credit-note-{number}.pdf"));
        std::fs::write(&path, pdf).with_context(|| format!("writing {}", path.display()))?;
        println!("  written to {}", path.display());
    }
    deliver(env, at + Duration::minutes(5), 25, None).await?;
    Ok(())
}

async fn write_pdfs(env: &Env) -> anyhow::Result<usize> {
    let dir = std::path::Path::new(DEMO_OUT).join("invoices");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut n = 0;
    for inv in billrun::store::invoices::list(&env.db, &Default::default()).await? {
        if let Some((pdf, _)) = billrun::store::documents::get(&env.db, inv.id).await? {
            let path = dir.join(format!("invoice-{}.pdf", inv.number));
            std::fs::write(&path, pdf).with_context(|| format!("writing {}", path.display()))?;
            n += 1;
        }
    }
    Ok(n)
}
