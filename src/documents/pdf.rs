//! PDF invoice renderer (printpdf 0.12, DejaVu Sans embedded and subset).
//!
//! A pure function module: no I/O, no clock. [`render`] turns a fully computed
//! [`PdfInvoice`] (amounts are already-rounded decimal strings) into the bytes of
//! an A4 invoice carrying the mandatory mentions of a French B2B invoice, in
//! French or English.
//!
//! Determinism: the same input always gives byte-identical output. printpdf draws
//! its font resource names and the trailer `/ID` from a process-global counter,
//! so this module never calls `PdfDocument::add_font` (fonts are registered under
//! fixed ids) and overwrites the trailer `/ID` with a hash of the invoice number.
//! The info-dictionary dates are the issue date at 00:00 UTC.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use printpdf::{
    Color, FontId, Line, LinePoint, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFont,
    PdfFontHandle, PdfPage, PdfParseErrorSeverity, PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
    TextMatrix,
};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// The issuer of the invoice (the PaaS operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seller {
    pub name: String,
    /// e.g. "SAS au capital de 10 000 €".
    pub legal_form: String,
    pub address: Vec<String>,
    /// The trade and companies register entry, e.g. "RCS Strasbourg 812 345 674".
    pub rcs: String,
    pub siren: String,
    pub siret: String,
    pub vat_number: String,
    pub email: String,
    pub website: String,
    pub iban: Option<String>,
}

/// One billed line. Decimal strings use a `.` separator, e.g. "744.00", "0.0200".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfLine {
    pub description: String,
    pub quantity_hours: String,
    pub unit_price: String,
    pub amount: String,
}

/// A referral discount line. `amount` is the discount (its sign is ignored: it is
/// always shown as a deduction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfDiscount {
    pub description: String,
    pub amount: String,
}

/// One VAT rate: `rate` in percent ("20", "5.5"), its taxable base and the tax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatRow {
    pub rate: String,
    pub base: String,
    pub amount: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdfLanguage {
    Fr,
    En,
}

/// Everything printed on an invoice. Amounts are decimal strings ("14.88"),
/// already computed and rounded by the caller; the renderer only formats them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfInvoice {
    pub language: PdfLanguage,
    pub number: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    /// e.g. "octobre 2026".
    pub period_label: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub buyer_name: String,
    pub buyer_company: Option<String>,
    /// May contain several lines separated by `\n`.
    pub buyer_address: String,
    pub buyer_country: String,
    pub buyer_vat_number: Option<String>,
    /// The VIES consultation number the reverse charge rests on, printed under the buyer's VAT
    /// number.
    pub buyer_vies_consultation: Option<String>,
    pub lines: Vec<PdfLine>,
    pub discounts: Vec<PdfDiscount>,
    pub subtotal: String,
    pub discount_total: String,
    pub vat_rows: Vec<VatRow>,
    pub total: String,
    pub balance_brought_forward: Option<String>,
    pub credit_applied: String,
    pub amount_paid: String,
    pub amount_due: String,
    /// e.g. "€".
    pub currency_symbol: String,
    /// Reverse-charge or out-of-scope mention, already worded.
    pub tax_mention: Option<String>,
    /// How and when the invoice is paid, worded by the caller (`core::terms`).
    pub payment_terms: String,
    /// The late-payment penalties and recovery indemnity sentence (article L441-10 of the Code
    /// de commerce), worded by the caller; `None` on a consumer's invoice.
    pub late_payment: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("embedded font could not be loaded: {0}")]
    Font(String),
    #[error("field `{field}` is not a decimal number: {value:?}")]
    InvalidDecimal { field: String, value: String },
    #[error("PDF serialization failed: {0}")]
    Serialize(String),
}

/// Renders the invoice as a PDF document (A4 portrait, one or more pages).
pub fn render(inv: &PdfInvoice, seller: &Seller) -> Result<Vec<u8>, PdfError> {
    let library = LIBRARY.as_ref().map_err(|e| PdfError::Font(e.clone()))?;
    let fonts = library.for_invoice(inv, seller);
    let prepared = Prepared::new(inv)?;
    let pages = layout(fonts, inv, seller, &prepared);
    serialize(fonts, inv, seller, pages)
}

// ---------------------------------------------------------------------------
// Fonts
// ---------------------------------------------------------------------------

const DEJAVU_SANS: &[u8] = include_bytes!("../../templates/fonts/DejaVuSans.ttf");
const DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../../templates/fonts/DejaVuSans-Bold.ttf");

/// Fixed resource names: the first six letters double as the subset tag
/// (`BRDJVR+DejaVuSans`), so they are six upper-case letters.
const REGULAR_ID: &str = "BRDJVR";
const BOLD_ID: &str = "BRDJVB";

/// Characters below this code point get their advance precomputed.
const WIDTH_TABLE_LEN: usize = 0x2200;

struct Face {
    id: FontId,
    parsed: ParsedFont,
    /// Advance in 1/1000 em (as printpdf writes it into `/W`), `None` = no glyph.
    widths: Vec<Option<u16>>,
}

impl Face {
    fn load(bytes: &[u8], id: &str) -> Result<Self, String> {
        let slim = slim_font(bytes).map_err(|e| format!("cannot slim {id}: {e}"))?;
        Self::parse(&slim, id)
    }

    fn parse(bytes: &[u8], id: &str) -> Result<Self, String> {
        let mut warnings = Vec::new();
        let parsed = ParsedFont::from_bytes(bytes, 0, &mut warnings)
            .ok_or_else(|| format!("cannot parse {id}: {warnings:?}"))?;
        let mut face = Face {
            id: FontId(id.to_string()),
            parsed,
            widths: Vec::new(),
        };
        face.widths = (0..WIDTH_TABLE_LEN as u32)
            .map(|cp| char::from_u32(cp).and_then(|c| face.compute_width(c)))
            .collect();
        Ok(face)
    }

    /// This face cut down to the characters of `LATIN_REPERTOIRE`.
    fn latin_subset(&self) -> Result<Self, String> {
        let latin = LATIN_REPERTOIRE
            .iter()
            .flat_map(|r| r.clone())
            .filter_map(char::from_u32);
        Self::parse(&self.cut(latin)?, &self.id.0)
    }

    /// The font program of this face cut down to `chars` (those it has a glyph for).
    fn cut(&self, chars: impl IntoIterator<Item = char>) -> Result<Vec<u8>, String> {
        let glyphs: std::collections::BTreeMap<u16, String> = chars
            .into_iter()
            .filter_map(|c| {
                let gid = self.parsed.lookup_glyph_index(c as u32)?;
                (gid != 0).then(|| (gid, c.to_string()))
            })
            .collect();
        Ok(printpdf::font::subset_font(&self.parsed, &glyphs)?.bytes)
    }

    /// Same arithmetic as printpdf's `/W` array: `(advance * 1000 / upm) as i64`.
    fn compute_width(&self, c: char) -> Option<u16> {
        let gid = self.parsed.lookup_glyph_index(c as u32)?;
        if gid == 0 {
            return None;
        }
        let upm = f32::from(self.parsed.pdf_font_metrics.units_per_em);
        let adv = f32::from(self.parsed.get_horizontal_advance(gid));
        Some((adv * 1000.0 / upm) as u16)
    }

    fn width_of(&self, c: char) -> Option<u16> {
        match self.widths.get(c as usize) {
            Some(w) => *w,
            None => self.compute_width(c),
        }
    }

    /// The character actually drawn for `c`: whitespace becomes a space, and
    /// characters the font cannot draw (or control characters) become U+FFFD, the
    /// replacement character ('?' if the face lacks it).
    fn drawn(&self, c: char) -> char {
        if c.is_whitespace() {
            ' '
        } else if c.is_control() || self.width_of(c).is_none() {
            self.replacement()
        } else {
            c
        }
    }

    fn replacement(&self) -> char {
        if self.width_of(REPLACEMENT).is_some() {
            REPLACEMENT
        } else {
            '?'
        }
    }

