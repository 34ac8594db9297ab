//! The invoice and the credit note as e-invoices: UN/CEFACT Cross Industry Invoice (CII D16B)
//! at the Factur-X 1.0 **EN 16931** profile (guideline `urn:cen.eu:en16931:2017`), the XML
//! embedded in the PDF as `factur-x.xml`.
//!
//! Written by code (no template engine), in the schema's element order, deterministic: the
//! same document always gives the same bytes. It says what the PDF says, to the cent: both
//! read the same typed [`Invoice`] or [`CreditNote`] (the caller passes the invoice as issued,
//! `Invoice::as_issued`, as for the PDF) and the same sentences (`core::terms`,
//! `core::vat::mention`). [`to_xml`] and [`credit_note_to_xml`] share every part they have in
//! common (the header, a line, the parties, the VAT breakdown, an allowance, the totals).
//!
//! Rule ids (`BR-xx`, business terms `BT-xx`, groups `BG-xx`) are EN 16931-1's; they are named
//! beside the code that meets them. The validators in the test suite
//! (`tests/support/facturx-check`: the Factur-X XSD and the EN 16931 schematron) judge.

use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use billrun_core::credit_note::CreditLineKind;
use billrun_core::document::{Buyer, CreditNote, Invoice, Seller};
use billrun_core::einvoice::{ElectronicAddress, PaymentMeans};
use billrun_core::locale::Language;
use billrun_core::money::{Money, format_minor};
use billrun_core::vat::{BuyerKind, VatCase};

/// The Factur-X EN 16931 profile's guideline id (BT-24).
pub const GUIDELINE_EN16931: &str = "urn:cen.eu:en16931:2017";
/// The name of the XML inside the PDF (Factur-X 1.0, §6).
pub const FILE_NAME: &str = "factur-x.xml";

/// BT-3, UNTDID 1001: a commercial invoice.
const TYPE_INVOICE: &str = "380";
/// BT-3, UNTDID 1001: a credit note.
const TYPE_CREDIT_NOTE: &str = "381";

/// The VAT category of the document (one per document: billrun applies one treatment to all
/// of an invoice's lines, and a credit note reverses its invoice's) with its exemption reason
/// when VAT is not charged.
struct Category {
    /// UNTDID 5305 (BT-118, BT-151, BT-95).
    code: &'static str,
    /// BT-120: the same mention as the PDF's.
    exemption_text: Option<&'static str>,
    /// BT-121: CEF VATEX.
    exemption_code: Option<&'static str>,
}

/// The category of a VAT case; `mention` is the document's VAT mention (`core::vat::mention`).
fn category(vat_case: VatCase, mention: Option<&'static str>) -> Category {
    match vat_case {
        // French VAT, or the VAT of the consumer's EU state (OSS): standard rated, `S`
        // (BR-S-05: the rate is above zero).
        VatCase::Domestic | VatCase::EuConsumer => Category {
            code: "S",
            exemption_text: None,
            exemption_code: None,
        },
        // Reverse charge: `AE`, rate 0 (BR-AE-05), the seller's and the buyer's VAT numbers
        // (BR-AE-02/03), an exemption reason (BR-AE-10): the PDF's mention and VATEX-EU-AE.
        VatCase::ReverseCharge => Category {
            code: "AE",
            exemption_text: mention,
            exemption_code: Some("VATEX-EU-AE"),
        },
        // Outside the EU. EN 16931 offers `O` (not subject to VAT) or `G` (export outside the
        // EU). `O` is the closest in meaning, but BR-O-02 forbids the seller's VAT number
        // (BT-31) on an invoice with an `O` line, and a French company's invoice must carry it
        // (article 242 nonies A of annex II to the CGI), as the PDF does. `G` requires it
        // instead (BR-G-02), its rate is 0 (BR-G-05), and it takes an exemption reason
        // (BR-G-10): the PDF's mention (articles 259-1 / 259 B of the CGI) and VATEX-EU-G. So `G`.
        VatCase::OutOfScope => Category {
            code: "G",
            exemption_text: mention,
            exemption_code: Some("VATEX-EU-G"),
        },
    }
}

