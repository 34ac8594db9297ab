//! Integration test of the PDF invoice renderer against real PDF tooling:
//! `qpdf --check` must accept every file and `pdftotext -layout` must find every
//! mention. The ignored `write_samples` writes the French and English samples to
//! `docs/invoice-{fr,en}.pdf` and renders their first page to `docs/invoice-{fr,en}.png`
//! (pdftoppm): `cargo test --test it -- --ignored write_samples`.

use std::path::Path;
use std::process::Command;

use billrun::core::document::{Buyer, Discount, Invoice, InvoiceStatus, Line, Seller};
use billrun::core::einvoice::PaymentMeans;
use billrun::core::ids::AccountId;
use billrun::core::locale::Language;
use billrun::core::money::{Currency, Money};
use billrun::core::period::Period;
use billrun::core::pricing::UsageKind;
use billrun::core::vat::VatCase;
use billrun::documents::pdf::render;
use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

fn seller() -> Seller {
    Seller {
        name: "Nuage Ardent".into(),
        legal_form: "SAS au capital de 10 000 €".into(),
        address: vec![
            "12 rue de la Forêt".into(),
            "69002 Lyon".into(),
            "France".into(),
        ],
        rcs: "RCS Lyon 912 345 678".into(),
        siren: "912 345 678".into(),
        siret: "912 345 678 00019".into(),
        vat_number: "FR32912345678".into(),
        email: "facturation@nuage-ardent.fr".into(),
        website: "https://nuage-ardent.fr".into(),
        iban: Some("FR76 3000 6000 0112 3456 7890 189".into()),
        electronic_address: None,
        sepa_creditor_id: None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// French customer, 20 % VAT, balance brought forward, credit and a payment.
    Domestic,
    /// EU business customer: reverse charge, no VAT.
    ReverseCharge,
}

const LONG_DESCRIPTION: &str = "Cluster Kubernetes géré, plan de contrôle haute disponibilité \
    avec trois nœuds maîtres répartis sur trois zones (eu-west-par-1, eu-west-par-2, eu-west-par-3)";

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn eur(s: &str) -> Money {
    let mut d = dec(s);
    d.rescale(2);
    Money::eur(d.mantissa() as i64)
}

fn line(description: &str, hours: &str, unit_price: &str, amount: &str) -> Line {
    Line {
        description: description.into(),
        app_id: Some("app-web".into()),
        kind: UsageKind::Container,
        item: "M".into(),
        quantity_hours: dec(hours),
        unit_price: dec(unit_price),
        amount: eur(amount),
    }
}

fn lines(lang: Language) -> Vec<Line> {
    let fr = lang == Language::Fr;
    let rows: [(&str, &str, &str, &str, &str); 8] = [
        (
            "Instance « web-prod » s-2vcpu-4gb (Paris)",
            "Instance “web-prod” s-2vcpu-4gb (Paris)",
            "744.00",
            "0.0200",
            "14.88",
        ),
        (
            "Base de données PostgreSQL managée – db-main",
            "Managed PostgreSQL database – db-main",
            "744.00",
            "0.0450",
            "33.48",
        ),
        (
            "Stockage objet (500 Go) – bucket « médias »",
            "Object storage (500 GB) – bucket “médias”",
            "744.00",
            "0.0030",
            "2.23",
        ),
        (
            "Bande passante sortante – région Zürich",
            "Egress bandwidth – Zürich region",
            "120.5",
            "0.0100",
            "1.21",
        ),
        (
            "Support prioritaire – équipe Søren",
            "Priority support – Søren's team",
            "744",
            "0.1000",
            "74.40",
        ),
        (
            "Runner CI « builds-rapides »",
            "CI runner “fast-builds”",
            "312.25",
            "0.0080",
            "2.50",
        ),
        (
            "Volume bloc 100 Go – données de l'élève",
            "Block volume 100 GB – Straße data",
            "744.00",
            "0.0060",
            "4.46",
        ),
        (
            "Adresse IPv4 dédiée",
            "Dedicated IPv4 address",
            "744.00",
            "0.0050",
            "3.72",
        ),
    ];
    let mut out: Vec<Line> = rows
        .iter()
        .map(|(f, e, q, u, a)| line(if fr { f } else { e }, q, u, a))
        .collect();
    out.push(line(LONG_DESCRIPTION, "744.00", "0.1500", "111.60"));
    out
}

/// An invoice as issued on 1 November 2026 for October 2026, due on 1 December.
fn invoice(lang: Language, kind: Kind) -> Invoice {
    let fr = lang == Language::Fr;
    let domestic = kind == Kind::Domestic;
    let period = Period::new(2026, 10).unwrap();
    let total = if domestic { "286.18" } else { "238.48" };
    Invoice {
        id: None,
        number: Some("F-2026-000123".into()),
        account_id: AccountId::from("acc-pdf"),
        period,
        period_start: period.start(),
        period_end: period.end(),
        status: InvoiceStatus::Open,
        currency: Currency::Eur,
        language: lang,
        buyer: Buyer {
            name: if domestic {
                "Hélène Lefèvre"
            } else {
                "Jürgen Weiß"
            }
            .into(),
            company: Some(
                if domestic {
                    "Crêperie Bretonne SARL"
                } else {
                    "Søren & Weiß GmbH"
                }
                .into(),
            ),
            address: if domestic {
                "8 place de l'Église\n35000 Rennes"
            } else {
                "Straße des 17. Juni 1\n10623 Berlin"
            }
            .into(),
            country: if domestic { "FR" } else { "DE" }.into(),
            vat_number: Some(
                if domestic {
                    "FR40123456824"
                } else {
                    "DE123456789"
                }
                .into(),
            ),
            vies_consultation: None,
            // A French business's SIREN (BT-47), printed near its address.
            siren: domestic.then(|| "123456824".into()),
            electronic_address: None,
        },
        lines: lines(lang),
        subtotal: eur("248.48"),
        discount: eur("10.00"),
        vat_case: if domestic {
            VatCase::Domestic
        } else {
            VatCase::ReverseCharge
        },
        tax_rate: if domestic { dec("20.00") } else { dec("0") },
        tax: eur(if domestic { "47.70" } else { "0" }),
        total: eur(total),
        discounts: vec![Discount {
            description: if fr {
                "filleul Atelier Mélodie"
            } else {
                "referee Atelier Mélodie"
            }
            .into(),
            amount: eur("10.00"),
        }],
        balance_brought_forward: eur(if domestic { "12.50" } else { "0" }),
        brought_forward: Vec::new(),
        credit_applied: eur(if domestic { "25.00" } else { "50.00" }),
        amount_paid: eur(if domestic { "100.00" } else { "0" }),
        carried_forward: eur("0"),
        carried_to: None,
        amount_due: eur(if domestic { "173.68" } else { "188.48" }),
        issued_at: Utc.with_ymd_and_hms(2026, 11, 1, 6, 0, 0).unwrap(),
        due_at: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        next_attempt_at: None,
        attempts: Vec::new(),
        amount_credited: Money::eur(0),
        credit_notes: Vec::new(),
        payment_means: PaymentMeans::Card,
        sepa_mandate: None,
    }
}

/// Writes `pdf`, runs `qpdf --check` (must pass) and returns the text
/// `pdftotext -layout` extracts, with every run of whitespace collapsed.
fn check_with_tools(dir: &Path, name: &str, pdf: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pdf).unwrap();
    let qpdf = Command::new("qpdf")
        .arg("--check")
        .arg(&path)
        .output()
        .expect("qpdf is installed");
    assert!(
        qpdf.status.success(),
        "qpdf --check {name} failed ({:?}):\n{}\n{}",
        qpdf.status,
        String::from_utf8_lossy(&qpdf.stdout),
        String::from_utf8_lossy(&qpdf.stderr)
    );
    let text = Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(text.status.success(), "pdftotext {name} failed");
    normalize(&String::from_utf8(text.stdout).expect("pdftotext emits UTF-8"))
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_contains(text: &str, expected: &[&str], what: &str) {
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|e| !text.contains(&normalize(e)))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: missing {missing:?} in extracted text:\n{text}"
    );
}

