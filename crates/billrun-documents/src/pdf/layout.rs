//! Where everything goes on the A4 page: the header (seller, the document's facts, buyer),
//! the paragraphs before the table (a credit note's reference and reason), the table of lines
//! continued over as many pages as it takes, the totals, the legal mentions and the footer of
//! every page. Points, origin bottom-left. The same for an invoice and a credit note: it reads
//! a [`Prepared`] only.

use billrun_core::document::Seller;

use super::canvas::{
    BLACK, Canvas, DUE_FILL, GREY, HEAD_FILL, INK, RULE, Rgb3, baseline, truncate, wrap,
};
use super::fonts::{Fonts, Weight};
use super::labels::{Labels, colon, labels};
use super::prepare::{Prepared, TotalStyle};

pub(super) const PAGE_W: f32 = 595.2756;
pub(super) const PAGE_H: f32 = 841.8898;
pub(super) const ML: f32 = 42.0;
pub(super) const MR: f32 = PAGE_W - 42.0;
pub(super) const TOP: f32 = PAGE_H - 40.0;
/// Content must stay above this line; the footer lives below it.
pub(super) const CONTENT_BOTTOM: f32 = 62.0;
pub(super) const FOOTER_RULE_Y: f32 = 50.0;
/// Where content starts below the compact header of pages 2..N.
pub(super) const CONTINUATION_TOP: f32 = TOP - 34.0;
pub(super) const FOOTER_TEXT_Y: f32 = 39.0;

// Table columns: description left-aligned, numbers right-aligned on these edges.
pub(super) const COL_DESC_X: f32 = ML + 6.0;
pub(super) const COL_QTY_L: f32 = 326.0;
pub(super) const COL_QTY_R: f32 = 386.0;
pub(super) const COL_UNIT_R: f32 = 464.0;
pub(super) const COL_AMOUNT_R: f32 = MR - 6.0;
pub(super) const DESC_MAX_W: f32 = COL_QTY_L - COL_DESC_X - 8.0;
pub(super) const DESC_MAX_LINES: usize = 4;

pub(super) const TABLE_SIZE: f32 = 8.5;
pub(super) const TABLE_LEAD: f32 = 11.0;
pub(super) const ROW_PAD: f32 = 4.0;
pub(super) const HEAD_SIZE: f32 = 7.5;
pub(super) const HEAD_LEAD: f32 = 9.0;
pub(super) const HEAD_H: f32 = 2.0 * HEAD_LEAD + 9.0;

pub(super) const TOTALS_X: f32 = 318.0;
pub(super) const TOTAL_SIZE: f32 = 8.5;
pub(super) const TOTAL_LEAD: f32 = 14.0;

pub(super) const TEXT_SIZE: f32 = 7.5;
pub(super) const INTRO_MAX_LINES: usize = 6;
pub(super) const TEXT_LEAD: f32 = 10.0;

/// Lays the document out on as many pages as it takes.
pub(super) fn layout<'f>(
    fonts: &'f Fonts,
    seller: &Seller,
    prepared: &Prepared,
) -> Vec<Canvas<'f>> {
    let l = prepared.labels();
    let mut pages = Vec::new();
    let mut page = Canvas::new(fonts);
    let mut y = first_page_header(&mut page, seller, prepared);
    // Paragraphs before the table, on page 1 (a reference and a reason), each cut at
    // INTRO_MAX_LINES lines so that the header stays on page 1.
    for (weight, text) in &prepared.intro {
        let face = page.fonts.face(*weight);
        for line in wrap(face, TEXT_SIZE + 1.0, text, MR - ML, INTRO_MAX_LINES) {
            page.text(
                *weight,
                TEXT_SIZE + 1.0,
                ML,
                baseline(y, TEXT_LEAD + 1.0, TEXT_SIZE + 1.0),
                INK,
                &line,
            );
            y -= TEXT_LEAD + 1.0;
        }
        y -= 3.0;
    }
    if !prepared.intro.is_empty() {
        y -= 8.0;
    }
    y = table_header(&mut page, prepared, y);

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
            y = continuation_header(&mut page, seller, prepared);
            y = table_header(&mut page, prepared, y);
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
        y = continuation_header(&mut page, seller, prepared) - 6.0;
    }
    y = totals_block(&mut page, prepared, y);

    // Legal mentions, paragraph by paragraph.
    y -= 16.0;
    for (weight, text, gap_after) in &prepared.mentions {
        let (weight, gap_after) = (*weight, *gap_after);
        let lines = page.wrap(weight, TEXT_SIZE, text, MR - ML);
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
                y = continuation_header(&mut page, seller, prepared) - 6.0;
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
fn first_page_header(page: &mut Canvas, seller: &Seller, p: &Prepared) -> f32 {
    let lang = p.lang;
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
        p.title,
    );
    ry -= 28.0;
    for &(label, weight, ref value) in &p.facts {
        let size = 8.5;
        let lead = 12.0;
        let value_w = page.measure(weight, size, value);
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
        let value = truncate(page.fonts.face(weight), size, value, MR - meta_x);
        page.text_right(weight, size, MR, baseline(ry, lead, size), INK, &value);
        ry -= lead;
    }

    // Buyer box, right.
    ry -= 12.0;
    let box_x = 318.0;
    let pad = 8.0;
    let inner_w = MR - box_x - 2.0 * pad;
    let mut buyer: Vec<(Weight, f32, Rgb3, String)> = Vec::new();
    buyer.push((Weight::Bold, 7.0, GREY, p.buyer_heading.to_uppercase()));
    let (first, second) = match &p.buyer.company {
        Some(company) if !company.trim().is_empty() => (company.clone(), Some(&p.buyer.name)),
        _ => (p.buyer.name.clone(), None),
    };
    buyer.push((Weight::Bold, 10.0, BLACK, first));
    if let Some(name) = second {
        buyer.push((Weight::Regular, 8.5, INK, name.clone()));
    }
    for line in p.buyer.address.lines() {
        buyer.push((Weight::Regular, 8.5, INK, line.to_string()));
    }
    buyer.push((Weight::Regular, 8.5, INK, p.buyer.country.clone()));
    // The SIREN of a French business buyer (EN 16931 BT-47), near its address.
    if let Some(siren) = &p.buyer_siren {
        buyer.push((Weight::Regular, 8.0, INK, colon(lang, l.siren, siren)));
    }
    if let Some(vat) = &p.buyer.vat_number {
        buyer.push((Weight::Regular, 8.0, INK, colon(lang, l.vat_number, vat)));
    }
    if let Some(id) = &p.buyer.vies_consultation {
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
fn continuation_header(page: &mut Canvas, seller: &Seller, p: &Prepared) -> f32 {
    let l = p.labels();
    let y = TOP;
    let right = format!("{} {} {} ({})", p.title, l.number, p.number, l.continued);
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
fn table_header(page: &mut Canvas, p: &Prepared, y: f32) -> f32 {
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
    let [description, quantity, unit_price, amount] = p.columns;
    cell(page, description, COL_DESC_X, false);
    cell(page, quantity, COL_QTY_R, true);
    cell(page, unit_price, COL_UNIT_R, true);
    cell(page, amount, COL_AMOUNT_R, true);
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
