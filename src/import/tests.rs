//! The import's validation without a store: each kind of record's refusals, and a fuzzer
//! (proptest) over CSV and NDJSON text of every kind.

use std::collections::HashSet;

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::read::{self, Fields};
use super::record::Record;
use super::usage::UsageKnown;
use super::*;
use crate::core::bounds;
use crate::core::pricing::{Catalog, UsageKind};

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn account(over: &[(&str, &str)]) -> Result<Account, Vec<LineError>> {
    let mut f = fields(&[
        ("id", "acc-1"),
        ("email", "alice@example.com"),
        ("name", "Alice Martin"),
        ("address", "1 rue de la Paix, 75002 Paris"),
        ("country", "FR"),
        ("language", "fr"),
        ("created_at", "2026-01-01T00:00:00Z"),
    ]);
    f.extend(fields(over));
    Account::from_fields("a.csv", 3, &f, &HashSet::new())
}

fn errors_of<T: std::fmt::Debug>(r: Result<T, Vec<LineError>>) -> Vec<String> {
    r.unwrap_err().iter().map(|e| e.to_string()).collect()
}

#[test]
fn emails_are_checked_with_lettres_address_parser() {
    assert!(account(&[]).is_ok());
    for ok in ["a.b+c@example.com", "x@sub.example.fr"] {
        assert!(account(&[("email", ok)]).is_ok(), "{ok}");
    }
    for bad in [
        "a@@example.com",
        "\"a,b\"@example.com",
        "x<y>@example.com",
        "Alice <alice@example.com>",
        "a b@example.com",
        "no-at-sign",
        "a@",
    ] {
        let e = errors_of(account(&[("email", bad)]));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].starts_with("a.csv:3: email: `"), "{bad}: {e:?}");
    }
    let long = format!("{}@example.com", "a".repeat(250));
    assert!(account(&[("email", &long)]).is_err());
}

#[test]
fn names_and_addresses_with_a_line_break_are_refused() {
    for field in ["name", "address", "company"] {
        for v in [
            "Alice\nMartin",
            "1 rue X\r\n75002 Paris",
            "a\rb",
            "tab\there",
        ] {
            let e = errors_of(account(&[(field, v)]));
            assert_eq!(e.len(), 1, "{field} {v:?}: {e:?}");
            assert!(e[0].starts_with(&format!("a.csv:3: {field}: `")), "{e:?}");
            assert!(
                !e[0].contains('\n') && !e[0].contains('\r'),
                "one line: {e:?}"
            );
        }
    }
    let app = App::from_fields(
        "apps.csv",
        2,
        &fields(&[
            ("id", "app-1"),
            ("name", "web\nworker"),
            ("account_id", "acc-1"),
        ]),
        &HashSet::from(["acc-1".to_string()]),
    );
    assert_eq!(
        errors_of(app),
        vec![
            "apps.csv:2: name: `web\\nworker` contains a line break (CR or LF): it must be one line"
        ]
    );
}

#[test]
fn every_text_field_has_a_maximum_length() {
    let cases: [(&str, usize); 5] = [
        ("id", bounds::MAX_ID_CHARS),
        ("name", bounds::MAX_NAME_CHARS),
        ("company", bounds::MAX_NAME_CHARS),
        ("address", bounds::MAX_ADDRESS_CHARS),
        ("vat_number", bounds::MAX_VAT_NUMBER_CHARS),
    ];
    for (field, max) in cases {
        let (ok, long) = ("é".repeat(max), "é".repeat(max + 1));
        if field != "id" && field != "vat_number" {
            assert!(account(&[(field, &ok)]).is_ok(), "{field} at {max}");
        }
        let e = errors_of(account(&[("country", "US"), (field, &long)]));
        assert!(
            e.iter()
                .any(|e| e.starts_with(&format!("a.csv:3: {field}: `"))
                    && e.contains(&format!("longer than {max} characters"))),
            "{field}: {e:?}"
        );
    }
    // A 10 MB name is refused and quoted in part.
    let huge = "n".repeat(10_000_000);
    let e = errors_of(account(&[("name", &huge)]));
    assert_eq!(e.len(), 1);
    assert!(e[0].len() < 300, "{}", e[0].len());
    assert!(e[0].contains("… (10000000 characters)"), "{}", &e[0][..200]);
}

fn usage(over: &[(&str, &str)]) -> Result<UsageRecord, Vec<LineError>> {
    let mut f = fields(&[
        ("id", "u-1"),
        ("app_id", "app-1"),
        ("kind", "container"),
        ("item", "M"),
        ("quantity", "2"),
        ("started_at", "2026-10-01T00:00:00Z"),
    ]);
    f.extend(fields(over));
    let cat = Catalog::new([PriceEntry {
        kind: UsageKind::Container,
        item: "M".into(),
        hourly_price: Decimal::new(12, 3),
        monthly_cap: None,
        effective_from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
    }]);
    let known = UsageKnown {
        apps: HashSet::from(["app-1".to_string()]),
        catalog: cat,
    };
    UsageRecord::from_fields("u.csv", 4, &f, &known)
}