    /// `s` as drawn by this face. A character it lacks (an emoji in a name, say) is drawn
    /// as one replacement character with whatever extends it (a joiner and the character
    /// joined, variation selectors, skin tones, tags), so "👨‍👩‍👧" reads as one "�", not
    /// three; an extender the face lacks after a drawn character is left out. Only the
    /// drawing changes: the stored invoice keeps the exact text.
    fn clean<'a>(&self, s: &'a str) -> Cow<'a, str> {
        if s.chars().all(|c| self.drawn(c) == c) {
            return Cow::Borrowed(s);
        }
        let mut out = String::with_capacity(s.len());
        let mut replaced = false;
        // A replaced regional indicator waiting for the second of its flag's pair.
        let mut flag_open = false;
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            let regional = ('\u{1F1E6}'..='\u{1F1FF}').contains(&c);
            if regional && flag_open && self.drawn(c) != c {
                flag_open = false;
                continue;
            }
            flag_open = false;
            if is_cluster_extender(c) {
                if replaced {
                    if c == ZWJ {
                        chars.next();
                    }
                    continue;
                }
                if self.drawn(c) != c {
                    continue;
                }
                out.push(c);
                continue;
            }
            let d = self.drawn(c);
            replaced = d != c && !c.is_whitespace();
            flag_open = regional && replaced;
            out.push(d);
        }
        Cow::Owned(out)
    }

    /// Width in points of `s` as drawn at `size`.
    fn measure(&self, s: &str, size: f32) -> f32 {
        let units: u32 = self
            .clean(s)
            .chars()
            .map(|c| u32::from(self.width_of(c).unwrap_or(0)))
            .sum();
        units as f32 * size / 1000.0
    }
}

/// Drawn for a character the font lacks.
const REPLACEMENT: char = '\u{FFFD}';
/// The zero-width joiner of emoji sequences.
const ZWJ: char = '\u{200D}';

/// Characters that only modify the one before them (or, for the joiner, join the next one
/// to it): they belong to the replaced character's cluster.
fn is_cluster_extender(c: char) -> bool {
    matches!(c,
        '\u{200D}'                     // zero-width joiner
        | '\u{20E3}'                   // combining enclosing keycap
        | '\u{FE00}'..='\u{FE0F}'      // variation selectors
        | '\u{1F3FB}'..='\u{1F3FF}'    // emoji skin-tone modifiers
        | '\u{E0020}'..='\u{E007F}'    // tags (flag subdivisions)
        | '\u{E0100}'..='\u{E01EF}'    // variation selectors supplement
    )
}

/// Tables kept verbatim: everything a PDF TrueType font program and printpdf's
/// measuring need. Dropped: OpenType layout (GPOS/GSUB/GDEF/kern: text is not
/// shaped), MATH and FFTM, and the hinting programs (`fpgm`, `prep`, `cvt `; see
/// `strip_hinting`). `glyf` and `loca` are rewritten without hinting.
const KEPT_TABLES: [&[u8; 4]; 9] = [
    b"OS/2", b"cmap", b"gasp", b"glyf", b"head", b"hhea", b"hmtx", b"loca", b"maxp",
];

/// Name records kept (Windows platform only): copyright notice (0), family,
/// style, unique id, full name, version, PostScript name (1-6) and the licence
/// URL (14) — the same set as fontTools' subsetter default plus the licence link.
/// The full licence text ships in `templates/fonts/LICENSE-DejaVu.txt`.
const KEPT_NAME_IDS: [u16; 8] = [0, 1, 2, 3, 4, 5, 6, 14];