fn expected_common(inv: &Invoice) -> Vec<&str> {
    let mut v: Vec<&str> = inv
        .lines
        .iter()
        .map(|l| l.description.as_str())
        .filter(|d| *d != LONG_DESCRIPTION)
        .collect();
    v.extend([
        "Cluster Kubernetes géré",
        "F-2026-000123",
        "912 345 678",
        "912 345 678 00019",
        "FR32912345678",
        "Nuage Ardent",
        "SAS au capital de 10 000 €",
        "12 rue de la Forêt",
        "Page 1 / 1",
    ]);
    v.push(inv.buyer.company.as_deref().unwrap());
    v.push(&inv.buyer.name);
    v.push(inv.buyer.vat_number.as_deref().unwrap());
    v
}

#[test]
fn french_invoices_pass_qpdf_and_show_every_mention() {
    let dir = tempfile::tempdir().unwrap();
    let s = seller();

    let inv = invoice(Language::Fr, Kind::Domestic);
    let text = check_with_tools(dir.path(), "fr-domestic.pdf", &render(&inv, &s).unwrap());
    assert_contains(&text, &expected_common(&inv), "fr domestic");
    assert_contains(
        &text,
        &[
            "Facture",
            "N° F-2026-000123",
            "Date d'émission 01/11/2026",
            "Échéance 01/12/2026",
            "Période octobre 2026",
            "du 01/10/2026 au 31/10/2026",
            "SIREN : 912 345 678",
            "SIRET : 912 345 678 00019",
            "N° TVA intracommunautaire : FR32912345678",
            "FACTURÉ À",
            "Crêperie Bretonne SARL",
            "8 place de l'Église",
            // The buyer's SIREN (EN 16931 BT-47) and the payment means recorded at issue
            // (BG-16, the XML's BT-82 in the same words).
            "SIREN : 123 456 824",
            "Moyen de paiement : Carte bancaire enregistrée sur le compte.",
            "Désignation",
            "Quantité (h)",
            "744,00 0,02 € 14,88 €",
            "120,50 0,01 € 1,21 €",
            "744,00 0,1 € 74,40 €",
            "Remise parrainage – filleul Atelier Mélodie -10,00 €",
            "Sous-total HT 248,48 €",
            "Total remises HT -10,00 €",
            "TVA 20 % sur 238,48 € 47,70 €",
            "Total TTC 286,18 €",
            "Report de solde 12,50 €",
            "Crédit prépayé appliqué -25,00 €",
            "Montant payé -100,00 €",
            "Reste à payer 173,68 €",
            "Conditions de paiement",
            "Paiement prélevé automatiquement à l'émission de la facture",
            "Date d'échéance : 1er décembre 2026.",
            "suspension du compte à partir du 2 décembre 2026.",
            "Pas d'escompte pour paiement anticipé.",
            "des pénalités de retard sont exigibles de plein droit à compter du 2 décembre 2026",
            "au taux de trois fois le taux d'intérêt légal",
            "indemnité forfaitaire pour frais de recouvrement de 40 € (articles L441-10 et D441-5 du Code de commerce)",
            "RCS Lyon 912 345 678",
            "IBAN : FR76 3000 6000 0112 3456 7890 189",
        ],
        "fr domestic",
    );

    let inv = invoice(Language::Fr, Kind::ReverseCharge);
    let text = check_with_tools(dir.path(), "fr-reverse.pdf", &render(&inv, &s).unwrap());
    assert_contains(&text, &expected_common(&inv), "fr reverse charge");
    assert_contains(
        &text,
        &[
            "Autoliquidation — TVA due par le preneur (article 196 de la directive 2006/112/CE, article 283-2 du CGI).",
            "10623 Berlin",
            "TVA 0 % sur 238,48 € 0,00 €",
            "Straße des 17. Juni 1",
            "Total TTC 238,48 €",
            "Crédit prépayé appliqué -50,00 €",
            "Reste à payer 188,48 €",
            "indemnité forfaitaire pour frais de recouvrement de 40 €",
        ],
        "fr reverse charge",
    );
    assert!(
        !text.contains("TVA 20 %"),
        "no French VAT on a reverse-charge invoice"
    );
    assert!(
        !text.contains("Report de solde"),
        "no balance brought forward is not printed"
    );
    assert!(
        !text.contains("Montant payé"),
        "zero payment is not printed"
    );
}

