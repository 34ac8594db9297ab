use std::collections::BTreeSet;

use chrono::{NaiveDate, TimeZone, Utc};
use printpdf::{FontId, Op, ParsedFont, PdfDocument, TextItem, TextMatrix};
use rust_decimal::Decimal;

use super::canvas::wrap;
use super::fonts::{
    DEJAVU_SANS, DEJAVU_SANS_BOLD, FontLibrary, Fonts, LIBRARY, REGULAR_ID, REPLACEMENT, Weight,
};
use super::layout::{
    CONTENT_BOTTOM, DESC_MAX_LINES, DESC_MAX_W, FOOTER_TEXT_Y, TABLE_SIZE, TOP, layout,
};
use super::prepare::{Prepared, TableRow};
use super::programs::{PROGRAMS, Program};
use super::*;
use billrun_core::document::{Buyer, Discount, InvoiceStatus, Line};
use billrun_core::einvoice::PaymentMeans;
use billrun_core::ids::AccountId;
use billrun_core::locale::Language;
use billrun_core::money::{Currency, Money};
use billrun_core::period::Period;
use billrun_core::pricing::UsageKind;
use billrun_core::vat::VatCase;

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

/// A French reverse-charge invoice of `lines` lines and one referral discount, issued on
/// 1 November 2026 for October.
fn invoice(lines: usize) -> Invoice {
    let period = Period::new(2026, 10).unwrap();
    Invoice {
        id: None,
        number: Some("F-2026-000123".into()),
        account_id: AccountId::from("acc-pdf"),
        period,
        period_start: period.start(),
        period_end: period.end(),
        status: InvoiceStatus::Open,
        currency: Currency::Eur,
        language: Language::Fr,
        buyer: Buyer {
            name: "Jürgen Weiß".into(),
            company: Some("Søren & Weiß GmbH".into()),
            address: "Straße des 17. Juni 1\n10623 Berlin".into(),
            country: "DE".into(),
            vat_number: Some("DE123456789".into()),
            vies_consultation: None,
            siren: None,
            electronic_address: None,
        },
        lines: (0..lines)
            .map(|i| Line {
                description: format!("Ligne {i:03} – instance é-{i}"),
                app_id: None,
                kind: UsageKind::Container,
                item: "M".into(),
                quantity_hours: Decimal::new(744, 0),
                unit_price: Decimal::new(200, 4),
                amount: Money::eur(1488),
            })
            .collect(),
        subtotal: Money::eur(14880),
        discount: Money::eur(500),
        vat_case: VatCase::ReverseCharge,
        tax_rate: Decimal::ZERO,
        tax: Money::eur(0),
        total: Money::eur(14380),
        discounts: vec![Discount {
            description: "filleul acme".into(),
            amount: Money::eur(500),
        }],
        balance_brought_forward: Money::eur(0),
        brought_forward: Vec::new(),
        credit_applied: Money::eur(0),
        amount_paid: Money::eur(0),
        carried_forward: Money::eur(0),
        carried_to: None,
        amount_due: Money::eur(14380),
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

/// The fonts `render` draws `inv` with.
fn fonts_for<'a>(inv: &Invoice, seller: &Seller) -> &'a Fonts {
    library().for_texts(Prepared::invoice(inv, seller).all_text(seller))
}

fn library() -> &'static FontLibrary {
    LIBRARY.as_ref().unwrap()
}

fn page_count(pdf: &[u8]) -> usize {
    let needle = b"/Type/Page";
    pdf.windows(needle.len() + 1)
        .filter(|w| &w[..needle.len()] == needle && !w[needle.len()].is_ascii_alphabetic())
        .count()
}

#[test]
fn slimmed_fonts_keep_every_outline_and_drop_hinting() {
    let sample = (' '..='~')
        .chain("éèàçùâêîôûëïüÉÈÀÇ€→—–·«»°Øß".chars())
        .chain("ნש".chars());
    // The fonts as DejaVu publishes them, which `templates/fonts/README.md` slims.
    const ORIGINAL: &[u8] = include_bytes!("../../../../templates/fonts/DejaVuSans.ttf");
    const ORIGINAL_BOLD: &[u8] = include_bytes!("../../../../templates/fonts/DejaVuSans-Bold.ttf");
    for (bytes, slim_bytes) in [(ORIGINAL, DEJAVU_SANS), (ORIGINAL_BOLD, DEJAVU_SANS_BOLD)] {
        let mut warnings = Vec::new();
        let original = ParsedFont::from_bytes(bytes, 0, &mut warnings).unwrap();
        let slim = ParsedFont::from_bytes(slim_bytes, 0, &mut warnings).unwrap();
        // Every character of the original, on the same glyph.
        let mut mapped = 0;
        for cp in 0..0x3_0000u32 {
            let gid = original.lookup_glyph_index(cp);
            assert_eq!(slim.lookup_glyph_index(cp), gid, "U+{cp:04X}");
            mapped += usize::from(gid.is_some_and(|g| g != 0));
        }
        assert!(mapped > 5000, "only {mapped} characters mapped");
        let (mut hinted, mut compared) = (0, 0);
        for c in sample.clone() {
            let gid = original.lookup_glyph_index(c as u32);
            assert_eq!(slim.lookup_glyph_index(c as u32), gid, "{c:?}");
            let Some(gid) = gid else { continue };
            match (
                original.get_or_decode_glyph(gid),
                slim.get_or_decode_glyph(gid),
            ) {
                (Some(a), Some(b)) => {
                    assert_eq!(a.outline, b.outline, "outline of {c:?}");
                    assert_eq!(a.horz_advance, b.horz_advance, "advance of {c:?}");
                    if a.instructions.as_ref().is_some_and(|i| !i.is_empty()) {
                        hinted += 1;
                    }
                    assert!(
                        b.instructions.as_ref().is_none_or(|i| i.is_empty()),
                        "{c:?} kept its hinting"
                    );
                    compared += 1;
                }
                (None, None) => {}
                (a, b) => panic!("{c:?}: glyph {:?} became {:?}", a.is_some(), b.is_some()),
            }
        }
        assert!(compared > 100, "only {compared} glyphs compared");
        assert!(
            hinted > 50,
            "the original had hinting on only {hinted} glyphs"
        );
        let tags: Vec<&[u8]> = (0..usize::from(u16::from_be_bytes([slim_bytes[4], slim_bytes[5]])))
            .map(|i| &slim_bytes[12 + 16 * i..16 + 16 * i])
            .collect();
        for gone in [b"fpgm", b"prep", b"cvt "] {
            assert!(
                !tags.contains(&&gone[..]),
                "{} kept",
                String::from_utf8_lossy(gone)
            );
        }
        assert!(
            slim_bytes.len() < bytes.len() * 4 / 5,
            "{} of {} bytes kept",
            slim_bytes.len(),
            bytes.len()
        );
    }
}

#[test]
fn documents_share_a_font_program_cut_for_their_characters() {
    let drawn = |s: &str| s.chars().collect::<BTreeSet<char>>();
    let id = FontId(REGULAR_ID.into());
    // Two texts within printable ASCII: one program.
    let a = Program::for_chars(Weight::Regular, &id, &drawn("Cobalt SAS 12,50")).unwrap();
    let b = Program::for_chars(Weight::Regular, &id, &drawn("Zinc SARL ~99")).unwrap();
    assert_eq!(a.bytes, b.bytes);
    // A character beyond it: another program, which has it.
    let c = Program::for_chars(Weight::Regular, &id, &drawn("Société → €")).unwrap();
    assert_ne!(a.bytes, c.bytes);
    for ch in ['é', '→', '€', 'A', '~'] {
        assert!(
            c.parsed
                .lookup_glyph_index(ch as u32)
                .is_some_and(|g| g != 0),
            "{ch:?}"
        );
    }
    assert!(
        a.parsed
            .lookup_glyph_index('é' as u32)
            .is_none_or(|g| g == 0)
    );
    assert_eq!(
        c.parsed.font_name.as_deref(),
        Some("BRDJVR+DejaVuSans"),
        "the cut carries the subset tag"
    );
    // A document is the same whether its programs were cut for it or found.
    let first = render(&invoice(12), &seller()).unwrap();
    PROGRAMS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let cut_again = render(&invoice(12), &seller()).unwrap();
    assert_eq!(first, cut_again);
}

#[test]
fn rendering_is_deterministic() {
    let a = render(&invoice(10), &seller()).unwrap();
    let b = render(&invoice(10), &seller()).unwrap();
    assert_eq!(a, b);
    assert!(a.starts_with(b"%PDF-"));
    // No wall-clock date leaks in: the info dates are the issue date.
    let text = String::from_utf8_lossy(&a);
    assert!(
        text.contains("D:20261101000000"),
        "creation date not pinned"
    );
}

#[test]
fn small_invoice_is_small_because_fonts_are_subset() {
    let pdf = render(&invoice(10), &seller()).unwrap();
    assert_eq!(page_count(&pdf), 1);
    assert!(pdf.len() < 60_000, "10-line invoice is {} bytes", pdf.len());
    let text = String::from_utf8_lossy(&pdf);
    assert!(
        text.contains("BRDJVR+DejaVuSans"),
        "regular font not subset"
    );
    assert!(
        text.contains("BRDJVB+DejaVuSans-Bold"),
        "bold font not subset"
    );
}

#[test]
fn two_hundred_lines_span_several_pages() {
    let inv = invoice(200);
    let pdf = render(&inv, &seller()).unwrap();
    let pages = page_count(&pdf);
    assert!(pages >= 3, "only {pages} pages");

    // Every description is drawn exactly where the layout put it.
    let fonts = fonts_for(&inv, &seller());
    let canvases = layout(fonts, &seller(), &Prepared::invoice(&inv, &seller()));
    assert_eq!(canvases.len(), pages);
    let shown: Vec<&str> = canvases
        .iter()
        .flat_map(|c| c.ops.iter())
        .filter_map(|op| match op {
            Op::ShowText { items } => match items.as_slice() {
                [TextItem::Text(t)] => Some(t.as_str()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    for line in &inv.lines {
        assert!(
            shown.contains(&line.description.as_str()),
            "{}",
            line.description
        );
    }
    // The table header and the page number are on every page.
    assert_eq!(shown.iter().filter(|t| **t == "Désignation").count(), pages);
    for n in 1..=pages {
        let label = format!("Page {n} / {pages}");
        assert!(shown.contains(&label.as_str()), "{label}");
    }
}

#[test]
fn output_parses_back_with_an_independent_inflater() {
    // lopdf (flate2) must inflate every stream our deflate wrote — including a
    // multi-block content stream with long matches and long runs.
    let mut inv = invoice(200);
    inv.lines[7].description = "x".repeat(600);
    inv.lines[8].description = "€".repeat(300);
    let pdf = render(&inv, &seller()).unwrap();
    let mut warnings = Vec::new();
    let doc = PdfDocument::parse(
        &pdf,
        &printpdf::PdfParseOptions {
            fail_on_error: true,
        },
        &mut warnings,
    )
    .unwrap();
    assert_eq!(doc.pages.len(), page_count(&pdf));
    let text = doc.extract_text().concat().join(" ");
    for line in inv.lines.iter().skip(9) {
        assert!(text.contains(&line.description), "{}", line.description);
    }
    assert!(text.contains("Page 1 /"));
}

#[test]
fn nothing_is_drawn_over_the_footer() {
    let mut inv = invoice(120);
    inv.lines[3].description = "Description longue ".repeat(60);
    // A paragraph taller than a page: it breaks between lines.
    let mut seller = seller();
    seller.iban = Some("FR76 3000 6000 0112 3456 7890 189 ".repeat(1500));
    let fonts = &library().latin;
    let pages = layout(fonts, &seller, &Prepared::invoice(&inv, &seller));
    assert!(pages.len() >= 5, "{} pages", pages.len());
    for page in &pages {
        for op in &page.ops {
            if let Op::SetTextMatrix {
                matrix: TextMatrix::Translate(_, y),
            } = op
            {
                assert!(
                    y.0 >= CONTENT_BOTTOM || y.0 == FOOTER_TEXT_Y,
                    "text at y={}",
                    y.0
                );
                assert!(y.0 <= TOP, "text at y={}", y.0);
            }
        }
    }
    assert!(render(&inv, &seller).is_ok());
}

#[test]
fn measured_widths_match_printpdf_widths() {
    let lib = library();
    for face in [
        &lib.latin.regular,
        &lib.latin.bold,
        &lib.full.regular,
        &lib.full.bold,
    ] {
        let upm = f32::from(face.parsed.pdf_font_metrics.units_per_em);
        for c in "0123456789,. €$-–…aéèàüßøÉÀÇ()%".chars() {
            let gid = face.parsed.lookup_glyph_index(c as u32).unwrap();
            let decoded = face.parsed.get_or_decode_glyph(gid).unwrap().horz_advance;
            let expected = (f32::from(decoded) * 1000.0 / upm) as u16;
            assert_eq!(face.width_of(c), Some(expected), "{c:?}");
        }
    }
}

#[test]
fn characters_outside_the_latin_cut_switch_to_the_full_font() {
    let lib = library();
    let mut inv = invoice(3);
    assert!(std::ptr::eq(fonts_for(&inv, &seller()), &lib.latin));
    // Georgian is in DejaVu Sans but not in the Latin cut.
    inv.buyer.name = "ნინო ბერიძე".into();
    let fonts = fonts_for(&inv, &seller());
    assert!(std::ptr::eq(fonts, &lib.full));
    let canvases = layout(fonts, &seller(), &Prepared::invoice(&inv, &seller()));
    assert!(canvases[0].ops.iter().any(|op| matches!(op,
        Op::ShowText { items } if matches!(items.as_slice(), [TextItem::Text(t)] if t == "ნინო ბერიძე"))));
    assert!(render(&inv, &seller()).is_ok());
    // A character no font has stays on the Latin cut and is drawn as U+FFFD.
    inv.buyer.name = "Ada \u{10FFFD}".into();
    assert!(std::ptr::eq(fonts_for(&inv, &seller()), &lib.latin));
    assert_eq!(lib.latin.regular.clean("a\u{10FFFD}\tb"), "a\u{FFFD} b");
}

#[test]
fn characters_the_font_lacks_are_drawn_as_one_replacement_per_cluster() {
    for fonts in [&library().latin, &library().full] {
        for face in [&fonts.regular, &fonts.bold] {
            assert_eq!(face.replacement(), REPLACEMENT);
            // A family (three emoji joined), a thumbs-up with a skin tone, two flags
            // (a pair of regional indicators each).
            let drawn = face.clean(
                "Zoé \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} \u{1F44D}\u{1F3FD}! \
                 \u{1F1EB}\u{1F1F7}\u{1F1E9}\u{1F1EA}",
            );
            assert_eq!(drawn, "Zoé \u{FFFD} \u{FFFD}! \u{FFFD}\u{FFFD}");
            assert_eq!(face.clean("a\u{0007}b"), "a\u{FFFD}b");
            assert_eq!(face.clean("Søren"), "Søren");
        }
    }
    // Drawn and measured alike: the width is the replacement's.
    let face = &library().latin.regular;
    assert_eq!(
        face.measure("\u{1F680}\u{FE0F}", 10.0),
        face.measure("\u{FFFD}", 10.0)
    );
}

#[test]
fn rows_and_totals_are_formatted_from_the_typed_invoice() {
    let mut inv = invoice(1);
    inv.lines[0].quantity_hours = Decimal::new(1205, 1);
    inv.lines[0].amount = Money::eur(-123456);
    inv.tax_rate = Decimal::new(550, 2);
    inv.credit_applied = Money::eur(2500);
    let p = Prepared::invoice(&inv, &seller());
    fn cells(r: &TableRow) -> [&str; 4] {
        [&r.description, &r.quantity, &r.unit_price, &r.amount].map(|s| s.as_str())
    }
    // Hours with two places, the unit price as the catalog has it without trailing zeros,
    // a discount as a deduction.
    assert_eq!(
        cells(&p.rows[0]),
        [
            "Ligne 000 – instance é-0",
            "120,50",
            "0,02 €",
            "-1 234,56 €"
        ]
    );
    assert_eq!(
        cells(&p.rows[1]),
        ["Remise parrainage – filleul acme", "", "", "-5,00 €"]
    );
    let totals: Vec<(&str, &str)> = p
        .totals
        .iter()
        .map(|t| (t.label.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(
        totals,
        [
            ("Sous-total HT", "148,80 €"),
            ("Total remises HT", "-5,00 €"),
            ("TVA 5,5 % sur 143,80 €", "0,00 €"),
            ("Total TTC", "143,80 €"),
            ("Crédit prépayé appliqué", "-25,00 €"),
            ("Reste à payer", "143,80 €"),
        ]
    );
    let facts: Vec<(&str, &str)> = p.facts.iter().map(|f| (f.0, f.2.as_str())).collect();
    assert_eq!(
        facts,
        [
            ("N°", "F-2026-000123"),
            ("Date d'émission", "01/11/2026"),
            ("Échéance", "01/12/2026"),
            ("Période", "octobre 2026"),
            ("", "du 01/10/2026 au 31/10/2026")
        ]
    );

    inv.language = Language::En;
    inv.number = None;
    inv.balance_brought_forward = Money::eur(1250);
    inv.amount_paid = Money::eur(-100);
    let p = Prepared::invoice(&inv, &seller());
    assert_eq!(cells(&p.rows[0])[1..], ["120.50", "€0.02", "-€1,234.56"]);
    let labels: Vec<&str> = p.totals.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Subtotal excl. VAT",
            "Total discounts excl. VAT",
            "VAT 5.5% on €143.80",
            "Total incl. VAT",
            "Balance brought forward",
            "Prepaid credit applied",
            "Amount paid",
            "Amount due",
        ]
    );
    assert_eq!(p.totals[4].value, "€12.50");
    // A payment is always shown as a deduction, whatever its sign.
    assert_eq!(p.totals[6].value, "-€1.00");
    assert_eq!(p.number, "");
    let facts: Vec<&str> = p.facts.iter().map(|f| f.2.as_str()).collect();
    assert_eq!(
        facts,
        [
            "",
            "1 November 2026",
            "1 December 2026",
            "October 2026",
            "1 October 2026 – 31 October 2026"
        ]
    );
}

#[test]
fn long_descriptions_are_wrapped_then_truncated() {
    let fonts = &library().latin;
    let long = "Instance de calcul très longue ".repeat(20);
    let lines = wrap(
        &fonts.regular,
        TABLE_SIZE,
        &long,
        DESC_MAX_W,
        DESC_MAX_LINES,
    );
    assert_eq!(lines.len(), DESC_MAX_LINES);
    assert!(lines.last().unwrap().ends_with('…'));
    for l in &lines {
        assert!(
            fonts.regular.measure(l, TABLE_SIZE) <= DESC_MAX_W + 0.01,
            "{l}"
        );
    }
    let word = "x".repeat(300);
    let lines = wrap(&fonts.regular, TABLE_SIZE, &word, DESC_MAX_W, 10);
    assert!(lines.len() > 1);
    for l in &lines {
        assert!(
            fonts.regular.measure(l, TABLE_SIZE) <= DESC_MAX_W + 0.01,
            "{l}"
        );
    }
}

// Factur-X: the container and the XML (the validators' verdict is tests/it/facturx.rs's).

#[test]
fn the_pdf_carries_its_invoice_xml_xmp_and_srgb_intent() {
    let inv = invoice(3);
    let pdf = render(&inv, &seller()).unwrap();
    let doc = lopdf::Document::load_mem(&pdf).unwrap();
    assert_eq!(doc.version, "1.7");
    let catalog = doc.catalog().unwrap();
    let af = catalog.get(b"AF").unwrap().as_array().unwrap();
    let spec = doc.get_dictionary(af[0].as_reference().unwrap()).unwrap();
    assert_eq!(
        spec.get(b"AFRelationship").unwrap().as_name().unwrap(),
        b"Data"
    );
    assert_eq!(spec.get(b"F").unwrap().as_str().unwrap(), b"factur-x.xml");
    let ef = spec.get(b"EF").unwrap().as_dict().unwrap();
    let stream = doc
        .get_object(ef.get(b"F").unwrap().as_reference().unwrap())
        .unwrap()
        .as_stream()
        .unwrap();
    let embedded = stream.decompressed_content().unwrap();
    assert_eq!(
        String::from_utf8(embedded).unwrap(),
        crate::cii::to_xml(&inv, &seller()),
        "the embedded XML is the invoice's"
    );
    let meta = doc
        .get_object(catalog.get(b"Metadata").unwrap().as_reference().unwrap())
        .unwrap()
        .as_stream()
        .unwrap();
    let xmp = String::from_utf8(meta.content.clone()).unwrap();
    for needle in [
        "<pdfaid:part>3</pdfaid:part>",
        "<pdfaid:conformance>B</pdfaid:conformance>",
        "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
        "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>",
        "2026-11-01T00:00:00+00:00",
    ] {
        assert!(xmp.contains(needle), "{needle}");
    }
    let intents = catalog.get(b"OutputIntents").unwrap().as_array().unwrap();
    let intent = intents[0].as_dict().unwrap();
    assert_eq!(intent.get(b"S").unwrap().as_name().unwrap(), b"GTS_PDFA1");
}

#[test]
fn the_xml_names_each_vat_case_by_its_en16931_category() {
    let s = seller();
    let mut inv = invoice(2);
    let xml = crate::cii::to_xml(&inv, &s);
    assert!(xml.contains("<ram:CategoryCode>AE</ram:CategoryCode>"));
    assert!(xml.contains("<ram:ExemptionReasonCode>VATEX-EU-AE</ram:ExemptionReasonCode>"));
    assert!(xml.contains("<ram:ID schemeID=\"VA\">DE123456789</ram:ID>"));
    assert!(xml.contains("<ram:ID schemeID=\"0002\">912345678</ram:ID>"));

    inv.vat_case = VatCase::OutOfScope;
    inv.buyer.country = "US".into();
    inv.buyer.vat_number = None;
    let xml = crate::cii::to_xml(&inv, &s);
    assert!(xml.contains("<ram:CategoryCode>G</ram:CategoryCode>"));
    assert!(xml.contains("<ram:ExemptionReasonCode>VATEX-EU-G</ram:ExemptionReasonCode>"));
    assert!(xml.contains("article 259-1"), "the PDF's mention");
    // The seller's VAT number stays (BR-G-02), which `O` would forbid (BR-O-02).
    assert!(xml.contains("FR32912345678"));

    inv.vat_case = VatCase::Domestic;
    inv.tax_rate = Decimal::new(20, 0);
    let xml = crate::cii::to_xml(&inv, &s);
    assert!(xml.contains("<ram:CategoryCode>S</ram:CategoryCode>"));
    assert!(!xml.contains("ExemptionReason"));
}

#[test]
fn a_balance_brought_forward_is_a_negative_paid_amount_and_in_the_amount_due() {
    let mut inv = invoice(1);
    inv.balance_brought_forward = Money::eur(36);
    inv.brought_forward = vec![billrun_core::document::BroughtForward {
        invoice_number: "F-2026-000100".into(),
        amount: Money::eur(36),
    }];
    let inv = inv.as_issued();
    let xml = crate::cii::to_xml(&inv, &seller());
    assert!(xml.contains("<ram:GrandTotalAmount>143.80</ram:GrandTotalAmount>"));
    assert!(xml.contains("<ram:TotalPrepaidAmount>-0.36</ram:TotalPrepaidAmount>"));
    assert!(xml.contains("<ram:DuePayableAmount>144.16</ram:DuePayableAmount>"));
    assert!(xml.contains("F-2026-000100"));
    assert_eq!(xml, crate::cii::to_xml(&inv, &seller()), "deterministic");
}

/// The cost of the Factur-X part beside the whole rendering, one core:
/// `cargo test --release -p billrun-documents -- --ignored facturx_cost --nocapture`.
#[test]
#[ignore = "a measurement: run it in release to see the rates"]
fn facturx_cost() {
    let (inv, s) = (invoice(12), seller());
    let n = 2000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(render(&inv, &s).unwrap());
    }
    let whole = t.elapsed().as_secs_f64() / n as f64;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let xml = crate::cii::to_xml(&inv, &s);
        std::hint::black_box(super::serialize::zlib(xml.as_bytes()));
    }
    let xml = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "render {:.0}/s ({:.0} µs), of which the XML written and compressed {:.0} µs",
        1.0 / whole,
        whole * 1e6,
        xml * 1e6
    );
}

// Credit notes (issue 22): the same layout and container; the validators' verdict is
// tests/it/facturx.rs's.

mod credit_notes {
    use super::*;
    use crate::fixtures::{
        domestic_full_with_deduction, domestic_partial, export_outside_eu, reverse_charge_gesture,
        seller,
    };

    fn embedded_xml_and_xmp(pdf: &[u8]) -> (String, String, String) {
        let doc = lopdf::Document::load_mem(pdf).unwrap();
        assert_eq!(doc.version, "1.7");
        let catalog = doc.catalog().unwrap();
        let af = catalog.get(b"AF").unwrap().as_array().unwrap();
        let spec = doc.get_dictionary(af[0].as_reference().unwrap()).unwrap();
        assert_eq!(
            spec.get(b"AFRelationship").unwrap().as_name().unwrap(),
            b"Data"
        );
        let desc = String::from_utf8(spec.get(b"Desc").unwrap().as_str().unwrap().to_vec());
        let ef = spec.get(b"EF").unwrap().as_dict().unwrap();
        let stream = doc
            .get_object(ef.get(b"F").unwrap().as_reference().unwrap())
            .unwrap()
            .as_stream()
            .unwrap();
        let xml = String::from_utf8(stream.decompressed_content().unwrap()).unwrap();
        let meta = doc
            .get_object(catalog.get(b"Metadata").unwrap().as_reference().unwrap())
            .unwrap()
            .as_stream()
            .unwrap();
        let xmp = String::from_utf8(meta.content.clone()).unwrap();
        (xml, xmp, desc.unwrap())
    }

    #[test]
    fn a_credit_note_pdf_is_a_factur_x_embedding_its_381_xml_deterministically() {
        for cn in [
            domestic_partial(Language::Fr),
            domestic_full_with_deduction(Language::En),
            reverse_charge_gesture(Language::Fr),
            export_outside_eu(Language::En),
        ] {
            let pdf = render_credit_note(&cn, &seller()).unwrap();
            assert_eq!(
                pdf,
                render_credit_note(&cn, &seller()).unwrap(),
                "deterministic"
            );
            assert_eq!(page_count(&pdf), 1);
            let (xml, xmp, desc) = embedded_xml_and_xmp(&pdf);
            assert_eq!(xml, crate::cii::credit_note_to_xml(&cn, &seller()));
            assert!(xml.contains("<ram:TypeCode>381</ram:TypeCode>"));
            assert_eq!(desc, "Factur-X credit note (CII, EN 16931)");
            let title = match cn.language {
                Language::Fr => "Avoir ",
                Language::En => "Credit note ",
            };
            for needle in [
                "<pdfaid:part>3</pdfaid:part>",
                "<pdfaid:conformance>B</pdfaid:conformance>",
                // Factur-X 1.0: INVOICE for an invoice or a credit note (BT-3 tells which).
                "<fx:DocumentType>INVOICE</fx:DocumentType>",
                "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
                // Dated by its own issue date, never the clock.
                "2026-11-15T00:00:00+00:00",
                &format!("{title}{}", cn.number.as_deref().unwrap()),
            ] {
                assert!(xmp.contains(needle), "{needle}");
            }
            assert!(String::from_utf8_lossy(&pdf).contains("D:20261115000000"));
        }
    }

    #[test]
    fn a_credit_note_names_its_invoice_and_reason_article_242_nonies_a_fr() {
        let cn = domestic_full_with_deduction(Language::Fr);
        let p = Prepared::credit_note(&cn);
        assert_eq!(p.title, "Avoir");
        let facts: Vec<(&str, &str)> = p.facts.iter().map(|f| (f.0, f.2.as_str())).collect();
        assert_eq!(
            facts,
            [
                ("N°", "AV-2026-000001"),
                ("Date d'émission", "15/11/2026"),
                ("Facture", "2026-000001"),
                ("Date de la facture", "01/11/2026"),
                ("Période", "octobre 2026"),
            ]
        );
        let intro: Vec<&str> = p.intro.iter().map(|i| i.1.as_str()).collect();
        assert_eq!(
            intro,
            [
                "Avoir sur la facture 2026-000001 du 1er novembre 2026",
                "Motif : Facture émise par erreur"
            ]
        );
        // Credited amounts positive, the deduction negative; VAT at the invoice's rate.
        let rows: Vec<(&str, &str)> = p
            .rows
            .iter()
            .map(|r| (r.description.as_str(), r.amount.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("web – conteneur M (octobre 2026)", "14,88 €"),
                ("db – addon postgres S (octobre 2026)", "14,88 €"),
                ("Remises de la facture, déjà déduites", "-5,00 €"),
            ]
        );
        assert!(
            p.rows
                .iter()
                .all(|r| r.quantity.is_empty() && r.unit_price.is_empty())
        );
        let totals: Vec<(&str, &str)> = p
            .totals
            .iter()
            .map(|t| (t.label.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(
            totals,
            [
                ("Sous-total HT", "24,76 €"),
                ("TVA 20 % sur 24,76 €", "4,95 €"),
                ("Total de l'avoir TTC", "29,71 €"),
            ]
        );
        // Domestic: no VAT mention; how it is settled, without its status.
        let mentions: Vec<&str> = p.mentions.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(
            mentions,
            [
                "Règlement de l'avoir",
                "Remboursement sur le moyen de paiement qui a réglé la facture : 29,71 €."
            ]
        );
        assert_eq!(p.buyer.company.as_deref(), Some("Martin & Fils SARL"));
    }

    #[test]
    fn a_credit_note_carries_its_invoices_vat_mention_and_every_settlement_en() {
        // Reverse charge: the invoice's mention (article 196 of Directive 2006/112/EC).
        let mut cn = reverse_charge_gesture(Language::En);
        cn.refund.reduce_due = Money::eur(100);
        cn.refund.to_payment_method = Money::eur(100);
        cn.refund.to_credit = Money::eur(200);
        cn.refund.outside = Money::eur(100);
        let p = Prepared::credit_note(&cn);
        assert_eq!(p.title, "Credit note");
        assert_eq!(
            p.intro[0].1,
            "Credit note for invoice 2026-000002 of 1 November 2026"
        );
        assert_eq!(p.intro[1].1, "Reason: Geste commercial après un incident");
        assert_eq!(p.rows[0].description, "Commercial gesture");
        assert_eq!(p.rows[0].amount, "€5.00");
        let mentions: Vec<&str> = p.mentions.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(
            mentions,
            [
                cn.tax_mention().unwrap(),
                "Settlement of the credit note",
                "Deducted from the amount due on invoice 2026-000002: €1.00.",
                "Refund to the payment method that paid the invoice: €1.00.",
                "Returned to the account's prepaid credit: €2.00.",
                "Refund settled separately: €1.00.",
            ]
        );
        assert!(mentions[0].contains("reverse charge"));
        let totals: Vec<&str> = p.totals.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            totals,
            ["Subtotal excl. VAT", "VAT 0% on €5.00", "Total incl. VAT"]
        );

        // Outside the EU: the article 259-1 mention.
        let p = Prepared::credit_note(&export_outside_eu(Language::Fr));
        assert!(
            p.mentions[0].1.contains("article 259-1 du CGI"),
            "{}",
            p.mentions[0].1
        );
    }

    #[test]
    fn a_long_reason_stays_on_the_first_page_cut_to_its_lines() {
        let mut cn = domestic_partial(Language::Fr);
        cn.reason = "très long motif ".repeat(2000);
        let p = Prepared::credit_note(&cn);
        let fonts = &library().latin;
        let pages = layout(fonts, &seller(), &p);
        let drawn_lines = |page: &super::super::canvas::Canvas| {
            page.ops
                .iter()
                .filter(|op| {
                    matches!(op, Op::ShowText { items } if items.iter().any(|i| matches!(i, TextItem::Text(t) if t.contains("long motif"))))
                })
                .count()
        };
        assert_eq!(
            drawn_lines(&pages[0]),
            super::super::layout::INTRO_MAX_LINES
        );
        for page in &pages {
            for op in &page.ops {
                if let Op::SetTextMatrix {
                    matrix: TextMatrix::Translate(_, y),
                } = op
                {
                    assert!(
                        y.0 >= CONTENT_BOTTOM || y.0 == FOOTER_TEXT_Y,
                        "text at y={}",
                        y.0
                    );
                }
            }
        }
        assert!(render_credit_note(&cn, &seller()).is_ok());
    }
}

#[test]
fn the_xml_writes_bt_47_bt_49_bt_34_and_a_sepa_debit_bg_16_with_bt_89_bt_90() {
    use billrun_core::einvoice::ElectronicAddress;
    let mut s = seller();
    s.electronic_address = Some(ElectronicAddress {
        scheme: "0225".into(),
        id: "912345678".into(),
    });
    s.sepa_creditor_id = Some("FR72ZZZ123456".into());
    let mut inv = invoice(1);
    inv.vat_case = VatCase::Domestic;
    inv.buyer.country = "FR".into();
    inv.buyer.vat_number = Some("FR83404833048".into());
    inv.buyer.siren = Some("404833048".into());
    inv.buyer.electronic_address = Some(ElectronicAddress {
        scheme: "0225".into(),
        id: "404833048".into(),
    });
    inv.payment_means = PaymentMeans::SepaDebit;
    inv.sepa_mandate = Some("RUM-0001".into());
    let inv = inv.as_issued();
    let xml = crate::cii::to_xml(&inv, &s);
    let at = |needle: &str| {
        xml.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {xml}"))
    };
    // BT-47 after the buyer's name (BT-44), BT-49 after its address, before BT-48 (the
    // schema's order); BT-34 likewise in the seller.
    let buyer = at("<ram:BuyerTradeParty>");
    assert!(at("<ram:ID schemeID=\"0002\">404833048</ram:ID>") > buyer);
    assert!(
        at("<ram:URIID schemeID=\"0225\">404833048</ram:URIID>") > buyer
            && at("<ram:URIID schemeID=\"0225\">404833048</ram:URIID>")
                < at("<ram:ID schemeID=\"VA\">FR83404833048</ram:ID>")
    );
    assert!(at("<ram:URIID schemeID=\"0225\">912345678</ram:URIID>") < buyer);
    // UNTDID 4461 code 59, the mandate (BT-89) and the creditor id (BT-90).
    assert!(xml.contains("<ram:TypeCode>59</ram:TypeCode>"));
    let words = PaymentMeans::SepaDebit
        .information(inv.language, Some("RUM-0001"))
        .unwrap();
    assert!(words.contains("RUM-0001"), "{words}");
    assert!(xml.contains(&format!("<ram:Information>{words}</ram:Information>")));
    assert!(
        at("<ram:CreditorReferenceID>FR72ZZZ123456</ram:CreditorReferenceID>")
            < at("<ram:InvoiceCurrencyCode>")
    );
    assert!(
        at("<ram:DirectDebitMandateID>RUM-0001</ram:DirectDebitMandateID>")
            > at("<ram:DueDateDateTime>")
    );

    // A card invoice names neither; a consumer's SIREN is not written (BT-47 is a business's).
    let mut card = inv.clone();
    card.payment_means = PaymentMeans::Card;
    card.buyer.company = None;
    card.buyer.vat_number = None;
    let xml = crate::cii::to_xml(&card, &s);
    assert!(xml.contains("<ram:TypeCode>48</ram:TypeCode>"));
    assert!(!xml.contains("CreditorReferenceID") && !xml.contains("DirectDebitMandateID"));
    assert!(!xml.contains("404833048</ram:ID>"));
}