fn price(over: &[(&str, &str)]) -> Result<PriceEntry, Vec<LineError>> {
    let mut f = fields(&[
        ("kind", "container"),
        ("item", "M"),
        ("hourly_price", "0.012"),
        ("currency", "EUR"),
        ("effective_from", "2024-01-01"),
    ]);
    f.extend(fields(over));
    PriceEntry::from_fields("c.csv", 2, &f, &())
}

#[test]
fn values_that_cannot_be_billed_are_refused_at_import() {
    assert!(usage(&[]).is_ok());
    assert!(usage(&[("quantity", "10000")]).is_ok());
    for (q, why) in [
        ("10001", "above the maximum of 10000"),
        ("9223372036854775807", "above the maximum"),
        ("9223372036854775808", "not a whole number"),
        ("-1", "negative"),
    ] {
        let e = errors_of(usage(&[("quantity", q)]));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("u.csv:4: quantity: ") && e[0].contains(why),
            "{e:?}"
        );
    }
    for (at, field) in [
        ("1970-01-01T00:00:00Z", "started_at"),
        ("9999-12-31T23:59:59Z", "started_at"),
    ] {
        let e = errors_of(usage(&[(field, at)]));
        assert!(e[0].contains("outside the years 2000 to 2999"), "{e:?}");
    }
    assert!(price(&[]).is_ok());
    assert!(price(&[("hourly_price", "1000000"), ("monthly_cap", "0.000001")]).is_ok());
    for (field, v, why) in [
        (
            "hourly_price",
            "79228162514264337593543950335",
            "above the maximum",
        ),
        ("hourly_price", "1000000.000001", "above the maximum"),
        ("hourly_price", "0.0000001", "more than 6 decimal places"),
        ("monthly_cap", "1e9", "above the maximum"),
        ("monthly_cap", "twelve", "not a decimal number"),
        ("monthly_cap", "99999999999", "above the maximum"),
        (
            "hourly_price",
            "792281625142643375935439503350",
            "not a decimal number",
        ),
    ] {
        let e = errors_of(price(&[(field, v)]));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!("c.csv:2: {field}: ")) && e[0].contains(why),
            "{e:?}"
        );
    }
    let e = errors_of(price(&[("effective_from", "1999-12-31")]));
    assert!(e[0].contains("outside the years"), "{e:?}");
}

/// Tokens a fuzzer would try: separators, quotes, line breaks, huge numbers, long text,
/// control and non-ASCII characters, JSON fragments, and plausible values.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("\r\n".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\u{0}".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(":".to_string()),
        Just("null".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775809".to_string()),
        Just("79228162514264337593543950335".to_string()),
        Just("1e400".to_string()),
        Just("0.0000000000000000000000000001".to_string()),
        Just("2026-10-01T00:00:00Z".to_string()),
        Just("+275760-09-13T00:00:00Z".to_string()),
        Just("2024-01-01".to_string()),
        Just("container".to_string()),
        Just("M".to_string()),
        Just("EUR".to_string()),
        Just("acc-1".to_string()),
        Just("app-1".to_string()),
        Just("a@@example.com".to_string()),
        Just("é🙂".to_string()),
        "[a-z0-9@.\\-]{0,12}",
        "\\PC{0,8}",
        (1usize..600).prop_map(|n| "x".repeat(n)),
    ]
}

fn csv_text(columns: &'static [&'static str]) -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just(columns.join(",")),
        Just(columns.join(",")),
        prop::collection::vec(token(), 0..4).prop_map(|t| t.join(",")),
    ];
    let line = prop::collection::vec(token(), 0..10).prop_map(|t| t.join(","));
    let eol = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    (header, prop::collection::vec((line, eol), 0..6)).prop_map(|(h, lines)| {
        let mut text = h;
        for (l, e) in lines {
            text.push_str(e);
            text.push_str(&l);
        }
        text
    })
}

fn ndjson_text(columns: &'static [&'static str]) -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(columns.to_vec()).prop_map(str::to_string),
        token(),
    ];
    let value = prop_oneof![
        token().prop_map(|t| serde_json::to_string(&t).unwrap()),
        token(),
        Just("[1,2]".to_string()),
        Just("{\"a\":1}".to_string()),
        Just("true".to_string()),
    ];
    let object = prop::collection::vec((key, value), 0..9).prop_map(|kv| {
        let members: Vec<String> = kv
            .into_iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap()))
            .collect();
        format!("{{{}}}", members.join(","))
    });
    let line = prop_oneof![object.clone(), object, token()];
    let eol = prop_oneof![Just("\n"), Just("\r\n")];
    prop::collection::vec((line, eol), 0..6)
        .prop_map(|lines| lines.into_iter().map(|(l, e)| format!("{l}{e}")).collect())
}