/// The invoice as CII XML (UTF-8) at the EN 16931 profile.
pub fn to_xml(inv: &Invoice, seller: &Seller) -> String {
    let mut x = Xml::with_capacity(8 * 1024 + inv.lines.len() * 900);
    let cat = category(inv.vat_case, inv.tax_mention());
    let rate = percent(inv.tax_rate);
    let cur = inv.currency.code();

    // BT-1 (BR-02; a dry-run has no number yet), BT-3 (BR-04): 380, a commercial invoice.
    document_header(
        &mut x,
        inv.number.as_deref().unwrap_or(""),
        TYPE_INVOICE,
        inv.issued_at.date_naive(),
        &invoice_notes(inv),
    );

    x.open("rsm:SupplyChainTradeTransaction");

    // BG-25: the lines (BR-16: at least one).
    for (i, line) in inv.lines.iter().enumerate() {
        line_item(
            &mut x,
            &LineItem {
                id: i + 1,
                name: &line.description,
                // BT-146 (BR-26, BR-27: not negative): the catalog's price per hour, as the PDF.
                net_price: decimal(line.unit_price),
                // BT-129, BT-130: hours, UN/ECE rec. 20 `HUR`.
                quantity: decimal(line.quantity_hours),
                unit: "HUR",
                total: line.amount,
            },
            &cat,
            &rate,
        );
    }

    // BT-10 buyer reference: none (billrun has no purchase orders).
    agreement(&mut x, seller, &inv.buyer);

    // BG-13: the service's delivery, dated by its last day (BT-72).
    delivery(&mut x, inv.period_last_day());

    x.open("ram:ApplicableHeaderTradeSettlement");
    // BT-90: the seller's SEPA creditor identifier, on an invoice collected by SEPA debit.
    if sepa_debit_due(inv)
        && let Some(ics) = seller.sepa_creditor_id.as_deref()
    {
        x.leaf("ram:CreditorReferenceID", ics);
    }
    x.leaf("ram:InvoiceCurrencyCode", cur); // BT-5 (BR-05)
    payment_means(&mut x, inv);

    // BT-116 the base: the subtotal less the discounts (BR-S-08, BR-AE-08, BR-G-08).
    vat_breakdown(&mut x, &cat, &rate, inv.taxable_base(), inv.tax);

    billing_period(&mut x, inv.period_start.date_naive(), inv.period_last_day());

    // BG-20: the referral discounts, document-level allowances in the invoice's category: a
    // discount lowers the taxed base, as on the PDF (`Invoice::taxable_base`).
    for d in &inv.discounts {
        allowance(
            &mut x,
            d.amount,
            &discount_reason(inv.language, &d.description),
            &cat,
            &rate,
        );
    }

    // BT-20 payment terms and BT-9 due date (BR-CO-25: one of them when an amount is due).
    let terms = inv.payment_terms();
    x.open("ram:SpecifiedTradePaymentTerms");
    x.leaf("ram:Description", &terms.text(inv.language)); // BT-20
    date(&mut x, "ram:DueDateDateTime", inv.due_at); // BT-9
    // BT-89: the SEPA mandate reference, when the debit's mandate is known.
    if sepa_debit_due(inv)
        && let Some(mandate) = inv.sepa_mandate.as_deref()
    {
        x.leaf("ram:DirectDebitMandateID", mandate);
    }
    x.close("ram:SpecifiedTradePaymentTerms");

    // BT-113 (paid amount) and BT-115 (amount due), with BR-CO-16: BT-115 = BT-112 - BT-113
    // + BT-114. The PDF's amount due includes the balance brought forward from earlier
    // invoices (`Invoice::as_issued`: total + balance brought forward; credit applied and
    // amounts paid are zero as issued, and are deducted when a later state is rendered). The
    // balance brought forward is an amount of another invoice, already taxed there, so it is
    // neither a line nor a document-level charge (BG-21): either would enter the tax basis
    // BT-109 and need a VAT category — S would tax it twice, and `O`/`E` would misstate it
    // (and `O` may stand beside no other category, BR-O-11..14). Nor is it rounding (BT-114).
    // EN 16931 leaves one place: the paid amount BT-113, which is what was already settled
    // against this invoice's total; an earlier invoice's unpaid balance taken onto this one
    // is the opposite, a negative paid amount. So BT-113 = credit applied + amount paid -
    // balance brought forward, the invoice's tax basis and VAT stay exactly its own supply,
    // and BT-115 is the PDF's amount due to the cent. A note (AAI) names the earlier
    // invoices and their amounts.
    let prepaid =
        inv.credit_applied.minor + inv.amount_paid.minor - inv.balance_brought_forward.minor;
    totals(
        &mut x,
        cur,
        &Totals {
            line_total: inv.subtotal,
            allowance_total: inv.discount,
            tax_basis: inv.taxable_base(),
            tax: inv.tax,
            grand_total: inv.total,
            prepaid: Money::new(prepaid, inv.currency),
            due: inv.amount_due,
        },
    );
    x.close("ram:ApplicableHeaderTradeSettlement");
    x.close("rsm:SupplyChainTradeTransaction");
    x.raw("</rsm:CrossIndustryInvoice>\n");
    x.out
}