#[test]
fn english_invoices_pass_qpdf_and_show_every_mention() {
    let dir = tempfile::tempdir().unwrap();
    let s = seller();

    let inv = invoice(Language::En, Kind::ReverseCharge);
    let text = check_with_tools(dir.path(), "en-reverse.pdf", &render(&inv, &s).unwrap());
    assert_contains(&text, &expected_common(&inv), "en reverse charge");
    assert_contains(
        &text,
        &[
            "Invoice",
            "No. F-2026-000123",
            "Issue date 1 November 2026",
            "Due date 1 December 2026",
            "Period October 2026",
            "1 October 2026 – 31 October 2026",
            "SIREN: 912 345 678",
            "VAT number: FR32912345678",
            "BILLED TO",
            "Søren & Weiß GmbH",
            "Jürgen Weiß",
            "10623 Berlin",
            "Description",
            "Quantity (h)",
            "744.00 €0.02 €14.88",
            "VAT 0% on €238.48 €0.00",
            "Referral discount – referee Atelier Mélodie -€10.00",
            "Subtotal excl. VAT €248.48",
            "Total discounts excl. VAT -€10.00",
            "Total incl. VAT €238.48",
            "Prepaid credit applied -€50.00",
            "Amount due €188.48",
            "Autoliquidation — reverse charge: VAT due by the customer (article 196 of Directive 2006/112/EC).",
            "Payment terms",
            "No discount for early payment.",
            "Payment is collected automatically when the invoice is issued",
            "Due date: 1 December 2026.",
            "late-payment penalties are due by operation of law from 2 December 2026",
            "three times the French legal interest rate",
            "fixed compensation for recovery costs of €40 (articles L441-10 and D441-5 of the French Commercial Code)",
        ],
        "en reverse charge",
    );

    let inv = invoice(Language::En, Kind::Domestic);
    let text = check_with_tools(dir.path(), "en-domestic.pdf", &render(&inv, &s).unwrap());
    assert_contains(&text, &expected_common(&inv), "en domestic");
    assert_contains(
        &text,
        &[
            "VAT 20% on €238.48 €47.70",
            "Total incl. VAT €286.18",
            "Balance brought forward €12.50",
            "Prepaid credit applied -€25.00",
            "Amount paid -€100.00",
            "Amount due €173.68",
            "fixed compensation for recovery costs of €40",
            "SIREN: 123 456 824",
            "Payment means: Card on file.",
        ],
        "en domestic",
    );
}