/// Rewrites a TrueType font without the tables a PDF never uses, so that each
/// per-document subset (and the deflate pass over it) stays small: DejaVu's
/// `name` table alone carries 15 KB of licence text, glyph names in `post` 62 KB.
/// Glyph outlines, metrics and the cmap are untouched, so every character the
/// font covers still renders.
fn slim_font(font: &[u8]) -> Result<Vec<u8>, String> {
    let u16_at = |d: &[u8], o: usize| -> Result<u16, String> {
        d.get(o..o + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated font".to_string())
    };
    let u32_at = |d: &[u8], o: usize| -> Result<u32, String> {
        d.get(o..o + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "truncated font".to_string())
    };
    if u32_at(font, 0)? != 0x0001_0000 {
        return Err("not a TrueType font".into());
    }
    let num_tables = usize::from(u16_at(font, 4)?);
    let mut tables: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    for i in 0..num_tables {
        let rec = 12 + 16 * i;
        let tag: [u8; 4] = font
            .get(rec..rec + 4)
            .and_then(|t| t.try_into().ok())
            .ok_or("truncated table directory")?;
        let offset = u32_at(font, rec + 8)? as usize;
        let length = u32_at(font, rec + 12)? as usize;
        let data = font
            .get(offset..offset + length)
            .ok_or("table out of bounds")?;
        if KEPT_TABLES.contains(&&tag) {
            tables.push((tag, data.to_vec()));
        } else if &tag == b"post" {
            // Version 3: the 32-byte header without glyph names.
            let mut post = data.get(..32).ok_or("short post table")?.to_vec();
            post[..4].copy_from_slice(&0x0003_0000u32.to_be_bytes());
            tables.push((tag, post));
        } else if &tag == b"name" {
            let count = usize::from(u16_at(data, 2)?);
            let storage = usize::from(u16_at(data, 4)?);
            let mut records = Vec::new();
            let mut strings = Vec::new();
            for r in 0..count {
                let o = 6 + 12 * r;
                let (platform, name_id) = (u16_at(data, o)?, u16_at(data, o + 6)?);
                if platform != 3 || !KEPT_NAME_IDS.contains(&name_id) {
                    continue;
                }
                let len = usize::from(u16_at(data, o + 8)?);
                let start = storage + usize::from(u16_at(data, o + 10)?);
                let text = data
                    .get(start..start + len)
                    .ok_or("name string out of bounds")?;
                records.extend_from_slice(&data[o..o + 8]);
                records.extend_from_slice(&(len as u16).to_be_bytes());
                records.extend_from_slice(&(strings.len() as u16).to_be_bytes());
                strings.extend_from_slice(text);
            }
            let n = records.len() / 12;
            let mut name = Vec::with_capacity(6 + records.len() + strings.len());
            name.extend_from_slice(&0u16.to_be_bytes());
            name.extend_from_slice(&(n as u16).to_be_bytes());
            name.extend_from_slice(&((6 + 12 * n) as u16).to_be_bytes());
            name.extend_from_slice(&records);
            name.extend_from_slice(&strings);
            tables.push((tag, name));
        }
    }
    for required in [
        b"head", b"hhea", b"hmtx", b"loca", b"glyf", b"maxp", b"cmap", b"post",
    ] {
        if !tables.iter().any(|(t, _)| t == required) {
            return Err(format!(
                "missing table {}",
                String::from_utf8_lossy(required)
            ));
        }
    }
    strip_hinting(&mut tables)?;
    tables.sort_by_key(|t| t.0);

    let checksum = |data: &[u8]| {
        data.chunks(4).fold(0u32, |sum, chunk| {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            sum.wrapping_add(u32::from_be_bytes(word))
        })
    };
    let n = tables.len() as u16;
    let entry_selector = 15 - n.leading_zeros() as u16;
    let search_range = (1u16 << entry_selector) * 16;
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    for v in [n, search_range, entry_selector, n * 16 - search_range] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    let mut head_offset = 0;
    for (tag, data) in &mut tables {
        if tag == b"head" {
            data.get_mut(8..12).ok_or("short head table")?.fill(0);
            head_offset = offset;
        }
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        offset += data.len().next_multiple_of(4);
    }
    for (_, data) in &tables {
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
    out[head_offset + 8..head_offset + 12].copy_from_slice(&adjustment.to_be_bytes());
    Ok(out)
}

/// Removes the TrueType hinting instructions from every glyph (`glyf`, with `loca`
/// rewritten in its long form to match). Hinting is grid-fitting bytecode for screens at
/// small pixel sizes; PDF viewers render outlines without it, and it was half of every
/// glyph's bytes, so half of each embedded font program. The outlines themselves (points,
/// flags, contours, components) are copied untouched.
fn strip_hinting(tables: &mut [([u8; 4], Vec<u8>)]) -> Result<(), String> {
    let table = |tables: &[([u8; 4], Vec<u8>)], tag: &[u8; 4]| {
        tables
            .iter()
            .position(|(t, _)| t == tag)
            .ok_or_else(|| format!("missing table {}", String::from_utf8_lossy(tag)))
    };
    let (head, maxp, loca, glyf) = (
        table(tables, b"head")?,
        table(tables, b"maxp")?,
        table(tables, b"loca")?,
        table(tables, b"glyf")?,
    );
    let u16_at = |d: &[u8], o: usize| -> Result<u16, String> {
        d.get(o..o + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated glyph data".to_string())
    };
    let long = u16_at(&tables[head].1, 50)? == 1;
    let glyphs = usize::from(u16_at(&tables[maxp].1, 4)?);
    let offsets: Vec<usize> = (0..=glyphs)
        .map(|i| {
            let l = &tables[loca].1;
            if long {
                l.get(4 * i..4 * i + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .ok_or_else(|| "truncated loca".to_string())
            } else {
                u16_at(l, 2 * i).map(|o| 2 * usize::from(o))
            }
        })
        .collect::<Result<_, String>>()?;
    let old = &tables[glyf].1;
    let mut new_glyf = Vec::with_capacity(old.len());
    let mut new_loca = Vec::with_capacity(4 * (glyphs + 1));
    for pair in offsets.windows(2) {
        new_loca.extend_from_slice(&(new_glyf.len() as u32).to_be_bytes());
        let g = old.get(pair[0]..pair[1]).ok_or("glyph out of bounds")?;
        if g.is_empty() {
            continue;
        }
        let contours = u16_at(g, 0)? as i16;
        if contours >= 0 {
            // Simple: header, end points, instruction length + instructions, then the
            // flags and coordinates.
            let at = 10 + 2 * contours as usize;
            let skip = usize::from(u16_at(g, at)?);
            let rest = g.get(at + 2 + skip..).ok_or("truncated simple glyph")?;
            new_glyf.extend_from_slice(&g[..at]);
            new_glyf.extend_from_slice(&0u16.to_be_bytes());
            new_glyf.extend_from_slice(rest);
        } else {
            // Composite: its components as they are, without WE_HAVE_INSTRUCTIONS and
            // the instructions after the last one.
            const ARGS_ARE_WORDS: u16 = 0x0001;
            const SCALE: u16 = 0x0008;
            const MORE: u16 = 0x0020;
            const XY_SCALE: u16 = 0x0040;
            const TWO_BY_TWO: u16 = 0x0080;
            const INSTRUCTIONS: u16 = 0x0100;
            new_glyf.extend_from_slice(g.get(..10).ok_or("truncated composite glyph")?);
            let mut at = 10;
            loop {
                let flags = u16_at(g, at)?;
                let len = 4
                    + if flags & ARGS_ARE_WORDS != 0 { 4 } else { 2 }
                    + if flags & SCALE != 0 {
                        2
                    } else if flags & XY_SCALE != 0 {
                        4
                    } else if flags & TWO_BY_TWO != 0 {
                        8
                    } else {
                        0
                    };
                let component = g.get(at..at + len).ok_or("truncated component")?;
                let flag_at = new_glyf.len();
                new_glyf.extend_from_slice(component);
                new_glyf[flag_at..flag_at + 2]
                    .copy_from_slice(&(flags & !INSTRUCTIONS).to_be_bytes());
                at += len;
                if flags & MORE == 0 {
                    break;
                }
            }
        }
        new_glyf.resize(new_glyf.len().next_multiple_of(4), 0);
    }
    new_loca.extend_from_slice(&(new_glyf.len() as u32).to_be_bytes());
    tables[glyf].1 = new_glyf;
    tables[loca].1 = new_loca;
    // indexToLocFormat: long offsets.
    tables[head]
        .1
        .get_mut(50..52)
        .ok_or("short head table")?
        .copy_from_slice(&1u16.to_be_bytes());
    Ok(())
}

struct Fonts {
    regular: Face,
    bold: Face,
}

impl Fonts {
    fn face(&self, weight: Weight) -> &Face {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }
}

/// The character ranges of the everyday font set: Latin (with Extended-A/B and
/// Additional), Greek, Cyrillic, combining accents, punctuation, currency,
/// letterlike symbols, arrows and maths operators, and U+FFFD (drawn for a character
/// the font lacks). About a quarter of DejaVu.
const LATIN_REPERTOIRE: [std::ops::RangeInclusive<u32>; 13] = [
    0x20..=0x7E,
    0xA0..=0x24F,
    0x2B0..=0x36F,
    0x370..=0x3FF,
    0x400..=0x52F,
    0x1E00..=0x1FFF,
    0x2000..=0x206F,
    0x20A0..=0x20CF,
    0x2100..=0x215F,
    0x2190..=0x21FF,
    0x2200..=0x22FF,
    0xFB00..=0xFB06,
    0xFFFD..=0xFFFD,
];

/// Both cuts of DejaVu Sans, parsed once per process (`LazyLock`): parsing costs
/// far more than laying out an invoice, and printpdf shares the parsed tables
/// between documents (`ParsedFont` clones are `Arc` bumps).
///
/// Per-document subsetting walks the whole source font (its cmap and glyph
/// table), so invoices whose text fits `LATIN_REPERTOIRE` — nearly all — are
/// subset from a pre-cut font a quarter of the size; any other character (say,
/// Georgian or Hebrew in a customer name) switches that invoice to the full font.
struct FontLibrary {
    latin: Fonts,
    full: Fonts,
}

impl FontLibrary {
    fn for_invoice(&self, inv: &PdfInvoice, seller: &Seller) -> &Fonts {
        let needs_full = |s: &str| {
            s.chars().any(|c| {
                let in_latin = self.latin.regular.width_of(c).is_some()
                    && self.latin.bold.width_of(c).is_some();
                !in_latin
                    && !c.is_whitespace()
                    && (self.full.regular.width_of(c).is_some()
                        || self.full.bold.width_of(c).is_some())
            })
        };
        if all_text(inv, seller).any(needs_full) {
            &self.full
        } else {
            &self.latin
        }
    }
}

/// Every caller-supplied string that can end up on the page.
fn all_text<'a>(inv: &'a PdfInvoice, seller: &'a Seller) -> impl Iterator<Item = &'a str> {
    let fixed = [
        inv.number.as_str(),
        &inv.period_label,
        &inv.buyer_name,
        &inv.buyer_address,
        &inv.buyer_country,
        &inv.currency_symbol,
        &inv.payment_terms,
        &seller.name,
        &seller.legal_form,
        &seller.rcs,
        &seller.siren,
        &seller.siret,
        &seller.vat_number,
        &seller.email,
        &seller.website,
    ];
    let optional = [
        &inv.buyer_company,
        &inv.buyer_vat_number,
        &inv.tax_mention,
        &inv.late_payment,
        &inv.balance_brought_forward,
        &seller.iban,
    ];
    fixed
        .into_iter()
        .chain(optional.into_iter().filter_map(|o| o.as_deref()))
        .chain(seller.address.iter().map(String::as_str))
        .chain(inv.lines.iter().map(|l| l.description.as_str()))
        .chain(inv.discounts.iter().map(|d| d.description.as_str()))
}

static LIBRARY: LazyLock<Result<FontLibrary, String>> = LazyLock::new(|| {
    let full = Fonts {
        regular: Face::load(DEJAVU_SANS, REGULAR_ID)?,
        bold: Face::load(DEJAVU_SANS_BOLD, BOLD_ID)?,
    };
    let latin = Fonts {
        regular: full.regular.latin_subset()?,
        bold: full.bold.latin_subset()?,
    };
    Ok(FontLibrary { latin, full })
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Weight {
    Regular,
    Bold,
}

// ---------------------------------------------------------------------------
// Labels and formatting
// ---------------------------------------------------------------------------

struct Labels {
    invoice: &'static str,
    number: &'static str,
    issue_date: &'static str,
    due_date: &'static str,
    period: &'static str,
    continued: &'static str,
    billed_to: &'static str,
    siren: &'static str,
    siret: &'static str,
    vat_number: &'static str,
    /// Before the VIES consultation number of a reverse-charge invoice.
    vies_checked: &'static str,
    col_description: &'static [&'static str],
    col_quantity: &'static [&'static str],
    col_unit_price: &'static [&'static str],
    col_amount: &'static [&'static str],
    referral_discount: &'static str,
    subtotal: &'static str,
    discount_total: &'static str,
    total: &'static str,
    balance_brought_forward: &'static str,
    credit_applied: &'static str,
    amount_paid: &'static str,
    amount_due: &'static str,
    payment_heading: &'static str,
    no_early_discount: &'static str,
    bank_transfer: &'static str,
    page: &'static str,
}

const FR: Labels = Labels {
    invoice: "Facture",
    number: "N°",
    issue_date: "Date d'émission",
    due_date: "Échéance",
    period: "Période",
    continued: "suite",
    billed_to: "Facturé à",
    siren: "SIREN",
    siret: "SIRET",
    vat_number: "N° TVA intracommunautaire",
    vies_checked: "TVA intracommunautaire vérifiée (VIES)",
    col_description: &["Désignation"],
    col_quantity: &["Quantité (h)"],
    col_unit_price: &["Prix unitaire", "HT"],
    col_amount: &["Montant", "HT"],
    referral_discount: "Remise parrainage",
    subtotal: "Sous-total HT",
    discount_total: "Total remises HT",
    total: "Total TTC",
    balance_brought_forward: "Report de solde",
    credit_applied: "Crédit prépayé appliqué",
    amount_paid: "Montant payé",
    amount_due: "Reste à payer",
    payment_heading: "Conditions de paiement",
    no_early_discount: "Pas d'escompte pour paiement anticipé.",
    bank_transfer: "Règlement par virement, IBAN :",
    page: "Page",
};

const EN: Labels = Labels {
    invoice: "Invoice",
    number: "No.",
    issue_date: "Issue date",
    due_date: "Due date",
    period: "Period",
    continued: "continued",
    billed_to: "Billed to",
    siren: "SIREN",
    siret: "SIRET",
    vat_number: "VAT number",
    vies_checked: "VAT number checked (VIES)",
    col_description: &["Description"],
    col_quantity: &["Quantity (h)"],
    col_unit_price: &["Unit price", "excl. VAT"],
    col_amount: &["Amount", "excl. VAT"],
    referral_discount: "Referral discount",
    subtotal: "Subtotal excl. VAT",
    discount_total: "Total discounts excl. VAT",
    total: "Total incl. VAT",
    balance_brought_forward: "Balance brought forward",
    credit_applied: "Prepaid credit applied",
    amount_paid: "Amount paid",
    amount_due: "Amount due",
    payment_heading: "Payment terms",
    no_early_discount: "No discount for early payment.",
    bank_transfer: "Payment by bank transfer, IBAN:",
    page: "Page",
};

fn labels(lang: PdfLanguage) -> &'static Labels {
    match lang {
        PdfLanguage::Fr => &FR,
        PdfLanguage::En => &EN,
    }
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// fr: `01/11/2026`; en: `1 November 2026`.
fn format_date(lang: PdfLanguage, d: NaiveDate) -> String {
    match lang {
        PdfLanguage::Fr => format!("{:02}/{:02}/{}", d.day(), d.month(), d.year()),
        PdfLanguage::En => format!(
            "{} {} {}",
            d.day(),
            MONTHS_EN[d.month0() as usize],
            d.year()
        ),
    }
}

/// "label : value" in French typography, "label: value" in English.
fn colon(lang: PdfLanguage, label: &str, value: &str) -> String {
    match lang {
        PdfLanguage::Fr => format!("{label} : {value}"),
        PdfLanguage::En => format!("{label}: {value}"),
    }
}

/// A validated decimal string, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    int: String,
    frac: String,
}

impl Decimal {
    fn parse(field: impl Into<String>, value: &str) -> Result<Self, PdfError> {
        let err = || PdfError::InvalidDecimal {
            field: field.into(),
            value: value.to_string(),
        };
        let s = value.trim();
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = match rest.split_once('.') {
            Some((i, f)) => (i, f),
            None => (rest, ""),
        };
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits(int)
            || !digits(frac)
            || (rest.contains('.') && frac.is_empty())
        {
            return Err(err());
        }
        let int = int.trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let mut d = Decimal {
            negative,
            int: int.to_string(),
            frac: frac.to_string(),
        };
        if d.is_zero() {
            d.negative = false;
        }
        Ok(d)
    }

    fn is_zero(&self) -> bool {
        self.int.bytes().chain(self.frac.bytes()).all(|b| b == b'0')
    }

    fn negated_abs(&self) -> Self {
        Decimal {
            negative: !self.is_zero(),
            ..self.clone()
        }
    }

    /// The unsigned number with locale grouping and decimal separator.
    fn digits(&self, lang: PdfLanguage) -> String {
        let (group, point) = match lang {
            PdfLanguage::Fr => (' ', ','),
            PdfLanguage::En => (',', '.'),
        };
        let mut out = String::with_capacity(self.int.len() + self.frac.len() + 6);
        let n = self.int.len();
        for (i, c) in self.int.chars().enumerate() {
            if i > 0 && (n - i).is_multiple_of(3) {
                out.push(group);
            }
            out.push(c);
        }
        if !self.frac.is_empty() {
            out.push(point);
            out.push_str(&self.frac);
        }
        out
    }

    fn number(&self, lang: PdfLanguage) -> String {
        let sign = if self.negative { "-" } else { "" };
        format!("{sign}{}", self.digits(lang))
    }

    /// fr: `-1 234,56 €`; en: `-€1,234.56`.
    fn money(&self, lang: PdfLanguage, symbol: &str) -> String {
        let sign = if self.negative { "-" } else { "" };
        let digits = self.digits(lang);
        match lang {
            PdfLanguage::Fr => format!("{sign}{digits} {symbol}"),
            PdfLanguage::En if symbol.chars().count() == 1 => format!("{sign}{symbol}{digits}"),
            PdfLanguage::En => format!("{sign}{symbol} {digits}"),
        }
    }
}

/// All numbers of the invoice, validated and formatted before layout starts.
struct Prepared {
    rows: Vec<TableRow>,
    totals: Vec<TotalRow>,
}

struct TableRow {
    description: String,
    quantity: String,
    unit_price: String,
    amount: String,
}

struct TotalRow {
    label: String,
    value: String,
    style: TotalStyle,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TotalStyle {
    Normal,
    Total,
    Due,
}

impl Prepared {
    fn new(inv: &PdfInvoice) -> Result<Self, PdfError> {
        let lang = inv.language;
        let l = labels(lang);
        let sym = inv.currency_symbol.as_str();
        let money =
            |field: String, v: &str| Ok::<_, PdfError>(Decimal::parse(field, v)?.money(lang, sym));

        let mut rows = Vec::with_capacity(inv.lines.len() + inv.discounts.len());
        for (i, line) in inv.lines.iter().enumerate() {
            rows.push(TableRow {
                description: line.description.clone(),
                quantity: Decimal::parse(
                    format!("lines[{i}].quantity_hours"),
                    &line.quantity_hours,
                )?
                .number(lang),
                unit_price: money(format!("lines[{i}].unit_price"), &line.unit_price)?,
                amount: money(format!("lines[{i}].amount"), &line.amount)?,
            });
        }
        for (i, d) in inv.discounts.iter().enumerate() {
            let amount = Decimal::parse(format!("discounts[{i}].amount"), &d.amount)?;
            let description = if d.description.trim().is_empty() {
                l.referral_discount.to_string()
            } else {
                format!("{} – {}", l.referral_discount, d.description)
            };
            rows.push(TableRow {
                description,
                quantity: String::new(),
                unit_price: String::new(),
                amount: amount.negated_abs().money(lang, sym),
            });
        }

        let row = |label: String, value: String, style| TotalRow {
            label,
            value,
            style,
        };
        let mut totals = vec![row(
            l.subtotal.to_string(),
            money("subtotal".into(), &inv.subtotal)?,
            TotalStyle::Normal,
        )];
        let discount_total = Decimal::parse("discount_total", &inv.discount_total)?;
        if !discount_total.is_zero() || !inv.discounts.is_empty() {
            totals.push(row(
                l.discount_total.to_string(),
                discount_total.negated_abs().money(lang, sym),
                TotalStyle::Normal,
            ));
        }
        for (i, v) in inv.vat_rows.iter().enumerate() {
            let rate = Decimal::parse(format!("vat_rows[{i}].rate"), &v.rate)?.number(lang);
            let base = money(format!("vat_rows[{i}].base"), &v.base)?;
            let label = match lang {
                PdfLanguage::Fr => format!("TVA {rate} % sur {base}"),
                PdfLanguage::En => format!("VAT {rate}% on {base}"),
            };
            totals.push(row(
                label,
                money(format!("vat_rows[{i}].amount"), &v.amount)?,
                TotalStyle::Normal,
            ));
        }
        totals.push(row(
            l.total.to_string(),
            money("total".into(), &inv.total)?,
            TotalStyle::Total,
        ));
        if let Some(b) = &inv.balance_brought_forward {
            totals.push(row(
                l.balance_brought_forward.to_string(),
                money("balance_brought_forward".into(), b)?,
                TotalStyle::Normal,
            ));
        }
        let credit = Decimal::parse("credit_applied", &inv.credit_applied)?;
        if !credit.is_zero() {
            totals.push(row(
                l.credit_applied.to_string(),
                credit.negated_abs().money(lang, sym),
                TotalStyle::Normal,
            ));
        }
        let paid = Decimal::parse("amount_paid", &inv.amount_paid)?;
        if !paid.is_zero() {
            totals.push(row(
                l.amount_paid.to_string(),
                paid.negated_abs().money(lang, sym),
                TotalStyle::Normal,
            ));
        }
        totals.push(row(
            l.amount_due.to_string(),
            money("amount_due".into(), &inv.amount_due)?,
            TotalStyle::Due,
        ));
        Ok(Prepared { rows, totals })
    }
}

// ---------------------------------------------------------------------------
// Geometry (points, origin bottom-left)
// ---------------------------------------------------------------------------

const PAGE_W: f32 = 595.2756;
const PAGE_H: f32 = 841.8898;
const ML: f32 = 42.0;
const MR: f32 = PAGE_W - 42.0;
const TOP: f32 = PAGE_H - 40.0;
/// Content must stay above this line; the footer lives below it.
const CONTENT_BOTTOM: f32 = 62.0;
const FOOTER_RULE_Y: f32 = 50.0;
/// Where content starts below the compact header of pages 2..N.
const CONTINUATION_TOP: f32 = TOP - 34.0;
const FOOTER_TEXT_Y: f32 = 39.0;

// Table columns: description left-aligned, numbers right-aligned on these edges.
const COL_DESC_X: f32 = ML + 6.0;
const COL_QTY_L: f32 = 326.0;
const COL_QTY_R: f32 = 386.0;
const COL_UNIT_R: f32 = 464.0;
const COL_AMOUNT_R: f32 = MR - 6.0;
const DESC_MAX_W: f32 = COL_QTY_L - COL_DESC_X - 8.0;
const DESC_MAX_LINES: usize = 4;

const TABLE_SIZE: f32 = 8.5;
const TABLE_LEAD: f32 = 11.0;
const ROW_PAD: f32 = 4.0;
const HEAD_SIZE: f32 = 7.5;
const HEAD_LEAD: f32 = 9.0;
const HEAD_H: f32 = 2.0 * HEAD_LEAD + 9.0;

const TOTALS_X: f32 = 318.0;
const TOTAL_SIZE: f32 = 8.5;
const TOTAL_LEAD: f32 = 14.0;

const TEXT_SIZE: f32 = 7.5;
const TEXT_LEAD: f32 = 10.0;

type Rgb3 = [f32; 3];
const BLACK: Rgb3 = [0.0, 0.0, 0.0];
const INK: Rgb3 = [0.12, 0.12, 0.14];
const GREY: Rgb3 = [0.40, 0.40, 0.43];
const RULE: Rgb3 = [0.80, 0.80, 0.82];
const HEAD_FILL: Rgb3 = [0.92, 0.93, 0.95];
const DUE_FILL: Rgb3 = [0.88, 0.90, 0.94];

fn rgb(c: Rgb3) -> Color {
    Color::Rgb(Rgb {
        r: c[0],
        g: c[1],
        b: c[2],
        icc_profile: None,
    })
}

/// Baseline of a line of `size` text inside a line box starting at `top`.
fn baseline(top: f32, lead: f32, size: f32) -> f32 {
    top - (lead - size) / 2.0 - size * 0.8
}

// ---------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------

struct Canvas<'f> {
    fonts: &'f Fonts,
    ops: Vec<Op>,
    fill: Option<Rgb3>,
    /// Inside `BT … ET`: consecutive strings share one text object.
    in_text: bool,
    font: Option<(Weight, f32)>,
    stroke: Option<(Rgb3, f32)>,
}

/// Coordinates rounded to 1/100 pt keep the content stream short.
fn r2(v: f32) -> Pt {
    Pt((v * 100.0).round() / 100.0)
}

impl<'f> Canvas<'f> {
    fn new(fonts: &'f Fonts) -> Self {
        Canvas {
            fonts,
            ops: Vec::with_capacity(512),
            fill: None,
            in_text: false,
            font: None,
            stroke: None,
        }
    }

    fn set_fill(&mut self, c: Rgb3) {
        if self.fill != Some(c) {
            self.ops.push(Op::SetFillColor { col: rgb(c) });
            self.fill = Some(c);
        }
    }

    fn end_text(&mut self) {
        if self.in_text {
            self.ops.push(Op::EndTextSection);
            self.in_text = false;
        }
    }

    fn into_ops(mut self) -> Vec<Op> {
        self.end_text();
        self.ops
    }

    fn text(&mut self, w: Weight, size: f32, x: f32, y: f32, color: Rgb3, s: &str) {
        if s.is_empty() {
            return;
        }
        let face = self.fonts.face(w);
        let s = face.clean(s).into_owned();
        if !self.in_text {
            self.ops.push(Op::StartTextSection);
            self.in_text = true;
        }
        self.set_fill(color);
        if self.font != Some((w, size)) {
            self.ops.push(Op::SetFont {
                font: PdfFontHandle::External(face.id.clone()),
                size: Pt(size),
            });
            self.font = Some((w, size));
        }
        self.ops.extend([
            // An absolute text matrix (`Tm`), not a relative `Td` move.
            Op::SetTextMatrix {
                matrix: TextMatrix::Translate(r2(x), r2(y)),
            },
            Op::ShowText {
                items: vec![TextItem::Text(s)],
            },
        ]);
    }

    fn text_right(&mut self, w: Weight, size: f32, right: f32, y: f32, color: Rgb3, s: &str) {
        let width = self.fonts.face(w).measure(s, size);
        self.text(w, size, right - width, y, color, s);
    }

    fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, color: Rgb3) {
        self.end_text();
        self.set_fill(color);
        self.ops.push(Op::DrawRectangle {
            rectangle: Rect {
                x: r2(x),
                y: r2(y),
                width: r2(width),
                height: r2(height),
                mode: Some(PaintMode::Fill),
                winding_order: None,
            },
        });
    }

    fn hline(&mut self, x1: f32, x2: f32, y: f32, thickness: f32, color: Rgb3) {
        self.end_text();
        let point = |x: f32| LinePoint {
            p: Point { x: r2(x), y: r2(y) },
            bezier: false,
        };
        if self.stroke != Some((color, thickness)) {
            self.ops.extend([
                Op::SetOutlineColor { col: rgb(color) },
                Op::SetOutlineThickness { pt: Pt(thickness) },
            ]);
            self.stroke = Some((color, thickness));
        }
        self.ops.push(Op::DrawLine {
            line: Line {
                points: vec![point(x1), point(x2)],
                is_closed: false,
            },
        });
    }

    fn measure(&self, w: Weight, size: f32, s: &str) -> f32 {
        self.fonts.face(w).measure(s, size)
    }

    fn wrap(&self, w: Weight, size: f32, s: &str, max_w: f32) -> Vec<String> {
        wrap(self.fonts.face(w), size, s, max_w, usize::MAX)
    }
}