/// The credit note as CII XML (UTF-8) at the EN 16931 profile: type code 381 (BT-3, UNTDID
/// 1001) and the invoice it corrects as the preceding invoice reference (BG-3: BT-25 its
/// number, BT-26 its issue date; article 242 nonies A of annex II to the CGI requires the
/// reference on the credit note).
///
/// Amounts are positive: what is credited (EN 16931 reads a 381 document's amounts as owed
/// to the buyer). The credited parts of the invoice's lines and the commercial gestures are
/// lines of quantity 1 (UN/ECE rec. 20 `C62`, one) whose net price is the credited amount:
/// the credit note credits amounts, not hours, and a part of a line has no quantity of its
/// own. A deduction line (a full credit taking back the invoice's referral discount) cannot
/// be a line, whose net price may not be negative (BR-27): it is a document-level allowance
/// (BG-20), as the invoice's discount was, so the VAT base is the credit note's subtotal.
pub fn credit_note_to_xml(cn: &CreditNote, seller: &Seller) -> String {
    let mut x = Xml::with_capacity(8 * 1024 + cn.lines.len() * 900);
    let cat = category(cn.vat_case, cn.tax_mention());
    let rate = percent(cn.tax_rate);
    let cur = cn.currency.code();

    // BT-1 (BR-02), BT-3 (BR-04): 381, a credit note.
    document_header(
        &mut x,
        cn.number.as_deref().unwrap_or(""),
        TYPE_CREDIT_NOTE,
        cn.issued_at.date_naive(),
        &credit_note_notes(cn),
    );

    x.open("rsm:SupplyChainTradeTransaction");

    // BG-25: the credited lines and gestures (BR-16: at least one; a credit note always has a
    // line or a gesture of a positive amount).
    let mut allowance_total = 0i64;
    let mut line_total = 0i64;
    let mut id = 0;
    for line in &cn.lines {
        match line.kind {
            CreditLineKind::Line | CreditLineKind::Gesture => {
                id += 1;
                line_total += line.amount.minor;
                line_item(
                    &mut x,
                    &LineItem {
                        id,
                        name: &line.description,
                        net_price: amount(line.amount), // BT-146 (BR-27)
                        quantity: "1".to_string(),      // BT-129
                        unit: "C62",                    // BT-130
                        total: line.amount,
                    },
                    &cat,
                    &rate,
                );
            }
            // Written as allowances below.
            CreditLineKind::Deduction => allowance_total -= line.amount.minor,
        }
    }

    agreement(&mut x, seller, &cn.buyer);

    // BG-13: the credited service's delivery, the credited invoice's (BT-72).
    delivery(&mut x, cn.invoice_period.last_day());

    x.open("ram:ApplicableHeaderTradeSettlement");
    x.leaf("ram:InvoiceCurrencyCode", cur); // BT-5 (BR-05)
    // BG-16: no payment instructions. The buyer pays nothing; what the credit note gives back
    // is said in the payment terms (BT-20) below.

    // BT-116: the credit note's subtotal (the lines less the allowances: BR-S-08, BR-AE-08,
    // BR-G-08), BT-117 its VAT, at the invoice's rate and category.
    vat_breakdown(&mut x, &cat, &rate, cn.subtotal, cn.tax);

    // BG-14: the credited invoice's billing period.
    billing_period(
        &mut x,
        cn.invoice_period.first_day(),
        cn.invoice_period.last_day(),
    );

    // BG-20: a deduction line (negative) as an allowance of its absolute amount (BT-92).
    for line in &cn.lines {
        match line.kind {
            CreditLineKind::Deduction => allowance(
                &mut x,
                Money::new(-line.amount.minor, cn.currency),
                &line.description,
                &cat,
                &rate,
            ),
            CreditLineKind::Line | CreditLineKind::Gesture => {}
        }
    }

    // BT-20: how the credit note is settled, as the PDF says it (BR-CO-25: BT-115 is above
    // zero, so a due date BT-9 or payment terms BT-20 are required; there is no due date).
    x.open("ram:SpecifiedTradePaymentTerms");
    x.leaf("ram:Description", &settlement_text(cn));
    x.close("ram:SpecifiedTradePaymentTerms");

    // BG-22. BR-CO-16: BT-115 = BT-112 - BT-113 + BT-114. BT-113 (paid amount) is 0 and
    // BT-115 the total: on a credit note BT-115 is what the seller owes the buyer, and nothing
    // of it was settled before the credit note existed. How it is then settled (taken off the
    // invoice's amount due, or refunded) is the settlement of this amount, said in BT-20; it
    // is not a prepayment, and it changes after issue (a refund pending, then succeeded) while
    // the document, stored once with its SHA-256, must not. The validator accepts it (the
    // credit-note tests of tests/it/facturx.rs).
    totals(
        &mut x,
        cur,
        &Totals {
            line_total: Money::new(line_total, cn.currency),
            allowance_total: Money::new(allowance_total, cn.currency),
            tax_basis: cn.subtotal,
            tax: cn.tax,
            grand_total: cn.total,
            prepaid: Money::new(0, cn.currency),
            due: cn.total,
        },
    );

    // BG-3: the invoice this credit note corrects: BT-25 its number, BT-26 its issue date.
    x.open("ram:InvoiceReferencedDocument");
    x.leaf("ram:IssuerAssignedID", &cn.invoice_number); // BT-25
    x.open("ram:FormattedIssueDateTime"); // BT-26
    x.leaf_attr(
        "qdt:DateTimeString",
        "format",
        "102",
        &cn.invoice_issued_at
            .date_naive()
            .format("%Y%m%d")
            .to_string(),
    );
    x.close("ram:FormattedIssueDateTime");
    x.close("ram:InvoiceReferencedDocument");

    x.close("ram:ApplicableHeaderTradeSettlement");
    x.close("rsm:SupplyChainTradeTransaction");
    x.raw("</rsm:CrossIndustryInvoice>\n");
    x.out
}

/// The credit note's settlement in its language, one sentence per way it is settled (the
/// PDF's "Settlement" paragraph, the XML's BT-20, the email's `refund_text`).
pub fn settlement_text(cn: &CreditNote) -> String {
    crate::pdf::settlement_sentences(cn).join(" ")
}

/// The XML declaration, the root element, the context (BG-2) and the document (BT-1, BT-3,
/// BT-2, BG-1 notes).
fn document_header(
    x: &mut Xml,
    number: &str,
    type_code: &str,
    issued: NaiveDate,
    notes: &[(String, &str)],
) {
    x.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.raw(
        "<rsm:CrossIndustryInvoice \
         xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\" \
         xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\" \
         xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\" \
         xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\">\n",
    );

    x.open("rsm:ExchangedDocumentContext");
    // BT-23, the business process: the French CTC's billing framework (BR-FR-08), `S1` = an
    // invoice for services, submitted by the seller (no deposit, no earlier payment terms).
    x.open("ram:BusinessProcessSpecifiedDocumentContextParameter");
    x.leaf("ram:ID", "S1");
    x.close("ram:BusinessProcessSpecifiedDocumentContextParameter");
    // BT-24: the specification identifier (BR-01).
    x.open("ram:GuidelineSpecifiedDocumentContextParameter");
    x.leaf("ram:ID", GUIDELINE_EN16931);
    x.close("ram:GuidelineSpecifiedDocumentContextParameter");
    x.close("rsm:ExchangedDocumentContext");

    x.open("rsm:ExchangedDocument");
    x.leaf("ram:ID", number); // BT-1 (BR-02)
    x.leaf("ram:TypeCode", type_code); // BT-3 (BR-04)
    date(x, "ram:IssueDateTime", issued); // BT-2 (BR-03)
    // BG-1 notes (BT-22) with their subject codes (BT-21, UNTDID 4451).
    for (content, subject) in notes {
        note(x, content, subject);
    }
    x.close("rsm:ExchangedDocument");
}