#[test]
fn two_hundred_lines_paginate_and_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    for lang in [Language::Fr, Language::En] {
        let mut inv = invoice(lang, Kind::ReverseCharge);
        inv.lines = (1..=200)
            .map(|i| {
                line(
                    &format!("Instance n°{i:03} – conteneur « worker-{i} »"),
                    "744.00",
                    "0.0200",
                    "14.88",
                )
            })
            .collect();
        let pdf = render(&inv, &seller()).unwrap();
        let text = check_with_tools(dir.path(), "long.pdf", &pdf);
        for line in &inv.lines {
            assert!(text.contains(&line.description), "{}", line.description);
        }
        let pages = (1..20)
            .take_while(|n| text.contains(&format!("Page {n} / ")))
            .count();
        assert!(pages >= 3, "200 lines on {pages} pages");
        assert!(text.contains(&format!("Page {pages} / {pages}")));
        // Page header and table header repeated on every page.
        let header = if lang == Language::Fr {
            "Désignation"
        } else {
            "Description"
        };
        assert_eq!(text.matches(header).count(), pages);
        assert!(text.matches("F-2026-000123").count() >= pages);
        let indemnity = if lang == Language::Fr {
            "frais de recouvrement de 40 €"
        } else {
            "recovery costs of €40"
        };
        assert!(text.contains(indemnity));
    }
}

