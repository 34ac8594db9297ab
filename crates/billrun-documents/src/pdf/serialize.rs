//! Writing the document: printpdf builds it, then the bytes are made reproducible (fixed
//! dates and trailer `/ID`, fixed font resource names) and every stream compressed.

use std::collections::BTreeSet;

use chrono::Datelike;
use printpdf::{
    Mm, Op, PdfDocument, PdfFont, PdfFontHandle, PdfPage, PdfParseErrorSeverity, PdfSaveOptions,
    TextItem,
};
use sha2::{Digest, Sha256};

use super::PdfError;
use super::canvas::Canvas;
use super::fonts::{Fonts, Weight};
use super::prepare::Prepared;
use super::programs::Program;
use billrun_core::document::Seller;

/// The document's bytes: its pages, its fonts (cut to the characters drawn), fixed dates
/// and a fixed trailer `/ID`, every stream compressed; `xml` is the document's CII XML,
/// embedded (Factur-X).
pub(super) fn serialize(
    fonts: &Fonts,
    seller: &Seller,
    prepared: &Prepared,
    pages: Vec<Canvas>,
    xml: &str,
) -> Result<Vec<u8>, PdfError> {
    let number = &prepared.number;
    let issued = prepared.issued;
    let title = format!("{} {number}", prepared.title);
    let mut doc = PdfDocument::new(&title);

    // Fixed dates: the issue date at 00:00 UTC (never the wall clock).
    let date = printpdf::date::DateTime {
        date: printpdf::date::Date {
            year: issued.year(),
            month: issued.month() as u8,
            day: issued.day() as u8,
        },
        time: printpdf::date::Time {
            hour: 0,
            minute: 0,
            second: 0,
            millisecond: 0,
        },
        offset: printpdf::date::Offset {
            hours: 0,
            minutes: 0,
            seconds: 0,
            milliseconds: 0,
        },
    };
    let info = &mut doc.metadata.info;
    info.creation_date = date;
    info.modification_date = date;
    info.metadata_date = date;
    info.author = seller.name.clone();
    info.creator = "billrun".to_string();
    info.producer = "billrun (printpdf 0.12)".to_string();
    info.subject = format!("{title} – {}", prepared.buyer.name);
    info.identifier = number.clone();

    let pages: Vec<Vec<Op>> = pages.into_iter().map(Canvas::into_ops).collect();
    // Fixed font ids instead of `add_font` (which draws random ids). Each weight is
    // embedded as a program already cut to what the document draws, rounded up (see
    // `Program`), so printpdf embeds it as is (`subset_fonts: false`).
    let used = drawn_chars(&pages, fonts);
    let mut programs: Vec<std::sync::Arc<Program>> = Vec::with_capacity(2);
    for (weight, face) in [
        (Weight::Regular, &fonts.regular),
        (Weight::Bold, &fonts.bold),
    ] {
        let chars = &used[weight as usize];
        if chars.is_empty() {
            continue;
        }
        let program = Program::for_chars(weight, &face.id, chars)?;
        doc.resources
            .fonts
            .map
            .insert(face.id.clone(), PdfFont::new(program.parsed.clone()));
        programs.push(program);
    }
    doc.pages = pages
        .into_iter()
        .map(|ops| PdfPage::new(Mm(210.0), Mm(297.0), ops))
        .collect();

    let opts = PdfSaveOptions {
        optimize: true,
        subset_fonts: false,
        secure: true,
        image_optimization: None,
    };
    let mut warnings = Vec::new();
    let mut lo = doc.to_lopdf_document(&opts, &mut warnings);
    if let Some(w) = warnings
        .iter()
        .find(|w| w.severity == PdfParseErrorSeverity::Error)
    {
        return Err(PdfError::Serialize(w.msg.clone()));
    }

    // Deterministic trailer /ID: [hash(number) hash(number, content)] in hex.
    let ids = [
        hex16(&Sha256::digest(format!(
            "billrun-{}:{number}",
            prepared.id_kind
        ))),
        hex16(&Sha256::digest(format!("billrun-instance:{number}"))),
    ];
    let id_array = lo
        .trailer
        .get_mut(b"ID")
        .and_then(|o| o.as_array_mut())
        .map_err(|e| PdfError::Serialize(format!("trailer /ID: {e}")))?;
    for (slot, id) in id_array.iter_mut().zip(ids) {
        *slot
            .as_str_mut()
            .map_err(|e| PdfError::Serialize(format!("trailer /ID: {e}")))? = id.into_bytes();
    }

    // Factur-X: the document's CII XML embedded, XMP declaring PDF/A-3b, the sRGB intent.
    let info = &doc.metadata.info;
    super::facturx::make_facturx(
        &mut lo,
        xml.as_bytes(),
        &super::facturx::Meta {
            title: &title,
            author: &info.author,
            subject: &info.subject,
            producer: &info.producer,
            creator: &info.creator,
            xml_description: prepared.xml_description,
            issued,
        },
    )?;

    // Compress every stream at zlib's fast level (see `zlib`); a font program was
    // compressed once, when it was cut.
    for object in lo.objects.values_mut() {
        if let Ok(stream) = object.as_stream_mut()
            && stream.allows_compression
            && stream.dict.get(b"Filter").is_err()
        {
            if let Some(p) = programs.iter().find(|p| stream.content == p.bytes) {
                stream.dict.set("Filter", "FlateDecode");
                stream.set_content(p.compressed.clone());
                continue;
            }
            let compressed = zlib(&stream.content);
            if compressed.len() < stream.content.len() {
                stream.dict.set("Filter", "FlateDecode");
                stream.set_content(compressed);
            }
        }
    }
    let mut out = Vec::with_capacity(24 * 1024);
    lo.save_to(&mut out)
        .map_err(|e| PdfError::Serialize(e.to_string()))?;
    Ok(out)
}

/// The characters drawn in each weight (indexed by `Weight as usize`), read off the
/// pages' text operations.
fn drawn_chars(pages: &[Vec<Op>], fonts: &Fonts) -> [BTreeSet<char>; 2] {
    let mut used: [BTreeSet<char>; 2] = Default::default();
    let mut current: Option<usize> = None;
    for op in pages.iter().flatten() {
        match op {
            Op::SetFont {
                font: PdfFontHandle::External(id),
                ..
            } => {
                current = [Weight::Regular, Weight::Bold]
                    .into_iter()
                    .find(|w| fonts.face(*w).id == *id)
                    .map(|w| w as usize);
            }
            Op::ShowText { items } => {
                if let Some(w) = current {
                    for item in items {
                        if let TextItem::Text(t) = item {
                            used[w].extend(t.chars());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    used
}

fn hex16(digest: &[u8]) -> String {
    digest[..16].iter().map(|b| format!("{b:02X}")).collect()
}

/// zlib at its fast level: lopdf's own `compress()` uses the slowest level, which alone
/// cost more than the rest of the rendering. Deterministic for a given input.
pub(super) fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::fast(),
    );
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