/// One line (BG-25) as both documents write it.
struct LineItem<'a> {
    /// BT-126 (BR-21), from 1.
    id: usize,
    /// BT-153 (BR-25).
    name: &'a str,
    /// BT-146 (BR-26, BR-27: not negative).
    net_price: String,
    /// BT-129 (BR-22).
    quantity: String,
    /// BT-130 (BR-23), UN/ECE rec. 20.
    unit: &'a str,
    /// BT-131 (BR-24).
    total: Money,
}

fn line_item(x: &mut Xml, line: &LineItem<'_>, cat: &Category, rate: &str) {
    x.open("ram:IncludedSupplyChainTradeLineItem");
    x.open("ram:AssociatedDocumentLineDocument");
    x.leaf("ram:LineID", &line.id.to_string()); // BT-126 (BR-21)
    x.close("ram:AssociatedDocumentLineDocument");
    x.open("ram:SpecifiedTradeProduct");
    x.leaf("ram:Name", line.name); // BT-153 (BR-25)
    x.close("ram:SpecifiedTradeProduct");
    x.open("ram:SpecifiedLineTradeAgreement");
    x.open("ram:NetPriceProductTradePrice");
    x.leaf("ram:ChargeAmount", &line.net_price); // BT-146 (BR-26, BR-27)
    x.close("ram:NetPriceProductTradePrice");
    x.close("ram:SpecifiedLineTradeAgreement");
    x.open("ram:SpecifiedLineTradeDelivery");
    // BT-129 (BR-22), BT-130 (BR-23).
    x.leaf_attr("ram:BilledQuantity", "unitCode", line.unit, &line.quantity);
    x.close("ram:SpecifiedLineTradeDelivery");
    x.open("ram:SpecifiedLineTradeSettlement");
    // BG-30: the line's VAT category (BT-151, BR-CO-04) and rate (BT-152).
    x.open("ram:ApplicableTradeTax");
    x.leaf("ram:TypeCode", "VAT");
    x.leaf("ram:CategoryCode", cat.code);
    x.leaf("ram:RateApplicablePercent", rate);
    x.close("ram:ApplicableTradeTax");
    x.open("ram:SpecifiedTradeSettlementLineMonetarySummation");
    x.leaf("ram:LineTotalAmount", &amount(line.total)); // BT-131 (BR-24)
    x.close("ram:SpecifiedTradeSettlementLineMonetarySummation");
    x.close("ram:SpecifiedLineTradeSettlement");
    x.close("ram:IncludedSupplyChainTradeLineItem");
}

/// The seller (BG-4) and the buyer (BG-7).
fn agreement(x: &mut Xml, seller: &Seller, buyer: &Buyer) {
    x.open("ram:ApplicableHeaderTradeAgreement");
    seller_party(x, seller);
    buyer_party(x, buyer);
    x.close("ram:ApplicableHeaderTradeAgreement");
}

/// BG-23: one VAT breakdown (one treatment per document). BT-116 the base, BT-117 the tax
/// (BR-CO-17; zero for AE and G: BR-AE-09, BR-G-09).
fn vat_breakdown(x: &mut Xml, cat: &Category, rate: &str, base: Money, tax: Money) {
    x.open("ram:ApplicableTradeTax");
    x.leaf("ram:CalculatedAmount", &amount(tax)); // BT-117
    x.leaf("ram:TypeCode", "VAT");
    if let Some(text) = cat.exemption_text {
        x.leaf("ram:ExemptionReason", text); // BT-120
    }
    x.leaf("ram:BasisAmount", &amount(base)); // BT-116
    x.leaf("ram:CategoryCode", cat.code); // BT-118
    if let Some(code) = cat.exemption_code {
        x.leaf("ram:ExemptionReasonCode", code); // BT-121
    }
    x.leaf("ram:RateApplicablePercent", rate); // BT-119
    x.close("ram:ApplicableTradeTax");
}

/// BG-13 with BT-72, the actual delivery date: the last day of the billed period. A service
/// billed for a period is delivered over it, and done on its last day; EN 16931 has no
/// delivery period at the header (BG-14, the invoicing period, already says the span, and
/// BT-72 may stand beside it). Written rather than an empty `ApplicableHeaderTradeDelivery`
/// (the element is required by the CII schema), which PEPPOL-EN16931-R008 warns about (no
/// empty elements). No ship-to party (BG-15): nothing is shipped.
fn delivery(x: &mut Xml, last_day: NaiveDate) {
    x.open("ram:ApplicableHeaderTradeDelivery");
    // CII order (Factur-X XSD, HeaderTradeDeliveryType): ShipToTradeParty, then
    // ActualDeliverySupplyChainEvent.
    x.open("ram:ActualDeliverySupplyChainEvent");
    date(x, "ram:OccurrenceDateTime", last_day);
    x.close("ram:ActualDeliverySupplyChainEvent");
    x.close("ram:ApplicableHeaderTradeDelivery");
}

/// BG-14: the billed time, first and last day (BR-29: the end is not before the start).
fn billing_period(x: &mut Xml, first: NaiveDate, last: NaiveDate) {
    x.open("ram:BillingSpecifiedPeriod");
    date(x, "ram:StartDateTime", first);
    date(x, "ram:EndDateTime", last);
    x.close("ram:BillingSpecifiedPeriod");
}

/// BG-20: a document-level allowance: BT-92 amount (BR-31), BT-97 reason (BR-33), BT-95 VAT
/// category (BR-32) and BT-96 rate, the document's.
fn allowance(x: &mut Xml, value: Money, reason: &str, cat: &Category, rate: &str) {
    x.open("ram:SpecifiedTradeAllowanceCharge");
    x.open("ram:ChargeIndicator");
    x.leaf("udt:Indicator", "false");
    x.close("ram:ChargeIndicator");
    x.leaf("ram:ActualAmount", &amount(value)); // BT-92 (BR-31)
    x.leaf("ram:Reason", reason); // BT-97
    x.open("ram:CategoryTradeTax");
    x.leaf("ram:TypeCode", "VAT");
    x.leaf("ram:CategoryCode", cat.code); // BT-95
    x.leaf("ram:RateApplicablePercent", rate); // BT-96
    x.close("ram:CategoryTradeTax");
    x.close("ram:SpecifiedTradeAllowanceCharge");
}