/// Greedy word wrap on measured widths; words wider than `max_w` are split.
/// Beyond `max_lines` the last line is truncated with "…". Explicit `\n` breaks.
fn wrap(face: &Face, size: f32, s: &str, max_w: f32, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for para in s.split('\n') {
        let mut cur = String::new();
        for word in para.split_whitespace() {
            let candidate = if cur.is_empty() {
                word.to_string()
            } else {
                format!("{cur} {word}")
            };
            if face.measure(&candidate, size) <= max_w {
                cur = candidate;
                continue;
            }
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            // The word alone may still be too wide: hard-split it.
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if face.measure(&piece, size) > max_w && piece.chars().count() > 1 {
                    piece.pop();
                    lines.push(std::mem::take(&mut piece));
                    piece.push(c);
                }
            }
            cur = piece;
        }
        if !cur.is_empty() {
            lines.push(cur);
        }
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = truncate(face, size, &format!("{last} …"), max_w);
            if !last.ends_with('…') {
                last.push('…');
            }
        }
    }
    lines
}

/// Cuts `s` so that it fits `max_w`, ending with "…" when something was cut.
fn truncate(face: &Face, size: f32, s: &str, max_w: f32) -> String {
    if face.measure(s, size) <= max_w {
        return s.to_string();
    }
    let ell = face.measure("…", size);
    let mut out = String::new();
    let mut w = 0.0;
    for c in s.chars() {
        let cw = face.measure(c.encode_utf8(&mut [0; 4]), size);
        if w + cw + ell > max_w {
            break;
        }
        out.push(c);
        w += cw;
    }
    format!("{}…", out.trim_end())
}

