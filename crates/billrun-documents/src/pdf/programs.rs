//! The font programs embedded in the documents: one weight of DejaVu Sans cut to a set of
//! characters, kept per set so that documents share them.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use printpdf::{FontId, ParsedFont};

use super::PdfError;
use super::fonts::{LIBRARY, Weight};
use super::serialize::zlib;

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
pub(super) struct Program {
    pub(super) parsed: ParsedFont,
    /// The program's uncompressed bytes: the stream printpdf writes.
    pub(super) bytes: Vec<u8>,
    /// Its zlib form (`zlib`), written in that stream's place.
    pub(super) compressed: Vec<u8>,
}

/// Programs kept at most: past this, programs are cut for their document alone (the
/// output is the same). Each weighs some 20 KB compressed plus its parsed tables.
const PROGRAMS_KEPT: usize = 64;

type ProgramKey = (Weight, Vec<char>);

pub(super) static PROGRAMS: LazyLock<
    std::sync::Mutex<std::collections::HashMap<ProgramKey, std::sync::Arc<Program>>>,
> = LazyLock::new(Default::default);

impl Program {
    pub(super) fn for_chars(
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