/// BG-22: the document's totals.
struct Totals {
    /// BT-106 (BR-CO-10): Σ BT-131.
    line_total: Money,
    /// BT-107 (BR-CO-11): Σ BT-92.
    allowance_total: Money,
    /// BT-109 (BR-CO-13): BT-106 - BT-107 (no charges).
    tax_basis: Money,
    /// BT-110 (BR-CO-14).
    tax: Money,
    /// BT-112 (BR-CO-15): BT-109 + BT-110.
    grand_total: Money,
    /// BT-113.
    prepaid: Money,
    /// BT-115 (BR-CO-16): BT-112 - BT-113.
    due: Money,
}

fn totals(x: &mut Xml, cur: &str, t: &Totals) {
    x.open("ram:SpecifiedTradeSettlementHeaderMonetarySummation");
    x.leaf("ram:LineTotalAmount", &amount(t.line_total)); // BT-106 (BR-CO-10)
    x.leaf("ram:ChargeTotalAmount", &format_minor(0)); // BT-108 (BR-CO-12)
    x.leaf("ram:AllowanceTotalAmount", &amount(t.allowance_total)); // BT-107 (BR-CO-11)
    x.leaf("ram:TaxBasisTotalAmount", &amount(t.tax_basis)); // BT-109 (BR-CO-13)
    x.leaf_attr("ram:TaxTotalAmount", "currencyID", cur, &amount(t.tax)); // BT-110 (BR-CO-14)
    x.leaf("ram:GrandTotalAmount", &amount(t.grand_total)); // BT-112 (BR-CO-15)
    x.leaf("ram:TotalPrepaidAmount", &amount(t.prepaid)); // BT-113
    x.leaf("ram:DuePayableAmount", &amount(t.due)); // BT-115 (BR-CO-16)
    x.close("ram:SpecifiedTradeSettlementHeaderMonetarySummation");
}

fn discount_reason(lang: Language, description: &str) -> String {
    let label = match lang {
        Language::Fr => "Remise parrainage",
        Language::En => "Referral discount",
    };
    if description.trim().is_empty() {
        label.to_string()
    } else {
        format!("{label} – {description}")
    }
}

/// An invoice's BT-22 notes: the late-payment terms (PMD, PMT; B2B only, as on the PDF), no
/// discount for early payment (AAB), the VAT mention (TXD) and the balance brought forward
/// (AAI).
fn invoice_notes(inv: &Invoice) -> Vec<(String, &'static str)> {
    let lang = inv.language;
    let terms = inv.payment_terms();
    let mut out = Vec::new();
    if let Some(sentence) = terms.late_payment_sentence(lang) {
        // The PDF's one sentence holds both the penalties (PMD) and the 40 € recovery
        // indemnity (PMT, article D441-5 of the Code de commerce); the French rules read each
        // under its own subject code, so it is given under both.
        out.push((sentence.clone(), "PMD"));
        out.push((sentence, "PMT"));
    }
    out.push((crate::pdf::no_early_discount(lang).to_string(), "AAB"));
    if let Some(mention) = inv.tax_mention() {
        out.push((mention.to_string(), "TXD"));
    }
    for bf in &inv.brought_forward {
        let text = match lang {
            Language::Fr => format!(
                "Report de solde de la facture {} : {} {} (inclus dans le montant à payer).",
                bf.invoice_number,
                format_minor(bf.amount.minor),
                bf.amount.currency.code()
            ),
            Language::En => format!(
                "Balance brought forward from invoice {}: {} {} (included in the amount due).",
                bf.invoice_number,
                format_minor(bf.amount.minor),
                bf.amount.currency.code()
            ),
        };
        out.push((text, "AAI"));
    }
    out
}

/// A credit note's BT-22 notes: the reference to the invoice and the reason, as the PDF
/// words them (ACD, UNTDID 4451 "reason"), and the VAT mention (TXD). No payment terms: the
/// buyer pays nothing.
fn credit_note_notes(cn: &CreditNote) -> Vec<(String, &'static str)> {
    let mut out = vec![(crate::pdf::credit_note_reference(cn), "ACD")];
    if !cn.reason.trim().is_empty() {
        out.push((crate::pdf::credit_note_reason(cn), "ACD"));
    }
    if let Some(mention) = cn.tax_mention() {
        out.push((mention.to_string(), "TXD"));
    }
    out
}

fn note(x: &mut Xml, content: &str, subject: &str) {
    x.open("ram:IncludedNote");
    x.leaf("ram:Content", content);
    x.leaf("ram:SubjectCode", subject);
    x.close("ram:IncludedNote");
}

/// BG-4: the seller.
fn seller_party(x: &mut Xml, seller: &Seller) {
    x.open("ram:SellerTradeParty");
    x.leaf("ram:Name", &seller.name); // BT-27 (BR-06)
    // BT-30: the SIREN, scheme 0002 (ISO 6523: the French SIRENE register).
    x.open("ram:SpecifiedLegalOrganization");
    let siren: String = seller
        .siren
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    x.leaf_attr("ram:ID", "schemeID", "0002", &siren);
    x.close("ram:SpecifiedLegalOrganization");
    // BG-5 (BR-08), country FR (BT-40, BR-09).
    let lines: Vec<&str> = seller.address.iter().map(String::as_str).collect();
    address(x, &lines, "FR");
    // BT-34: where the seller receives e-invoices (`[settings.seller] electronic_address`).
    if let Some(a) = &seller.electronic_address {
        electronic_address(x, a);
    }
    // BT-31: the VAT number (BR-CO-09: prefixed by the country code).
    tax_registration(x, &seller.vat_number);
    x.close("ram:SellerTradeParty");
}