#[test]
fn scripts_beyond_latin_use_the_full_font() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = invoice(Language::En, Kind::ReverseCharge);
    inv.buyer.name = "ნინო ბერიძე".into();
    inv.buyer.company = Some("Ελληνική Εταιρεία Α.Ε.".into());
    inv.buyer.address = "ул. Пушкина, д. 10\nThessaloníki".into();
    let text = check_with_tools(dir.path(), "scripts.pdf", &render(&inv, &seller()).unwrap());
    assert_contains(
        &text,
        &[
            "ნინო ბერიძე",
            "Ελληνική Εταιρεία Α.Ε.",
            "ул. Пушкина, д. 10",
            "Amount due €188.48",
        ],
        "non-Latin scripts",
    );
}

/// The same invoice gives the same bytes, and these bytes: a change to the renderer, to its
/// dependencies (printpdf, lopdf, flate2) or to the embedded fonts that moves a single byte
/// shows here. If the change is meant, check the new PDFs (`BILLRUN_WRITE_SAMPLES=1`,
/// `qpdf --check`, `pdftotext`) and update the digests, saying why in the commit.
#[test]
fn the_bytes_of_the_sample_invoices_are_pinned() {
    let cases = [
        (
            Language::Fr,
            Kind::Domestic,
            "27ee39513fe578d17f934a9d39fb33fbeb14ddc38eb872d6b6d723bf4c2fdd6b",
        ),
        (
            Language::Fr,
            Kind::ReverseCharge,
            "5c6ea6de4ef572b0073ff172d0c22a5a0c73a59e43d14fcde27e24773e5b8eaa",
        ),
        (
            Language::En,
            Kind::Domestic,
            "d73c86a54fb43d0d9dc3d727f2f5c95cd612d85d30c1c3c2b1ec38c113ecea41",
        ),
        (
            Language::En,
            Kind::ReverseCharge,
            "389f163267c3eade02f06e10c37b195c6e411d867e987ee1405f42c913b722d2",
        ),
    ];
    // All four compared at once, so a change shows every new hash.
    let got: Vec<String> = cases
        .iter()
        .map(|(lang, kind, _)| {
            billrun::store::documents::sha256_hex(
                &render(&invoice(*lang, *kind), &seller()).unwrap(),
            )
        })
        .collect();
    let expected: Vec<&str> = cases.iter().map(|c| c.2).collect();
    assert_eq!(got, expected);
}

#[test]
#[ignore = "writes docs/invoice-{fr,en}.{pdf,png} in the checkout: run it to refresh the samples"]
fn write_samples() {
    let docs = crate::common::repo_root().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let samples = [
        ("invoice-fr", invoice(Language::Fr, Kind::Domestic)),
        ("invoice-en", invoice(Language::En, Kind::ReverseCharge)),
    ];
    for (name, inv) in samples {
        let pdf_path = docs.join(format!("{name}.pdf"));
        std::fs::write(&pdf_path, render(&inv, &seller()).unwrap()).unwrap();
        let status = Command::new("pdftoppm")
            .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
            .arg(&pdf_path)
            .arg(docs.join(name))
            .status()
            .expect("pdftoppm (poppler-utils) is installed");
        assert!(status.success(), "pdftoppm {name}");
    }
}