// ---------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------

fn layout<'f>(
    fonts: &'f Fonts,
    inv: &PdfInvoice,
    seller: &Seller,
    prepared: &Prepared,
) -> Vec<Canvas<'f>> {
    let lang = inv.language;
    let l = labels(lang);
    let mut pages = Vec::new();
    let mut page = Canvas::new(fonts);
    let mut y = first_page_header(&mut page, inv, seller);
    y = table_header(&mut page, l, y);

    for row in &prepared.rows {
        let desc = wrap(
            &fonts.regular,
            TABLE_SIZE,
            &row.description,
            DESC_MAX_W,
            DESC_MAX_LINES,
        );
        let n = desc.len().max(1);
        let h = n as f32 * TABLE_LEAD + 2.0 * ROW_PAD;
        if y - h < CONTENT_BOTTOM {
            pages.push(std::mem::replace(&mut page, Canvas::new(fonts)));
            y = continuation_header(&mut page, inv, seller);
            y = table_header(&mut page, l, y);
        }
        let top = y - ROW_PAD;
        for (i, line) in desc.iter().enumerate() {
            let by = baseline(top - i as f32 * TABLE_LEAD, TABLE_LEAD, TABLE_SIZE);
            page.text(Weight::Regular, TABLE_SIZE, COL_DESC_X, by, INK, line);
        }
        let by = baseline(top, TABLE_LEAD, TABLE_SIZE);
        page.text_right(
            Weight::Regular,
            TABLE_SIZE,
            COL_QTY_R,
            by,
            INK,
            &row.quantity,
        );
        page.text_right(
            Weight::Regular,
            TABLE_SIZE,
            COL_UNIT_R,
            by,
            INK,
            &row.unit_price,
        );
        page.text_right(
            Weight::Regular,
            TABLE_SIZE,
            COL_AMOUNT_R,
            by,
            INK,
            &row.amount,
        );
        y -= h;
        page.hline(ML, MR, y, 0.4, RULE);
    }

    // Totals block, kept in one piece.
    let totals_h = prepared.totals.len() as f32 * TOTAL_LEAD + 16.0;
    y -= 10.0;
    if y - totals_h < CONTENT_BOTTOM {
        pages.push(std::mem::replace(&mut page, Canvas::new(fonts)));
        y = continuation_header(&mut page, inv, seller) - 6.0;
    }
    y = totals_block(&mut page, prepared, y);

    // Legal mentions, paragraph by paragraph.
    y -= 16.0;
    for para in legal_paragraphs(inv, seller) {
        let (weight, text, gap_after) = para;
        let lines = page.wrap(weight, TEXT_SIZE, &text, MR - ML);
        // A paragraph moves to the next page whole; one taller than a page
        // (an unusually long tax mention) breaks between lines.
        let h = lines.len() as f32 * TEXT_LEAD;
        let whole_fits_a_page = h <= CONTINUATION_TOP - CONTENT_BOTTOM;
        for (i, line) in lines.iter().enumerate() {
            let needed = if i == 0 && whole_fits_a_page {
                h
            } else {
                TEXT_LEAD
            };
            if y - needed < CONTENT_BOTTOM {
                pages.push(std::mem::replace(&mut page, Canvas::new(fonts)));
                y = continuation_header(&mut page, inv, seller) - 6.0;
            }
            page.text(
                weight,
                TEXT_SIZE,
                ML,
                baseline(y, TEXT_LEAD, TEXT_SIZE),
                INK,
                line,
            );
            y -= TEXT_LEAD;
        }
        y -= gap_after;
    }
    pages.push(page);

    let total = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        footer(page, l, seller, i + 1, total);
    }
    pages
}

