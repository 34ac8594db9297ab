//! TEMPORARY: the hand-written TrueType surgery, replaced by a font slimmed with fontTools.

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
pub(super) fn slim_font(font: &[u8]) -> Result<Vec<u8>, String> {
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