impl ImportKind {
    /// The columns a file may name, and those it must.
    fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        with_record!(self, R => (R::COLUMNS, R::REQUIRED))
    }
}

const KINDS: [ImportKind; 8] = [
    ImportKind::Accounts,
    ImportKind::Apps,
    ImportKind::Catalog,
    ImportKind::Usage,
    ImportKind::Deployments,
    ImportKind::Aliases,
    ImportKind::Domains,
    ImportKind::Certificates,
];

/// A record as the fuzzer validates it: what its references may name (`acc-1`, `app-1`, a
/// catalog with container `M`), and what must hold of an accepted one.
trait Fuzzed: Record {
    fn fuzz_known() -> Self::Known;
    fn accepted(&self) {}
}

fn fuzz_ids() -> HashSet<String> {
    HashSet::from(["acc-1".to_string(), "app-1".to_string()])
}

impl Fuzzed for Account {
    fn fuzz_known() -> HashSet<String> {
        fuzz_ids()
    }
    fn accepted(&self) {
        let one_line = |s: &str| !s.contains(['\r', '\n']);
        assert!(one_line(&self.name) && one_line(&self.address));
        assert!(self.name.chars().count() <= bounds::MAX_NAME_CHARS);
        assert!(self.email.parse::<lettre::Address>().is_ok());
    }
}

impl Fuzzed for PriceEntry {
    fn fuzz_known() {}
    fn accepted(&self) {
        assert!(bounds::price_problem(self.hourly_price).is_none());
    }
}

impl Fuzzed for UsageRecord {
    fn fuzz_known() -> UsageKnown {
        UsageKnown {
            apps: fuzz_ids(),
            catalog: Catalog::new([PriceEntry {
                kind: UsageKind::Container,
                item: "M".into(),
                hourly_price: Decimal::new(12, 3),
                monthly_cap: None,
                effective_from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            }]),
        }
    }
    fn accepted(&self) {
        assert!((0..=bounds::MAX_QUANTITY).contains(&self.quantity));
    }
}

macro_rules! fuzzed_by_ids {
    ($($t:ty),*) => {$(
        impl Fuzzed for $t {
            fn fuzz_known() -> HashSet<String> {
                fuzz_ids()
            }
        }
    )*};
}
fuzzed_by_ids!(App, Deployment, Alias, Domain, Certificate);

/// Reads and validates `text` as an import of `kind` would, without a store: no panic; every
/// refusal is an error naming the file and a line of the file; what is accepted is within
/// the bounds.
fn read_and_validate(kind: ImportKind, text: &str, format: read::Format) {
    with_record!(kind, R => read_and_validate_as::<R>(text, format))
}

fn read_and_validate_as<R: Fuzzed>(text: &str, format: read::Format) {
    let file = "fuzz.in";
    let line_count = text.split('\n').count().max(1);
    let names_a_line = |e: &LineError| {
        assert_eq!(e.file, file);
        assert!(
            (1..=line_count).contains(&e.line),
            "{e} of {line_count} lines"
        );
        assert!(e.to_string().starts_with(&format!("{file}:{}: ", e.line)));
        assert!(
            e.to_string().chars().count() < 1000,
            "{}",
            e.to_string().len()
        );
    };
    let (records, errors) = match read::read_records(file, text, format, R::COLUMNS, R::REQUIRED) {
        Ok(r) => r,
        Err(e) => {
            names_a_line(&e);
            return;
        }
    };
    errors.iter().for_each(names_a_line);
    let known = R::fuzz_known();
    for (line, f) in &records {
        match R::from_fields(file, *line, f, &known) {
            Ok(r) => r.accepted(),
            Err(errors) => {
                assert!(!errors.is_empty());
                for e in &errors {
                    names_a_line(e);
                    assert_eq!(e.line, *line);
                }
            }
        }
    }
}

proptest! {
    // A bounded run (CI runs it with every `cargo test`): 8 kinds × 2 formats per case.
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzzed_csv_imports_never_panic_and_name_file_and_line(
        k in 0usize..8,
        text in (0usize..8).prop_flat_map(|k| csv_text(KINDS[k].columns().0)),
    ) {
        read_and_validate(KINDS[k], &text, read::Format::Csv);
        read_and_validate(KINDS[(k + 3) % 8], &text, read::Format::Csv);
    }

    #[test]
    fn fuzzed_ndjson_imports_never_panic_and_name_file_and_line(
        k in 0usize..8,
        text in (0usize..8).prop_flat_map(|k| ndjson_text(KINDS[k].columns().0)),
    ) {
        read_and_validate(KINDS[k], &text, read::Format::Ndjson);
        read_and_validate(KINDS[(k + 3) % 8], &text, read::Format::Ndjson);
    }
}
