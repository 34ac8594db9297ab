//! The `billrun` binary: commands, JSON shapes and exit codes, on both stores.

use crate::common::{TestApp, fixture};
use serde_json::Value;

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn import_all(app: &TestApp) {
    for (kind, file) in [
        ("catalog", "catalog.csv"),
        ("accounts", "accounts.csv"),
        ("apps", "apps.csv"),
        ("usage", "usage.csv"),
    ] {
        let out = ok(&app.cli(&["import", kind, fixture(file).to_str().unwrap()]));
        assert!(out.contains("imported"), "{out}");
    }
}

both_stores!(run_list_show_and_account, |app: TestApp| async move {
    import_all(&app);
    let dry: Value = serde_json::from_str(&ok(&app.cli(&[
        "run",
        "invoice",
        "--now",
        "2026-11-01T06:00:00Z",
        "--dry-run",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(dry["job"], "invoice");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["counts"]["would_invoice"], 6);
    assert_eq!(dry["invoices"][0]["number"], Value::Null);
    assert_eq!(app.count("invoices").await, 0);

    let run: Value = serde_json::from_str(&ok(&app.cli(&[
        "run",
        "invoice",
        "--now",
        "2026-11-01T06:00:00Z",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(run["dry_run"], false);
    assert_eq!(run["counts"]["invoiced"], 6);
    assert_eq!(run["period"], "2026-10");

    let list: Value =
        serde_json::from_str(&ok(&app.cli(&["invoices", "list", "--format", "json"]))).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 6);
    let keys = [
        "id",
        "number",
        "account_id",
        "period",
        "status",
        "currency",
        "lines",
        "subtotal",
        "discount",
        "tax_rate",
        "tax",
        "total",
        "credit_applied",
        "amount_paid",
        "amount_due",
        "issued_at",
        "due_at",
    ];
    for k in keys {
        assert!(list[0].get(k).is_some(), "invoice JSON lacks {k}");
    }
    for k in [
        "description",
        "app_id",
        "kind",
        "item",
        "quantity_hours",
        "unit_price",
        "amount",
    ] {
        assert!(list[0]["lines"][0].get(k).is_some(), "line JSON lacks {k}");
    }
    assert_eq!(list[3]["total"], "35.65", "amounts are decimal strings");

    let filtered: Value = serde_json::from_str(&ok(&app.cli(&[
        "invoices",
        "list",
        "--account",
        "acc-fi-consumer",
        "--period",
        "2026-10",
        "--status",
        "open",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(filtered.as_array().unwrap().len(), 1);

    let shown = ok(&app.cli(&["invoices", "show", "2026-000004"]));
    assert!(
        shown.contains("Invoice 2026-000004")
            && shown.contains("35.65")
            && shown.contains("bob-api"),
        "{shown}"
    );
    let id = list[0]["id"].as_i64().unwrap().to_string();
    let by_id: Value =
        serde_json::from_str(&ok(&app.cli(&["invoices", "show", &id, "--format", "json"])))
            .unwrap();
    assert_eq!(by_id["number"], "2026-000001");

    let acc = ok(&app.cli(&["account", "show", "acc-fr-business"]));
    assert!(
        acc.contains("invoice.issued")
            && acc.contains("Invoice 2026-000004 issued for 2026-10: 35.65 EUR"),
        "{acc}"
    );
    let acc: Value = serde_json::from_str(&ok(&app.cli(&[
        "account",
        "show",
        "acc-fr-business",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(acc["timeline"].as_array().unwrap().len(), 1);

    let again = ok(&app.cli(&["run", "invoice", "--now", "2026-11-01T07:00:00Z"]));
    assert!(again.contains("6 already invoiced"), "{again}");
});

both_stores!(exit_codes, |app: TestApp| async move {
    import_all(&app);
    let code = |args: &[&str]| {
        let o = app.cli(args);
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    // 2: bad usage, config or input.
    let bad = app.dir.path().join("bad.csv");
    std::fs::write(&bad, "id,name,account_id\napp-z,z,acc-ghost\n").unwrap();
    let (c, err) = code(&["import", "apps", bad.to_str().unwrap()]);
    assert_eq!(c, 2);
    assert!(
        err.contains("bad.csv:2: account_id: unknown account `acc-ghost`"),
        "{err}"
    );
    let (c, err) = code(&[
        "import",
        "apps",
        app.dir.path().join("apps.xlsx").to_str().unwrap(),
    ]);
    assert_eq!(c, 2);
    assert!(err.contains("unknown file type"), "{err}");
    let (c, err) = code(&["run", "invoice", "--now", "yesterday"]);
    assert_eq!(c, 2);
    assert!(err.contains("not an RFC 3339 time"), "{err}");
    let (c, _) = code(&["run", "invoice", "--period", "2026-13"]);
    assert_eq!(c, 2);
    let (c, err) = code(&[
        "run",
        "invoice",
        "--now",
        "2026-11-01T06:00:00Z",
        "--account",
        "acc-ghost",
    ]);
    assert_eq!(c, 2);
    assert!(err.contains("unknown account `acc-ghost`"), "{err}");
    let (c, err) = code(&[
        "run",
        "invoice",
        "--now",
        "2026-11-01T06:00:00Z",
        "--database-url",
        "mysql://x",
    ]);
    assert_eq!(c, 2);
    assert!(err.contains("unsupported database URL"), "{err}");
    let jobs = app.dir.path().join("bad-jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(
        jobs.join("invoice.toml"),
        "schedule = \"0 0 6 1 * *\"\n[settings]\ndue_days = -1\nbatch_size = 10\n",
    )
    .unwrap();
    let (c, err) = code(&["run", "invoice", "--jobs-dir", jobs.to_str().unwrap()]);
    assert_eq!(c, 2);
    assert!(err.contains("invoice.toml:3:"), "{err}");
    // 3: the store cannot be reached.
    let (c, err) = code(&[
        "run",
        "invoice",
        "--database-url",
        "postgres://postgres:secret@127.0.0.1:1/none",
    ]);
    assert_eq!(c, 3);
    assert!(!err.contains("secret"), "passwords are never shown: {err}");
    // 0: done.
    let (c, _) = code(&["run", "invoice", "--now", "2026-11-01T06:00:00Z"]);
    assert_eq!(c, 0);
});

#[test]
fn demo_bills_a_month_on_a_fresh_embedded_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
            .args(["demo", "--seed", "7"])
            .env("BILLRUN_DATABASE_URL", "postgres://must-not-be-used")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let first = run();
    let out = ok(&first);
    assert!(dir.path().join("billrun-demo.db").exists());
    assert!(
        out.contains("invoice 2026-10:") && out.contains("invoiced"),
        "{out}"
    );
    for case in ["domestic", "reverse_charge", "eu_consumer", "out_of_scope"] {
        assert!(out.contains(case), "demo shows the {case} VAT case: {out}");
    }
    // Collected with the simulator: paid, unpaid and pending invoices.
    let collect = out
        .lines()
        .find(|l| l.starts_with("collect [simulated gateway]:"))
        .unwrap_or_else(|| panic!("{out}"));
    for word in [" paid", "failed attempts", " pending"] {
        assert!(collect.contains(word), "{collect}");
    }
    // Its PDFs and emails (.eml files: no SMTP server is set) are in demo-out/.
    let files = |sub: &str, ext: &str| {
        std::fs::read_dir(dir.path().join("demo-out").join(sub))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == ext)
            })
            .count()
    };
    let (pdfs, emls) = (files("invoices", "pdf"), files("emails", "eml"));
    assert!(pdfs >= 200, "{pdfs} PDFs");
    assert!(emls > pdfs, "{emls} emails: one per invoice and more");
    // Deterministic: a second run on a fresh file prints the same.
    assert_eq!(ok(&run()), out);
}

both_stores!(
    credit_payment_methods_and_collect_from_the_command_line,
    |app: TestApp| async move {
        import_all(&app);
        let out = ok(&app.cli(&[
            "credit",
            "add",
            "--account",
            "acc-fi-consumer",
            "--amount",
            "2.00",
            "--reference",
            "PAYPAL-9X",
            "--at",
            "2026-10-20T00:00:00Z",
        ]));
        assert!(out.contains("credit recorded: balance 2.00 EUR"), "{out}");
        let out = ok(&app.cli(&[
            "credit",
            "add",
            "--account",
            "acc-fi-consumer",
            "--amount",
            "2.00",
            "--reference",
            "PAYPAL-9X",
        ]));
        assert!(out.contains("already recorded"), "{out}");
        let bad = app.cli(&[
            "credit",
            "add",
            "--account",
            "acc-fi-consumer",
            "--amount",
            "5.00",
            "--reference",
            "PAYPAL-9X",
        ]);
        assert_eq!(bad.status.code(), Some(2), "same reference, other amount");
        let bad = app.cli(&[
            "credit",
            "add",
            "--account",
            "acc-fi-consumer",
            "--amount",
            "1.005",
            "--reference",
            "PAYPAL-9Y",
        ]);
        assert_eq!(bad.status.code(), Some(2));
        let out = ok(&app.cli(&[
            "payment-method",
            "set",
            "--account",
            "acc-fr-business",
            "--kind",
            "sepa_debit",
            "--stripe-customer",
            "cus_bob",
            "--stripe-payment-method",
            "pm_sepa_debit_ok",
        ]));
        assert!(out.contains("payment method set"), "{out}");
        let bad = app.cli(&[
            "payment-method",
            "set",
            "--account",
            "acc-fr-business",
            "--kind",
            "card",
            "--stripe-customer",
            "bob",
            "--stripe-payment-method",
            "pm_x",
        ]);
        assert_eq!(bad.status.code(), Some(2));
        ok(&app.cli(&["run", "invoice", "--now", "2026-11-01T06:00:00Z"]));

        let plan: Value = serde_json::from_str(&ok(&app.cli(&[
            "run",
            "collect",
            "--now",
            "2026-11-01T07:00:00Z",
            "--dry-run",
            "--format",
            "json",
        ])))
        .unwrap();
        assert_eq!(plan["job"], "collect");
        assert_eq!(plan["dry_run"], true);
        assert_eq!(plan["gateway"], "simulated");
        let items = plan["collections"].as_array().unwrap();
        let bob = items
            .iter()
            .find(|i| i["account_id"] == "acc-fr-business")
            .unwrap();
        assert_eq!(
            (
                bob["charge"].as_str(),
                bob["method"].as_str(),
                bob["outcome"].as_str()
            ),
            (Some("35.65"), Some("sepa_debit"), Some("planned"))
        );
        let eeva = items
            .iter()
            .find(|i| i["account_id"] == "acc-fi-consumer")
            .unwrap();
        assert_eq!(
            (eeva["credit_applied"].as_str(), eeva["charge"].as_str()),
            (Some("2.00"), Some("4.02"))
        );
        assert_eq!(app.count("payment_attempts").await, 0);

        let run = app.cli(&["run", "collect", "--now", "2026-11-01T07:00:00Z"]);
        let out = String::from_utf8_lossy(&run.stdout).to_string();
        assert!(out.contains("collect [simulated gateway]:"), "{out}");
        let shown: Value = serde_json::from_str(&ok(&app.cli(&[
            "invoices",
            "show",
            "2026-000004",
            "--format",
            "json",
        ])))
        .unwrap();
        assert_eq!(shown["status"], "pending", "SEPA is processing");
        assert_eq!(shown["attempts"][0]["method"], "sepa_debit");
        let credit: Value = serde_json::from_str(&ok(&app.cli(&[
            "credit",
            "show",
            "--account",
            "acc-fi-consumer",
            "--format",
            "json",
        ])))
        .unwrap();
        assert_eq!(credit["balance"], "0.00");
        assert_eq!(credit["history"].as_array().unwrap().len(), 2);
        ok(&app.cli(&["run", "collect", "--now", "2026-11-02T07:00:00Z"]));
        let shown: Value = serde_json::from_str(&ok(&app.cli(&[
            "invoices",
            "show",
            "2026-000004",
            "--format",
            "json",
        ])))
        .unwrap();
        assert_eq!(
            shown["status"], "paid",
            "the SEPA debit settles on the next run"
        );

        // The simulator is refused in production.
        let prod = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
            .args(["run", "collect", "--now", "2026-11-03T07:00:00Z"])
            .env("BILLRUN_DATABASE_URL", &app.url)
            .env("BILLRUN_ENVIRONMENT", "production")
            .current_dir(app.dir.path())
            .output()
            .unwrap();
        assert_eq!(prod.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&prod.stderr)
                .contains("refusing the simulated payment gateway in production")
        );
    }
);

fn exit_and_stderr(out: &std::process::Output) -> (i32, String) {
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

both_stores!(
    a_file_without_a_usable_header_exits_2_even_with_skip_invalid,
    |app: TestApp| async move {
        import_all(&app);
        let before = app.dump().await;
        let file = |name: &str, text: &str| {
            let p = app.dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.to_str().unwrap().to_string()
        };
        let empty = file("empty.csv", "");
        let headerless = file(
            "headerless.csv",
            "u-z,app-alice-web,container,S,1,2026-10-01T00:00:00Z,\n",
        );
        let wrong = file(
            "wrong.csv",
            "id,app,kind,item,quantity,started_at,ended_at\nu-z,app-alice-web,container,S,1,2026-10-01T00:00:00Z,\n",
        );
        for skip in [false, true] {
            let run = |path: &str| {
                let mut args = vec!["import", "usage", path];
                if skip {
                    args.push("--skip-invalid");
                }
                exit_and_stderr(&app.cli(&args))
            };
            let (c, err) = run(&empty);
            assert_eq!(c, 2, "{err}");
            assert!(
                err.contains("empty.csv:1: header: the file is empty: no header"),
                "{err}"
            );
            let (c, err) = run(&headerless);
            assert_eq!(c, 2, "{err}");
            assert!(
                err.contains("headerless.csv:1: header: the header is missing"),
                "{err}"
            );
            let (c, err) = run(&wrong);
            assert_eq!(c, 2, "{err}");
            assert!(
                err.contains("wrong.csv:1: header: `app` unknown field")
                    && err.contains("`app_id` missing field"),
                "{err}"
            );
        }
        // Names and addresses on one line (issue 19 §6): exit 2 naming file, line and field.
        let accounts = file(
            "accounts-lf.csv",
            "id,email,name,company,address,country,vat_number,language,created_at,referred_by\n\
             acc-lf,lf@example.com,\"Line\nBreak\",,1 rue X,FR,,fr,2025-01-10T09:00:00Z,\n",
        );
        let (c, err) = exit_and_stderr(&app.cli(&["import", "accounts", &accounts]));
        assert_eq!(c, 2, "{err}");
        assert!(
            err.contains("accounts-lf.csv:2: name: `Line\\nBreak` contains a line break"),
            "{err}"
        );
        assert_eq!(app.dump().await, before, "nothing imported");
    }
);

both_stores!(
    global_options_work_before_or_after_the_subcommand_issue_19,
    |app: TestApp| async move {
        import_all(&app);
        ok(&app.cli(&["run", "invoice", "--now", "2026-11-01T06:00:00Z"]));
        // The store given before the subcommand, with the environment pointing elsewhere.
        let elsewhere = format!("sqlite://{}", app.dir.path().join("other.db").display());
        let listed = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
                .args(args)
                .env("BILLRUN_DATABASE_URL", &elsewhere)
                .env_remove("BILLRUN_JOBS_DIR")
                .current_dir(app.dir.path())
                .output()
                .unwrap();
            let v: Value = serde_json::from_str(&ok(&out)).unwrap();
            v.as_array().unwrap().len()
        };
        let url = app.url.as_str();
        assert_eq!(
            listed(&[
                "--database-url",
                url,
                "invoices",
                "list",
                "--format",
                "json"
            ]),
            6
        );
        assert_eq!(
            listed(&[
                "invoices",
                "--database-url",
                url,
                "list",
                "--format",
                "json"
            ]),
            6
        );
        assert_eq!(
            listed(&[
                "invoices",
                "list",
                "--database-url",
                url,
                "--format",
                "json"
            ]),
            6
        );
        assert_eq!(
            listed(&["invoices", "list", "--format", "json"]),
            0,
            "the environment's store"
        );
        // After the subcommand wins over before it.
        assert_eq!(
            listed(&[
                "--database-url",
                &elsewhere,
                "invoices",
                "list",
                "--database-url",
                url,
                "--format",
                "json"
            ]),
            6
        );
        // --jobs-dir and --log-format before the subcommand too.
        let jobs = app.dir.path().join("jobs-missing-one");
        std::fs::create_dir_all(&jobs).unwrap();
        std::fs::copy(
            crate::common::repo_root().join("jobs/invoice.toml"),
            jobs.join("invoice.toml"),
        )
        .unwrap();
        let (c, err) = exit_and_stderr(&app.cli(&[
            "--log-format",
            "json",
            "--jobs-dir",
            jobs.to_str().unwrap(),
            "jobs",
        ]));
        assert_eq!(c, 2, "{err}");
        assert!(err.contains("collect.toml: missing"), "{err}");
        let (c, err) = exit_and_stderr(&app.cli(&[
            "jobs",
            "--log-format",
            "json",
            "--jobs-dir",
            jobs.to_str().unwrap(),
        ]));
        assert_eq!(c, 2, "{err}");
        assert!(err.contains("collect.toml: missing"), "{err}");
    }
);

both_stores!(
    a_jobs_directory_lacking_a_jobs_file_is_an_error_at_start_issue_25,
    |app: TestApp| async move {
        import_all(&app);
        // ./jobs holds only invoice.toml: before, the built-in collect.toml ran, enabled.
        let jobs = app.dir.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        std::fs::copy(
            crate::common::repo_root().join("jobs/invoice.toml"),
            jobs.join("invoice.toml"),
        )
        .unwrap();
        let (c, err) =
            exit_and_stderr(&app.cli(&["run", "collect", "--now", "2026-11-01T06:00:00Z"]));
        assert_eq!(c, 2, "{err}");
        assert!(
            err.contains(&format!(
                "{}: missing",
                std::path::Path::new("jobs").join("collect.toml").display()
            )),
            "{err}"
        );
        assert!(err.contains("enabled = false"), "{err}");
        assert_eq!(app.count("job_runs").await, 0);
    }
);

both_stores!(
    a_seller_siren_with_a_wrong_luhn_key_in_an_operators_jobs_dir_is_exit_2_naming_the_file_and_field,
    |app: TestApp| async move {
        import_all(&app);
        // An operator's jobs directory: every job's file, invoice.toml's seller with a SIREN
        // whose Luhn key is wrong (the sample of earlier releases, 812 345 674).
        let jobs = app.dir.path().join("operator-jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        for entry in std::fs::read_dir(crate::common::repo_root().join("jobs")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, jobs.join(path.file_name().unwrap())).unwrap();
        }
        let invoice = jobs.join("invoice.toml");
        let text = std::fs::read_to_string(&invoice).unwrap();
        assert!(text.contains("siren = \"812 345 676\""));
        std::fs::write(
            &invoice,
            text.replace("siren = \"812 345 676\"", "siren = \"812 345 674\""),
        )
        .unwrap();
        let named = format!("{}: settings.seller.siren: `812 345 674`", invoice.display());
        for args in [
            &["run", "invoice", "--now", "2026-11-01T06:00:00Z"][..],
            &["run", "collect", "--now", "2026-11-01T07:00:00Z"][..],
            &["jobs"][..],
        ] {
            let mut args = args.to_vec();
            args.extend(["--jobs-dir", jobs.to_str().unwrap()]);
            let (c, err) = exit_and_stderr(&app.cli(&args));
            assert_eq!(c, 2, "{args:?}: {err}");
            assert!(err.contains(&named), "{args:?}: {err}");
            assert!(err.contains("Luhn key"), "{args:?}: {err}");
        }
        assert_eq!(app.count("job_runs").await, 0, "nothing ran");
        assert_eq!(app.count("invoices").await, 0, "nothing billed");
    }
);

both_stores!(
    an_unknown_account_is_refused_before_a_run_is_claimed_issue_25,
    |app: TestApp| async move {
        import_all(&app);
        for job in [
            "invoice",
            "collect",
            "suspend",
            "deliver",
            "hds",
            "delete",
            "vat-check",
        ] {
            let (c, err) = exit_and_stderr(&app.cli(&[
                "run",
                job,
                "--now",
                "2026-11-01T06:00:00Z",
                "--account",
                "acc-fr-consumer",
                "--account",
                "nobody",
            ]));
            assert_eq!(c, 2, "{job}: {err}");
            assert!(
                err.contains("--account: unknown account `nobody`"),
                "{job}: {err}"
            );
        }
        assert_eq!(
            app.count("job_runs").await,
            0,
            "no run claimed, none failed"
        );
        // An unknown id is quoted in part.
        let long = "n".repeat(50_000);
        let (c, err) = exit_and_stderr(&app.cli(&["account", "show", &long]));
        assert_eq!(c, 2, "{err}");
        assert!(
            err.contains("… (50000 characters)`") && err.len() < 500,
            "{}",
            err.len()
        );
        ok(&app.cli(&[
            "run",
            "invoice",
            "--now",
            "2026-11-01T06:00:00Z",
            "--account",
            "acc-fr-consumer",
        ]));
        assert_eq!(app.count("job_runs").await, 1);
    }
);

/// Command arguments have the bounds of imports: refused by the parser (exit 2) before any
/// store is opened; before, a huge `--amount` panicked converting to cents.
#[test]
fn text_and_amount_arguments_are_bounded() {
    let refused = |args: &[&str], needle: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
            .args(args)
            .env("BILLRUN_DATABASE_URL", "sqlite:///nonexistent/dir/never.db")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.len() < 2000, "quoted in part: {}", err.len());
    };
    let long = "R".repeat(100_000);
    let credit = |amount: &str, reference: &str| {
        vec![
            "credit".to_string(),
            "add".into(),
            "--account".into(),
            "acc-1".into(),
            "--amount".into(),
            amount.into(),
            "--reference".into(),
            reference.into(),
        ]
    };
    let args = credit("79228162514264337593543950335", "P-1");
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "is above the maximum of 10000000000.00 EUR",
    );
    let args = credit("10", &long);
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "… (100000 characters)` is longer than 255 characters",
    );
    refused(
        &[
            "account",
            "hds-contact",
            "set",
            "acc-1",
            "--name",
            "Dr A.\nPetit",
            "--email",
            "a@example.com",
            "--phone",
            "1",
        ],
        "`Dr A.\\nPetit` contains a line break",
    );
}

/// `billrun run hds` on a fresh SQLite file with info logs; `tty` runs it under script(1), so
/// that its stderr is a terminal. Returns what it wrote on stderr (and stdout, under script).
fn logged_run(tty: bool, no_color: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_billrun");
    let mut cmd = if tty {
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &format!("'{bin}' run hds"), "/dev/null"]);
        c
    } else {
        let mut c = std::process::Command::new(bin);
        c.args(["run", "hds"]);
        c
    };
    cmd.env(
        "BILLRUN_DATABASE_URL",
        format!("sqlite://{}", dir.path().join("b.db").display()),
    )
    .env("BILLRUN_LOG", "info")
    .env_remove("BILLRUN_JOBS_DIR")
    .env_remove("NO_COLOR")
    .current_dir(dir.path());
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let out = cmd.output().expect("run billrun");
    assert!(out.status.success(), "{out:?}");
    let text = if tty { &out.stdout } else { &out.stderr };
    let text = String::from_utf8_lossy(text).to_string();
    assert!(text.contains("run finished"), "{text}");
    text
}

#[test]
fn logs_have_no_colour_codes_off_a_terminal_or_with_no_color() {
    // Piped (a file, a pipe, a journal): plain text, whatever NO_COLOR says.
    for no_color in [None, Some("1"), Some("")] {
        let text = logged_run(false, no_color);
        assert!(!text.contains("\x1b["), "{no_color:?}: {text}");
    }
    // At a terminal: colours, unless NO_COLOR is set to something (https://no-color.org).
    assert!(logged_run(true, None).contains("\x1b["));
    assert!(logged_run(true, Some("")).contains("\x1b["));
    let text = logged_run(true, Some("1"));
    assert!(!text.contains("\x1b["), "{text}");
}

#[test]
fn a_connection_error_says_its_cause_once() {
    let admin = crate::common::pg_admin_url();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_billrun"))
        .args(["runs"])
        .env("BILLRUN_DATABASE_URL", format!("{base}/billrun_no_such_db"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(
        err.matches("database \"billrun_no_such_db\" does not exist")
            .count(),
        1,
        "{err}"
    );
    assert!(
        err.starts_with("error: cannot connect to PostgreSQL at "),
        "{err}"
    );
}

both_stores!(
    invoices_list_json_is_streamed_page_by_page_with_the_same_bytes,
    |app: TestApp| async move {
        import_all(&app);
        ok(&app.cli(&["run", "invoice", "--now", "2026-11-01T06:00:00Z"]));
        // What the command printed before it streamed (issue 25 §4): every view, pretty.
        let filters = [
            billrun::store::invoices::ListFilter::default(),
            billrun::store::invoices::ListFilter {
                period: Some("2026-10".parse().unwrap()),
                ..Default::default()
            },
        ];
        for filter in &filters {
            let mut views = Vec::new();
            for r in billrun::store::invoices::list(app.db(), filter)
                .await
                .unwrap()
            {
                views.push(billrun::views::load_invoice(app.db(), &r).await.unwrap());
            }
            assert_eq!(views.len(), 6);
            let before = format!("{}\n", serde_json::to_string_pretty(&views).unwrap());
            // Pages of 1, 4 (a short last page), 6 (a full last page), 500.
            for page in [1, 4, 6, 500] {
                let mut out = Vec::new();
                billrun::views::write_invoice_list_json(app.db(), filter, page, &mut out)
                    .await
                    .unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), before, "pages of {page}");
            }
        }
        let all = app.cli(&["invoices", "list", "--format", "json"]);
        let mut views = Vec::new();
        for r in billrun::store::invoices::list(app.db(), &filters[0])
            .await
            .unwrap()
        {
            views.push(billrun::views::load_invoice(app.db(), &r).await.unwrap());
        }
        assert_eq!(
            ok(&all),
            format!("{}\n", serde_json::to_string_pretty(&views).unwrap())
        );
        let none = app.cli(&[
            "invoices",
            "list",
            "--account",
            "nobody",
            "--format",
            "json",
        ]);
        assert_eq!(ok(&none), "[]\n");
    }
);
