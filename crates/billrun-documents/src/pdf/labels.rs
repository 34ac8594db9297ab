//! The documents' fixed wording in each language (the invoice's and the credit note's).

use billrun_core::locale::Language;

pub(super) struct Labels {
    pub(super) invoice: &'static str,
    pub(super) number: &'static str,
    pub(super) issue_date: &'static str,
    pub(super) due_date: &'static str,
    pub(super) period: &'static str,
    pub(super) continued: &'static str,
    pub(super) billed_to: &'static str,
    pub(super) siren: &'static str,
    pub(super) siret: &'static str,
    pub(super) vat_number: &'static str,
    /// Before the VIES consultation number of a reverse-charge invoice.
    pub(super) vies_checked: &'static str,
    pub(super) col_description: &'static [&'static str],
    pub(super) col_quantity: &'static [&'static str],
    pub(super) col_unit_price: &'static [&'static str],
    pub(super) col_amount: &'static [&'static str],
    pub(super) referral_discount: &'static str,
    pub(super) subtotal: &'static str,
    pub(super) discount_total: &'static str,
    pub(super) total: &'static str,
    pub(super) balance_brought_forward: &'static str,
    pub(super) credit_applied: &'static str,
    pub(super) amount_paid: &'static str,
    pub(super) amount_due: &'static str,
    pub(super) payment_heading: &'static str,
    pub(super) no_early_discount: &'static str,
    pub(super) bank_transfer: &'static str,
    /// Before the payment means recorded at issue (EN 16931 BG-16, the XML's BT-82).
    pub(super) payment_means: &'static str,
    /// Before the SEPA creditor identifier (BT-90) of a SEPA debit invoice.
    pub(super) creditor_id: &'static str,
    pub(super) page: &'static str,
    pub(super) credit_note: &'static str,
    /// The credited invoice's issue date, among the credit note's facts.
    pub(super) invoice_date: &'static str,
    /// Above the buyer's box on a credit note.
    pub(super) customer: &'static str,
    pub(super) reason: &'static str,
    pub(super) credit_note_total: &'static str,
    pub(super) settlement_heading: &'static str,
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
    payment_means: "Moyen de paiement",
    creditor_id: "ICS (identifiant créancier SEPA)",
    page: "Page",
    credit_note: "Avoir",
    invoice_date: "Date de la facture",
    customer: "Client",
    reason: "Motif",
    credit_note_total: "Total de l'avoir TTC",
    settlement_heading: "Règlement de l'avoir",
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
    payment_means: "Payment means",
    creditor_id: "SEPA creditor identifier",
    page: "Page",
    credit_note: "Credit note",
    invoice_date: "Invoice date",
    customer: "Customer",
    reason: "Reason",
    credit_note_total: "Total incl. VAT",
    settlement_heading: "Settlement of the credit note",
};

pub(super) fn labels(lang: Language) -> &'static Labels {
    match lang {
        Language::Fr => &FR,
        Language::En => &EN,
    }
}

/// "label : value" in French typography, "label: value" in English.
pub(super) fn colon(lang: Language, label: &str, value: &str) -> String {
    match lang {
        Language::Fr => format!("{label} : {value}"),
        Language::En => format!("{label}: {value}"),
    }
}