/// Draws the full header of page 1; returns the y where the table starts.
fn first_page_header(page: &mut Canvas, inv: &PdfInvoice, seller: &Seller) -> f32 {
    let lang = inv.language;
    let l = labels(lang);
    let left_w = 250.0;

    // Seller, top left.
    let mut y = TOP;
    for line in page.wrap(Weight::Bold, 14.0, &seller.name, left_w) {
        page.text(
            Weight::Bold,
            14.0,
            ML,
            baseline(y, 17.0, 14.0),
            BLACK,
            &line,
        );
        y -= 17.0;
    }
    y -= 2.0;
    let mut seller_lines: Vec<String> = Vec::new();
    seller_lines.push(seller.legal_form.clone());
    seller_lines.extend(seller.address.iter().cloned());
    seller_lines.push(seller.rcs.clone());
    seller_lines.push(colon(lang, l.siren, &seller.siren));
    seller_lines.push(colon(lang, l.siret, &seller.siret));
    seller_lines.push(colon(lang, l.vat_number, &seller.vat_number));
    seller_lines.push(seller.email.clone());
    seller_lines.push(seller.website.clone());
    for text in seller_lines.iter().filter(|s| !s.trim().is_empty()) {
        for line in page.wrap(Weight::Regular, 8.0, text, left_w) {
            page.text(
                Weight::Regular,
                8.0,
                ML,
                baseline(y, 10.5, 8.0),
                GREY,
                &line,
            );
            y -= 10.5;
        }
    }
    let left_bottom = y;

    // Title and invoice facts, top right.
    let meta_x = 326.0;
    let mut ry = TOP;
    page.text_right(
        Weight::Bold,
        20.0,
        MR,
        baseline(ry, 22.0, 20.0),
        BLACK,
        l.invoice,
    );
    ry -= 28.0;
    let period_range = match lang {
        PdfLanguage::Fr => format!(
            "du {} au {}",
            format_date(lang, inv.period_from),
            format_date(lang, inv.period_to)
        ),
        PdfLanguage::En => format!(
            "{} – {}",
            format_date(lang, inv.period_from),
            format_date(lang, inv.period_to)
        ),
    };
    let facts: [(&str, Weight, String); 5] = [
        (l.number, Weight::Bold, inv.number.clone()),
        (
            l.issue_date,
            Weight::Regular,
            format_date(lang, inv.issue_date),
        ),
        (l.due_date, Weight::Bold, format_date(lang, inv.due_date)),
        (l.period, Weight::Regular, inv.period_label.clone()),
        ("", Weight::Regular, period_range),
    ];
    for (label, weight, value) in facts {
        let size = 8.5;
        let lead = 12.0;
        let value_w = page.measure(weight, size, &value);
        let label_w = page.measure(Weight::Regular, size, label);
        if label_w + value_w + 10.0 > MR - meta_x && !label.is_empty() {
            page.text(
                Weight::Regular,
                size,
                meta_x,
                baseline(ry, lead, size),
                GREY,
                label,
            );
            ry -= lead;
        } else {
            page.text(
                Weight::Regular,
                size,
                meta_x,
                baseline(ry, lead, size),
                GREY,
                label,
            );
        }
        let value = truncate(page.fonts.face(weight), size, &value, MR - meta_x);
        page.text_right(weight, size, MR, baseline(ry, lead, size), INK, &value);
        ry -= lead;
    }

    // Buyer box, right.
    ry -= 12.0;
    let box_x = 318.0;
    let pad = 8.0;
    let inner_w = MR - box_x - 2.0 * pad;
    let mut buyer: Vec<(Weight, f32, Rgb3, String)> = Vec::new();
    buyer.push((Weight::Bold, 7.0, GREY, l.billed_to.to_uppercase()));
    let (first, second) = match &inv.buyer_company {
        Some(company) if !company.trim().is_empty() => (company.clone(), Some(&inv.buyer_name)),
        _ => (inv.buyer_name.clone(), None),
    };
    buyer.push((Weight::Bold, 10.0, BLACK, first));
    if let Some(name) = second {
        buyer.push((Weight::Regular, 8.5, INK, name.clone()));
    }
    for line in inv.buyer_address.lines() {
        buyer.push((Weight::Regular, 8.5, INK, line.to_string()));
    }
    buyer.push((Weight::Regular, 8.5, INK, inv.buyer_country.clone()));
    if let Some(vat) = &inv.buyer_vat_number {
        buyer.push((Weight::Regular, 8.0, INK, colon(lang, l.vat_number, vat)));
    }
    if let Some(id) = &inv.buyer_vies_consultation {
        buyer.push((Weight::Regular, 8.0, INK, colon(lang, l.vies_checked, id)));
    }
    let mut wrapped: Vec<(Weight, f32, Rgb3, String)> = Vec::new();
    for (w, size, color, text) in buyer.into_iter().filter(|b| !b.3.trim().is_empty()) {
        for line in page.wrap(w, size, &text, inner_w) {
            wrapped.push((w, size, color, line));
        }
    }
    let lead_of = |size: f32| size + 3.5;
    let box_h: f32 = wrapped.iter().map(|b| lead_of(b.1)).sum::<f32>() + 2.0 * pad;
    page.fill_rect(box_x, ry - box_h, MR - box_x, box_h, HEAD_FILL);
    let mut by = ry - pad;
    for (w, size, color, line) in &wrapped {
        let lead = lead_of(*size);
        page.text(
            *w,
            *size,
            box_x + pad,
            baseline(by, lead, *size),
            *color,
            line,
        );
        by -= lead;
    }
    let right_bottom = ry - box_h;

    left_bottom.min(right_bottom) - 22.0
}