/// BG-7: the buyer.
fn buyer_party(x: &mut Xml, b: &Buyer) {
    x.open("ram:BuyerTradeParty");
    // BT-44 (BR-07): the company when there is one, else the person.
    let name = b
        .company
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or(&b.name);
    x.leaf("ram:Name", name);
    // BT-47: a French business buyer's SIREN, scheme 0002 (ISO 6523: the SIRENE register;
    // BR-FR-11/BR-FR-32: 9 digits, as the accounts import checks with its Luhn key).
    let business = b.kind() == BuyerKind::Business;
    if business && let Some(siren) = b.siren.as_deref() {
        x.open("ram:SpecifiedLegalOrganization");
        x.leaf_attr("ram:ID", "schemeID", "0002", siren);
        x.close("ram:SpecifiedLegalOrganization");
    }
    if name != b.name && !b.name.trim().is_empty() {
        // BG-9: the person the invoice is addressed to at the company (BT-56).
        x.open("ram:DefinedTradeContact");
        x.leaf("ram:PersonName", &b.name);
        x.close("ram:DefinedTradeContact");
    }
    // BG-8 (BR-10), BT-55 country (BR-11).
    let lines: Vec<&str> = b
        .address
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    address(x, &lines, &b.country);
    // BT-49: where the buyer receives e-invoices (the account's `electronic_address`).
    if let Some(a) = &b.electronic_address {
        electronic_address(x, a);
    }
    // BT-48 when the buyer has one (BR-AE-02 requires it for reverse charge).
    if let Some(vat) = b.vat_number.as_deref().filter(|v| !v.trim().is_empty())
        && b.kind() == BuyerKind::Business
    {
        tax_registration(x, vat);
    }
    x.close("ram:BuyerTradeParty");
}

/// A postal address: up to three lines (BT-35/36/162), the last line's French postcode and
/// city split out when it reads `67000 Strasbourg` (BT-38, BT-37), and the country.
fn address(x: &mut Xml, lines: &[&str], country: &str) {
    let mut lines = lines.to_vec();
    let mut postcode_city = None;
    if let Some(last) = lines.last()
        && let Some((code, city)) = last.split_once(' ')
        && code.len() == 5
        && code.chars().all(|c| c.is_ascii_digit())
        && !city.trim().is_empty()
    {
        postcode_city = Some((code, city.trim()));
        lines.pop();
    }
    x.open("ram:PostalTradeAddress");
    if let Some((code, _)) = postcode_city {
        x.leaf("ram:PostcodeCode", code);
    }
    // CII has three street lines: any further line joins the third.
    let tags = ["ram:LineOne", "ram:LineTwo", "ram:LineThree"];
    for (i, tag) in tags.iter().enumerate() {
        let text = if i < 2 {
            lines.get(i).map(|s| s.to_string())
        } else if lines.len() > 2 {
            Some(lines[2..].join(", "))
        } else {
            None
        };
        if let Some(text) = text {
            x.leaf(tag, &text);
        }
    }
    if let Some((_, city)) = postcode_city {
        x.leaf("ram:CityName", city);
    }
    x.leaf("ram:CountryID", country.trim());
    x.close("ram:PostalTradeAddress");
}

fn tax_registration(x: &mut Xml, vat_number: &str) {
    let vat: String = vat_number.chars().filter(|c| !c.is_whitespace()).collect();
    x.open("ram:SpecifiedTaxRegistration");
    x.leaf_attr("ram:ID", "schemeID", "VA", &vat);
    x.close("ram:SpecifiedTaxRegistration");
}

/// BG-16: how it is paid, as recorded when the invoice was issued (`Invoice::payment_means`,
/// from the account's payment method and credit at finalization): UNTDID 4461 code 48 (bank
/// card), 59 (SEPA direct debit), 97 (clearing between partners: the prepaid credit the buyer
/// already paid is set against the invoice), 1 (instrument not defined: no method on file, or
/// an invoice issued before the means were recorded, with the instruction it was issued
/// with). Nothing due (discounts or a zero invoice): no instruction (BG-16 is optional). BT-82
/// is the sentence the PDF prints (`PaymentMeans::information`).
fn payment_means(x: &mut Xml, inv: &Invoice) {
    if inv.amount_due.minor <= 0 {
        return;
    }
    let Some(code) = inv.payment_means.untdid_4461() else {
        return;
    };
    let info = inv
        .payment_means
        .information(inv.language, inv.sepa_mandate.as_deref());
    x.open("ram:SpecifiedTradeSettlementPaymentMeans");
    x.leaf("ram:TypeCode", code); // BT-81 (BR-49)
    if let Some(info) = info {
        x.leaf("ram:Information", &info); // BT-82
    }
    x.close("ram:SpecifiedTradeSettlementPaymentMeans");
}

/// Whether the invoice is collected by SEPA direct debit, with something due: the creditor
/// identifier (BT-90) and the mandate reference (BT-89) belong to it.
fn sepa_debit_due(inv: &Invoice) -> bool {
    inv.amount_due.minor > 0 && inv.payment_means == PaymentMeans::SepaDebit
}

/// BT-34 / BT-49: a party's electronic address with its scheme (BR-62, BR-63: the scheme is
/// required). The French CTC rules BR-FR-12/13 require both on every invoice.
fn electronic_address(x: &mut Xml, a: &ElectronicAddress) {
    x.open("ram:URIUniversalCommunication");
    x.leaf_attr("ram:URIID", "schemeID", &a.scheme, &a.id);
    x.close("ram:URIUniversalCommunication");
}

