//! A page being drawn: text, rules and filled boxes as printpdf operations, with the text
//! measured, wrapped and truncated on the fonts' own widths. Coordinates are points, origin
//! bottom-left.

use printpdf::{
    Color, Line, LinePoint, Op, PaintMode, PdfFontHandle, Point, Pt, Rect, Rgb, TextItem,
    TextMatrix,
};

use super::fonts::{Face, Fonts, Weight};

pub(super) type Rgb3 = [f32; 3];
pub(super) const BLACK: Rgb3 = [0.0, 0.0, 0.0];
pub(super) const INK: Rgb3 = [0.12, 0.12, 0.14];
pub(super) const GREY: Rgb3 = [0.40, 0.40, 0.43];
pub(super) const RULE: Rgb3 = [0.80, 0.80, 0.82];
pub(super) const HEAD_FILL: Rgb3 = [0.92, 0.93, 0.95];
pub(super) const DUE_FILL: Rgb3 = [0.88, 0.90, 0.94];

fn rgb(c: Rgb3) -> Color {
    Color::Rgb(Rgb {
        r: c[0],
        g: c[1],
        b: c[2],
        icc_profile: None,
    })
}

/// Baseline of a line of `size` text inside a line box starting at `top`.
pub(super) fn baseline(top: f32, lead: f32, size: f32) -> f32 {
    top - (lead - size) / 2.0 - size * 0.8
}

pub(super) struct Canvas<'f> {
    pub(super) fonts: &'f Fonts,
    pub(super) ops: Vec<Op>,
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
    pub(super) fn new(fonts: &'f Fonts) -> Self {
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

    pub(super) fn into_ops(mut self) -> Vec<Op> {
        self.end_text();
        self.ops
    }

    pub(super) fn text(&mut self, w: Weight, size: f32, x: f32, y: f32, color: Rgb3, s: &str) {
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

    pub(super) fn text_right(
        &mut self,
        w: Weight,
        size: f32,
        right: f32,
        y: f32,
        color: Rgb3,
        s: &str,
    ) {
        let width = self.fonts.face(w).measure(s, size);
        self.text(w, size, right - width, y, color, s);
    }

    pub(super) fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, color: Rgb3) {
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

    pub(super) fn hline(&mut self, x1: f32, x2: f32, y: f32, thickness: f32, color: Rgb3) {
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

    pub(super) fn measure(&self, w: Weight, size: f32, s: &str) -> f32 {
        self.fonts.face(w).measure(s, size)
    }

    pub(super) fn wrap(&self, w: Weight, size: f32, s: &str, max_w: f32) -> Vec<String> {
        wrap(self.fonts.face(w), size, s, max_w, usize::MAX)
    }
}

/// Greedy word wrap on measured widths; words wider than `max_w` are split.
/// Beyond `max_lines` the last line is truncated with "…". Explicit `\n` breaks.
pub(super) fn wrap(face: &Face, size: f32, s: &str, max_w: f32, max_lines: usize) -> Vec<String> {
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
pub(super) fn truncate(face: &Face, size: f32, s: &str, max_w: f32) -> String {
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