/// Compact header of pages 2..N; returns the y where content starts.
fn continuation_header(page: &mut Canvas, inv: &PdfInvoice, seller: &Seller) -> f32 {
    let l = labels(inv.language);
    let y = TOP;
    let right = format!(
        "{} {} {} ({})",
        l.invoice, l.number, inv.number, l.continued
    );
    let right_w = page.measure(Weight::Regular, 9.0, &right);
    let name = truncate(
        &page.fonts.bold,
        11.0,
        &seller.name,
        MR - ML - right_w - 20.0,
    );
    page.text(
        Weight::Bold,
        11.0,
        ML,
        baseline(y, 14.0, 11.0),
        BLACK,
        &name,
    );
    page.text_right(
        Weight::Regular,
        9.0,
        MR,
        baseline(y, 14.0, 9.0),
        INK,
        &right,
    );
    page.hline(ML, MR, y - 20.0, 0.6, RULE);
    CONTINUATION_TOP
}

/// Table header row; returns the y below it.
fn table_header(page: &mut Canvas, l: &Labels, y: f32) -> f32 {
    page.fill_rect(ML, y - HEAD_H, MR - ML, HEAD_H, HEAD_FILL);
    // Labels are bottom-aligned on two lines.
    let line_top = |i: usize, n: usize| y - 4.5 - (2 - n + i) as f32 * HEAD_LEAD;
    let cell = |page: &mut Canvas, parts: &[&str], x: f32, right: bool| {
        for (i, part) in parts.iter().enumerate() {
            let by = baseline(line_top(i, parts.len()), HEAD_LEAD, HEAD_SIZE);
            if right {
                page.text_right(Weight::Bold, HEAD_SIZE, x, by, INK, part);
            } else {
                page.text(Weight::Bold, HEAD_SIZE, x, by, INK, part);
            }
        }
    };
    cell(page, l.col_description, COL_DESC_X, false);
    cell(page, l.col_quantity, COL_QTY_R, true);
    cell(page, l.col_unit_price, COL_UNIT_R, true);
    cell(page, l.col_amount, COL_AMOUNT_R, true);
    y - HEAD_H
}

/// Right-hand totals block; returns the y below it.
fn totals_block(page: &mut Canvas, prepared: &Prepared, mut y: f32) -> f32 {
    let label_x = TOTALS_X + 8.0;
    let value_r = COL_AMOUNT_R;
    let label_max = value_r - label_x - 80.0;
    for row in &prepared.totals {
        let (weight, size) = match row.style {
            TotalStyle::Normal => (Weight::Regular, TOTAL_SIZE),
            TotalStyle::Total => (Weight::Bold, TOTAL_SIZE + 0.5),
            TotalStyle::Due => (Weight::Bold, TOTAL_SIZE + 1.5),
        };
        match row.style {
            TotalStyle::Total => page.hline(TOTALS_X, MR, y - 1.0, 0.8, GREY),
            TotalStyle::Due => {
                y -= 4.0;
                page.fill_rect(
                    TOTALS_X,
                    y - TOTAL_LEAD - 4.0,
                    MR - TOTALS_X,
                    TOTAL_LEAD + 4.0,
                    DUE_FILL,
                );
                y -= 2.0;
            }
            TotalStyle::Normal => {}
        }
        let by = baseline(y, TOTAL_LEAD, size);
        let label = truncate(page.fonts.face(weight), size, &row.label, label_max);
        page.text(weight, size, label_x, by, INK, &label);
        page.text_right(weight, size, value_r, by, BLACK, &row.value);
        y -= TOTAL_LEAD;
    }
    y
}

/// (weight, text, gap after) for the mentions printed after the totals.
fn legal_paragraphs(inv: &PdfInvoice, seller: &Seller) -> Vec<(Weight, String, f32)> {
    let lang = inv.language;
    let l = labels(lang);
    let mut out = Vec::new();
    if let Some(m) = inv.tax_mention.as_ref().filter(|m| !m.trim().is_empty()) {
        out.push((Weight::Bold, m.clone(), 8.0));
    }
    out.push((Weight::Bold, l.payment_heading.to_string(), 1.0));
    out.push((Weight::Regular, end_sentence(&inv.payment_terms), 2.0));
    if let Some(iban) = seller.iban.as_ref().filter(|s| !s.trim().is_empty()) {
        out.push((Weight::Regular, format!("{} {iban}", l.bank_transfer), 2.0));
    }
    out.push((Weight::Regular, l.no_early_discount.to_string(), 2.0));
    if let Some(late) = inv.late_payment.as_ref().filter(|s| !s.trim().is_empty()) {
        out.push((Weight::Regular, end_sentence(late), 0.0));
    }
    out
}