fn date(x: &mut Xml, tag: &str, d: NaiveDate) {
    x.open(tag);
    x.leaf_attr(
        "udt:DateTimeString",
        "format",
        "102",
        &d.format("%Y%m%d").to_string(),
    );
    x.close(tag);
}

/// An amount, two decimals (BR-DEC-*: at most two).
fn amount(m: Money) -> String {
    format_minor(m.minor)
}

/// A quantity or a price, exactly as the invoice holds it, without trailing zeros.
fn decimal(d: Decimal) -> String {
    d.normalize().to_string()
}

/// A VAT rate in percent, two decimals at most (BR-DEC-* does not bound it; `20`, `0`).
fn percent(d: Decimal) -> String {
    d.normalize().to_string()
}

/// A small XML writer: indented, escaped, nothing else.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn with_capacity(n: usize) -> Xml {
        Xml {
            out: String::with_capacity(n),
            depth: 1,
        }
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, tag: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{tag}>");
        self.depth += 1;
    }

    fn close(&mut self, tag: &str) {
        self.depth -= 1;
        self.indent();
        let _ = writeln!(self.out, "</{tag}>");
    }

    fn leaf(&mut self, tag: &str, text: &str) {
        self.indent();
        let _ = write!(self.out, "<{tag}>");
        escape(&mut self.out, text);
        let _ = writeln!(self.out, "</{tag}>");
    }

    fn leaf_attr(&mut self, tag: &str, attr: &str, value: &str, text: &str) {
        self.indent();
        let _ = write!(self.out, "<{tag} {attr}=\"");
        escape(&mut self.out, value);
        self.out.push_str("\">");
        escape(&mut self.out, text);
        let _ = writeln!(self.out, "</{tag}>");
    }
}

