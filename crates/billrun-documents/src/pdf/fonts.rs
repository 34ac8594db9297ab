//! The fonts drawn with: DejaVu Sans, regular and bold, parsed once per process, with the
//! metrics the layout measures text with and the replacement of what they cannot draw.

use std::borrow::Cow;
use std::sync::LazyLock;

use printpdf::{FontId, ParsedFont};

/// DejaVu Sans without what a PDF never uses: OpenType layout (text is not shaped), MATH,
/// FFTM, glyph names, most of the `name` table, and the TrueType hinting (grid-fitting
/// bytecode for screens; PDF viewers draw outlines without it, and it was half of every
/// glyph's bytes). Every outline, metric and character of the original is kept. Slimmed
/// once with fontTools' `pyftsubset`: the command is in `templates/fonts/README.md`.
pub(super) const DEJAVU_SANS: &[u8] =
    include_bytes!("../../../../templates/fonts/DejaVuSans-slim.ttf");
pub(super) const DEJAVU_SANS_BOLD: &[u8] =
    include_bytes!("../../../../templates/fonts/DejaVuSans-Bold-slim.ttf");

/// Fixed resource names: the first six letters double as the subset tag
/// (`BRDJVR+DejaVuSans`), so they are six upper-case letters.
pub(super) const REGULAR_ID: &str = "BRDJVR";
pub(super) const BOLD_ID: &str = "BRDJVB";

/// Characters below this code point get their advance precomputed.
const WIDTH_TABLE_LEN: usize = 0x2200;

pub(super) struct Face {
    pub(super) id: FontId,
    pub(super) parsed: ParsedFont,
    /// Advance in 1/1000 em (as printpdf writes it into `/W`), `None` = no glyph.
    widths: Vec<Option<u16>>,
}

impl Face {
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
    pub(super) fn cut(&self, chars: impl IntoIterator<Item = char>) -> Result<Vec<u8>, String> {
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

    pub(super) fn width_of(&self, c: char) -> Option<u16> {
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

    pub(super) fn replacement(&self) -> char {
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
    pub(super) fn clean<'a>(&self, s: &'a str) -> Cow<'a, str> {
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
    pub(super) fn measure(&self, s: &str, size: f32) -> f32 {
        let units: u32 = self
            .clean(s)
            .chars()
            .map(|c| u32::from(self.width_of(c).unwrap_or(0)))
            .sum();
        units as f32 * size / 1000.0
    }
}

/// Drawn for a character the font lacks.
pub(super) const REPLACEMENT: char = '\u{FFFD}';
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
pub(super) struct Fonts {
    pub(super) regular: Face,
    pub(super) bold: Face,
}

impl Fonts {
    pub(super) fn face(&self, weight: Weight) -> &Face {
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
pub(super) struct FontLibrary {
    pub(super) latin: Fonts,
    pub(super) full: Fonts,
}

impl FontLibrary {
    /// The latin cut, unless one of `texts` has a character only the full font draws.
    pub(super) fn for_texts<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> &Fonts {
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
        if texts.into_iter().any(needs_full) {
            &self.full
        } else {
            &self.latin
        }
    }
}

pub(super) static LIBRARY: LazyLock<Result<FontLibrary, String>> = LazyLock::new(|| {
    let full = Fonts {
        regular: Face::parse(DEJAVU_SANS, REGULAR_ID)?,
        bold: Face::parse(DEJAVU_SANS_BOLD, BOLD_ID)?,
    };
    let latin = Fonts {
        regular: full.regular.latin_subset()?,
        bold: full.bold.latin_subset()?,
    };
    Ok(FontLibrary { latin, full })
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Weight {
    Regular,
    Bold,
}