fn end_sentence(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() || s.ends_with(['.', '!', '?']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

fn footer(page: &mut Canvas, l: &Labels, seller: &Seller, n: usize, total: usize) {
    page.hline(ML, MR, FOOTER_RULE_Y, 0.5, RULE);
    let page_label = format!("{} {n} / {total}", l.page);
    let page_w = page.measure(Weight::Regular, 7.5, &page_label);
    page.text_right(Weight::Regular, 7.5, MR, FOOTER_TEXT_Y, GREY, &page_label);
    // The RCS entry carries the SIREN: one of the two, so the VAT number still fits.
    let registration = if seller.rcs.trim().is_empty() {
        format!("{} {}", l.siren, seller.siren)
    } else {
        seller.rcs.clone()
    };
    let identity = [
        seller.name.as_str(),
        seller.legal_form.as_str(),
        &registration,
        &format!("{} {}", l.vat_number, seller.vat_number),
    ]
    .iter()
    .filter(|s| !s.trim().is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" · ");
    let identity = truncate(&page.fonts.regular, 7.0, &identity, MR - ML - page_w - 16.0);
    page.text(Weight::Regular, 7.0, ML, FOOTER_TEXT_Y, GREY, &identity);
}

// ---------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------

fn serialize(
    fonts: &Fonts,
    inv: &PdfInvoice,
    seller: &Seller,
    pages: Vec<Canvas>,
) -> Result<Vec<u8>, PdfError> {
    let l = labels(inv.language);
    let mut doc = PdfDocument::new(&format!("{} {}", l.invoice, inv.number));

    // Fixed dates: the issue date at 00:00 UTC (never the wall clock).
    let date = printpdf::date::DateTime {
        date: printpdf::date::Date {
            year: inv.issue_date.year(),
            month: inv.issue_date.month() as u8,
            day: inv.issue_date.day() as u8,
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
    info.subject = format!("{} {} – {}", l.invoice, inv.number, inv.buyer_name);
    info.identifier = inv.number.clone();

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
        hex16(&Sha256::digest(format!("billrun-invoice:{}", inv.number))),
        hex16(&Sha256::digest(format!("billrun-instance:{}", inv.number))),
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

/// A font program as embedded: one weight of DejaVu Sans cut to a set of characters,
/// parsed, and compressed once.
///
/// Cutting a font for each document (printpdf's own subsetting) walks its tables and
/// parses the result again, and the program is then compressed: together about a third of
/// a document's rendering. Programs are therefore kept per set of characters, and the set
/// is rounded up to all of printable ASCII plus whatever else the document draws (a few
/// accented letters, `€`): nearly every invoice then shares one of a handful of programs,
/// at the price of a few kilobytes of unused Latin glyphs. The bytes depend on the set
/// alone, so a document is the same whether its program was cut now or found.
struct Program {
    parsed: ParsedFont,
    /// The program's uncompressed bytes: the stream printpdf writes.
    bytes: Vec<u8>,
    /// Its zlib form (`zlib`), written in that stream's place.
    compressed: Vec<u8>,
}

/// Programs kept at most: past this, programs are cut for their document alone (the
/// output is the same). Each weighs some 20 KB compressed plus its parsed tables.
const PROGRAMS_KEPT: usize = 64;

type ProgramKey = (Weight, Vec<char>);

static PROGRAMS: LazyLock<
    std::sync::Mutex<std::collections::HashMap<ProgramKey, std::sync::Arc<Program>>>,
> = LazyLock::new(Default::default);

impl Program {
    fn for_chars(
        weight: Weight,
        id: &FontId,
        drawn: &BTreeSet<char>,
    ) -> Result<std::sync::Arc<Program>, PdfError> {
        let chars: Vec<char> = (' '..='~')
            .chain(drawn.iter().copied())
            .collect::<BTreeSet<char>>()
            .into_iter()
            .collect();
        let key = (weight, chars);
        // A poisoned lock only means another thread panicked while holding it: the map
        // itself is whole (inserts are single calls).
        let programs = || PROGRAMS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = programs().get(&key) {
            return Ok(p.clone());
        }
        // Cut outside the lock; two threads may cut the same set at once, and both cuts
        // are the same bytes.
        let program = std::sync::Arc::new(Program::cut(weight, id, &key.1)?);
        let mut map = programs();
        if map.len() < PROGRAMS_KEPT {
            map.entry(key).or_insert_with(|| program.clone());
        }
        Ok(program)
    }

    /// Cuts the full face of `weight` to `chars` (those it has glyphs for).
    fn cut(weight: Weight, id: &FontId, chars: &[char]) -> Result<Program, PdfError> {
        let library = LIBRARY.as_ref().map_err(|e| PdfError::Font(e.clone()))?;
        let source = library.full.face(weight);
        let bytes = source
            .cut(chars.iter().copied())
            .map_err(|e| PdfError::Font(format!("cannot cut {}: {e}", id.0)))?;
        let mut warnings = Vec::new();
        let mut parsed = ParsedFont::from_bytes(&bytes, 0, &mut warnings).ok_or_else(|| {
            PdfError::Font(format!("cannot parse the cut of {}: {warnings:?}", id.0))
        })?;
        // A cut program carries the subset tag (ISO 32000-1, 9.6.4): printpdf writes this
        // name on /BaseFont and /FontName as it stands.
        let name = source
            .parsed
            .font_name
            .clone()
            .unwrap_or_else(|| id.0.clone());
        parsed.font_name = Some(format!("{}+{name}", id.0));
        let compressed = zlib(&bytes);
        Ok(Program {
            parsed,
            bytes,
            compressed,
        })
    }
}

fn hex16(digest: &[u8]) -> String {
    digest[..16].iter().map(|b| format!("{b:02X}")).collect()
}

/// zlib at its fast level: lopdf's own `compress()` uses the slowest level, which alone
/// cost more than the rest of the rendering. Deterministic for a given input.
fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::fast(),
    );
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    fn invoice(lines: usize) -> PdfInvoice {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        PdfInvoice {
            language: PdfLanguage::Fr,
            number: "F-2026-000123".into(),
            issue_date: d(2026, 11, 1),
            due_date: d(2026, 12, 1),
            period_label: "octobre 2026".into(),
            period_from: d(2026, 10, 1),
            period_to: d(2026, 10, 31),
            buyer_name: "Jürgen Weiß".into(),
            buyer_company: Some("Søren & Weiß GmbH".into()),
            buyer_address: "Straße des 17. Juni 1\n10623 Berlin".into(),
            buyer_country: "Allemagne".into(),
            buyer_vat_number: Some("DE123456789".into()),
            buyer_vies_consultation: None,
            lines: (0..lines)
                .map(|i| PdfLine {
                    description: format!("Ligne {i:03} – instance é-{i}"),
                    quantity_hours: "744.00".into(),
                    unit_price: "0.0200".into(),
                    amount: "14.88".into(),
                })
                .collect(),
            discounts: vec![PdfDiscount {
                description: "filleul acme".into(),
                amount: "5.00".into(),
            }],
            subtotal: "148.80".into(),
            discount_total: "5.00".into(),
            vat_rows: vec![],
            total: "143.80".into(),
            balance_brought_forward: None,
            credit_applied: "0.00".into(),
            amount_paid: "0.00".into(),
            amount_due: "143.80".into(),
            currency_symbol: "€".into(),
            tax_mention: Some("Autoliquidation – article 283-2 du CGI".into()),
            payment_terms: "Paiement prélevé automatiquement à l'émission de la facture.".into(),
            late_payment: Some("En cas de retard de paiement, des pénalités de retard sont exigibles (article L441-10 du Code de commerce).".into()),
        }
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
        for bytes in [DEJAVU_SANS, DEJAVU_SANS_BOLD] {
            let mut warnings = Vec::new();
            let original = ParsedFont::from_bytes(bytes, 0, &mut warnings).unwrap();
            let slim_bytes = slim_font(bytes).unwrap();
            let slim = ParsedFont::from_bytes(&slim_bytes, 0, &mut warnings).unwrap();
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
            let tags: Vec<&[u8]> =
                (0..usize::from(u16::from_be_bytes([slim_bytes[4], slim_bytes[5]])))
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
        let fonts = library().for_invoice(&inv, &seller());
        let canvases = layout(fonts, &inv, &seller(), &Prepared::new(&inv).unwrap());
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
        inv.tax_mention = Some("Mention très longue sur l'exonération de TVA. ".repeat(400));
        inv.lines[3].description = "Description longue ".repeat(60);
        let fonts = &library().latin;
        let pages = layout(fonts, &inv, &seller(), &Prepared::new(&inv).unwrap());
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
        assert!(render(&inv, &seller()).is_ok());
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
        assert!(std::ptr::eq(lib.for_invoice(&inv, &seller()), &lib.latin));
        // Georgian is in DejaVu Sans but not in the Latin cut.
        inv.buyer_name = "ნინო ბერიძე".into();
        let fonts = lib.for_invoice(&inv, &seller());
        assert!(std::ptr::eq(fonts, &lib.full));
        let canvases = layout(fonts, &inv, &seller(), &Prepared::new(&inv).unwrap());
        assert!(canvases[0].ops.iter().any(|op| matches!(op,
            Op::ShowText { items } if matches!(items.as_slice(), [TextItem::Text(t)] if t == "ნინო ბერიძე"))));
        assert!(render(&inv, &seller()).is_ok());
        // A character no font has stays on the Latin cut and is drawn as U+FFFD.
        inv.buyer_name = "Ada \u{10FFFD}".into();
        assert!(std::ptr::eq(lib.for_invoice(&inv, &seller()), &lib.latin));
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
    fn amounts_are_formatted_per_language() {
        let d = Decimal::parse("x", "1234567.50").unwrap();
        assert_eq!(d.money(PdfLanguage::Fr, "€"), "1 234 567,50 €");
        assert_eq!(d.money(PdfLanguage::En, "€"), "€1,234,567.50");
        assert_eq!(
            Decimal::parse("x", "-0.0200")
                .unwrap()
                .number(PdfLanguage::Fr),
            "-0,0200"
        );
        assert_eq!(
            Decimal::parse("x", "5.00")
                .unwrap()
                .negated_abs()
                .money(PdfLanguage::En, "€"),
            "-€5.00"
        );
        assert!(!Decimal::parse("x", "-0.00").unwrap().negated_abs().negative);
        for bad in ["", "abc", "1,5", "1.", ".5", "--1", "1e3"] {
            assert!(Decimal::parse("x", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn invalid_amount_is_an_error() {
        let mut inv = invoice(2);
        inv.lines[1].amount = "14,88".into();
        match render(&inv, &seller()) {
            Err(PdfError::InvalidDecimal { field, .. }) => assert_eq!(field, "lines[1].amount"),
            other => panic!("{other:?}"),
        }
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
}