/// XML text escaping; characters XML 1.0 forbids (C0 controls but tab and newline) are
/// dropped.
fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_forbidden_controls() {
        let mut s = String::new();
        escape(&mut s, "A&B <c> \"d\"\u{1}é");
        assert_eq!(s, "A&amp;B &lt;c&gt; &quot;d&quot;é");
    }

    #[test]
    fn decimals_keep_their_value_without_trailing_zeros() {
        assert_eq!(decimal(Decimal::new(72000, 2)), "720");
        assert_eq!(decimal(Decimal::new(347, 4)), "0.0347");
        assert_eq!(amount(Money::eur(-5)), "-0.05");
    }

    // Credit notes (issue 22). The validators' verdict on them is tests/it/facturx.rs's.

    use crate::fixtures::{
        domestic_full_with_deduction, domestic_partial, export_outside_eu, reverse_charge_gesture,
        seller,
    };

    /// The texts of every `<tag>value</tag>`, in order.
    fn value<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        xml.match_indices(&open)
            .map(|(i, _)| {
                let rest = &xml[i + open.len()..];
                &rest[..rest.find(&close).unwrap()]
            })
            .collect()
    }

    #[test]
    fn a_credit_note_is_type_code_381_bt_3_with_its_invoice_as_bt_25_and_bt_26() {
        let xml = credit_note_to_xml(&domestic_partial(Language::Fr), &seller());
        // BT-1, BT-3 (UNTDID 1001: 381, credit note), BT-2.
        assert!(
            xml.contains("<ram:ID>AV-2026-000001</ram:ID>\n    <ram:TypeCode>381</ram:TypeCode>")
        );
        assert!(xml.contains("<udt:DateTimeString format=\"102\">20261115</udt:DateTimeString>"));
        // BG-3: BT-25 the invoice's number, BT-26 its issue date, after the totals (CII order).
        let reference = "<ram:InvoiceReferencedDocument>\n        \
                         <ram:IssuerAssignedID>2026-000001</ram:IssuerAssignedID>\n        \
                         <ram:FormattedIssueDateTime>\n          \
                         <qdt:DateTimeString format=\"102\">20261101</qdt:DateTimeString>";
        assert!(xml.contains(reference), "{xml}");
        assert!(
            xml.find("InvoiceReferencedDocument").unwrap()
                > xml
                    .find("SpecifiedTradeSettlementHeaderMonetarySummation")
                    .unwrap()
        );
        // The reference and the reason as notes (BT-22), as the PDF words them.
        assert!(xml.contains(
            "<ram:Content>Avoir sur la facture 2026-000001 du 1er novembre 2026</ram:Content>"
        ));
        assert!(xml.contains(
            "<ram:Content>Motif : Instance indisponible du 3 au 5 octobre</ram:Content>"
        ));
        // Nothing due from the buyer: no payment means, no late-payment notes.
        assert!(!xml.contains("PaymentMeans"));
        assert!(!xml.contains("PMD"));
        // Deterministic.
        assert_eq!(
            xml,
            credit_note_to_xml(&domestic_partial(Language::Fr), &seller())
        );
    }

    #[test]
    fn bg_13_dates_the_credited_service_bt_72_no_empty_element_peppol_en16931_r008() {
        let cn = domestic_partial(Language::Fr);
        let xml = credit_note_to_xml(&cn, &seller());
        // BT-72: the credited invoice's period's last day, the date format 102 (CCYYMMDD),
        // between the agreement and the settlement (CII order).
        let last_day = cn.invoice_period.last_day().format("%Y%m%d").to_string();
        let delivery = format!(
            "<ram:ApplicableHeaderTradeDelivery>\n      \
             <ram:ActualDeliverySupplyChainEvent>\n        \
             <ram:OccurrenceDateTime>\n          \
             <udt:DateTimeString format=\"102\">{last_day}</udt:DateTimeString>"
        );
        assert!(xml.contains(&delivery), "{xml}");
        assert!(
            xml.find("</ram:ApplicableHeaderTradeAgreement>").unwrap()
                < xml.find("<ram:ApplicableHeaderTradeDelivery>").unwrap()
                && xml.find("</ram:ApplicableHeaderTradeDelivery>").unwrap()
                    < xml.find("<ram:ApplicableHeaderTradeSettlement>").unwrap()
        );
        // No element is written empty.
        assert!(!xml.contains("/>"), "{xml}");
    }

    #[test]
    fn a_credited_line_is_one_unit_at_the_credited_amount_positive_br_27() {
        let xml = credit_note_to_xml(&domestic_partial(Language::En), &seller());
        assert_eq!(value(&xml, "ram:ChargeAmount"), ["10.00"]); // BT-146
        assert!(xml.contains("<ram:BilledQuantity unitCode=\"C62\">1</ram:BilledQuantity>"));
        // BT-131 then BT-106.
        assert_eq!(value(&xml, "ram:LineTotalAmount"), ["10.00", "10.00"]);
    }

    #[test]
    fn the_deduction_of_a_full_credit_is_a_document_level_allowance_br_27_br_co_11() {
        let cn = domestic_full_with_deduction(Language::Fr);
        let xml = credit_note_to_xml(&cn, &seller());
        // Two lines, both positive; the deduction is an allowance of 5.00 (BT-92), its reason
        // the line's words (BT-97), in the document's category and rate (BT-95, BT-96).
        assert_eq!(value(&xml, "ram:ChargeAmount"), ["14.88", "14.88"]);
        assert_eq!(value(&xml, "ram:ActualAmount"), ["5.00"]);
        assert_eq!(
            value(&xml, "ram:Reason"),
            ["Remises de la facture, déjà déduites"]
        );
        assert!(!xml.contains(">-"), "no negative amount: {xml}");
        // BT-106 = Σ lines (BR-CO-10), BT-107 = Σ allowances (BR-CO-11), BT-109 = BT-106 -
        // BT-107 (BR-CO-13) = the credit note's subtotal = BT-116.
        assert_eq!(value(&xml, "ram:LineTotalAmount")[2], "29.76");
        assert_eq!(value(&xml, "ram:AllowanceTotalAmount"), ["5.00"]);
        assert_eq!(value(&xml, "ram:TaxBasisTotalAmount"), ["24.76"]);
        assert_eq!(value(&xml, "ram:BasisAmount"), ["24.76"]);
        assert_eq!(value(&xml, "ram:CalculatedAmount"), ["4.95"]);
        assert_eq!(value(&xml, "ram:GrandTotalAmount"), ["29.71"]);
    }

    #[test]
    fn bt_115_is_the_total_and_bt_113_zero_br_co_16_whatever_the_refund() {
        for cn in [
            domestic_partial(Language::Fr),
            domestic_full_with_deduction(Language::Fr),
            export_outside_eu(Language::En),
        ] {
            let xml = credit_note_to_xml(&cn, &seller());
            let total = format_minor(cn.total.minor);
            assert_eq!(value(&xml, "ram:GrandTotalAmount"), [total.as_str()]);
            assert_eq!(value(&xml, "ram:TotalPrepaidAmount"), ["0.00"]);
            assert_eq!(value(&xml, "ram:DuePayableAmount"), [total.as_str()]);
            // BR-CO-25: BT-115 > 0, so payment terms (BT-20): the settlement, as the PDF.
            let terms = settlement_text(&cn);
            assert!(xml.contains(&format!("<ram:Description>{terms}</ram:Description>")));
        }
        let us = credit_note_to_xml(&export_outside_eu(Language::En), &seller());
        assert!(us.contains(
            "Deducted from the amount due on invoice 2026-000003: €10.00. \
             Refund to the payment method that paid the invoice: €10.00."
        ));
    }

    #[test]
    fn a_credit_note_reverses_vat_in_its_invoices_category_s_ae_g() {
        // S, 20 % (BR-S-05), no exemption.
        let xml = credit_note_to_xml(&domestic_partial(Language::Fr), &seller());
        assert_eq!(value(&xml, "ram:CategoryCode"), ["S", "S"]);
        assert_eq!(value(&xml, "ram:RateApplicablePercent"), ["20", "20"]);
        assert_eq!(value(&xml, "ram:CalculatedAmount"), ["2.00"]);
        assert!(!xml.contains("ExemptionReason"));

        // AE: rate 0, the buyer's VAT number (BR-AE-02), the mention and VATEX-EU-AE (BR-AE-10).
        let xml = credit_note_to_xml(&reverse_charge_gesture(Language::Fr), &seller());
        assert_eq!(value(&xml, "ram:CategoryCode"), ["AE", "AE"]);
        assert_eq!(value(&xml, "ram:RateApplicablePercent"), ["0", "0"]);
        assert_eq!(value(&xml, "ram:ExemptionReasonCode"), ["VATEX-EU-AE"]);
        assert!(xml.contains("<ram:ID schemeID=\"VA\">DE123456789</ram:ID>"));
        assert!(xml.contains("<ram:ExemptionReason>Autoliquidation"));
        assert_eq!(value(&xml, "ram:Name")[0], "Geste commercial");

        // G: export outside the EU, the seller's VAT number kept (BR-G-02), VATEX-EU-G.
        let xml = credit_note_to_xml(&export_outside_eu(Language::En), &seller());
        assert_eq!(value(&xml, "ram:CategoryCode"), ["G", "G"]);
        assert_eq!(value(&xml, "ram:ExemptionReasonCode"), ["VATEX-EU-G"]);
        assert!(xml.contains("article 259-1"), "the PDF's mention");
        assert!(xml.contains("FR32912345678"));
    }

    #[test]
    fn snapshot_credit_note_xml_full_credit_fr() {
        insta::assert_snapshot!(credit_note_to_xml(
            &domestic_full_with_deduction(Language::Fr),
            &seller()
        ));
    }
}
