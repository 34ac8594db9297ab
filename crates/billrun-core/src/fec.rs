//! The *fichier des écritures comptables* (FEC): the ledger a French company hands to a tax
//! audit (article L47 A-I of the Livre des procédures fiscales), in the layout of article
//! A47 A-1 of the LPF: 18 columns in a fixed order, tab-separated, a header line, dates
//! `YYYYMMDD`, amounts with a comma decimal. Pure: billrun's accounting events in, the
//! entries' lines out.
//!
//! One entry (`EcritureNum`) per accounting event, each balanced (Σ debit = Σ credit), numbered
//! 1, 2, 3… without gaps in date order:
//! - an invoice (sales journal): customer account 411 (the billrun account as auxiliary) debit
//!   of the total incl. VAT; referral discounts 709 debit; revenue 706… credit of the subtotal
//!   (one account per VAT case); VAT collected 44571… credit;
//! - a card or SEPA payment through Stripe: Stripe's clearing account debit, 411 credit;
//! - a prepaid credit purchase (PayPal): its clearing account debit, customer advances 4191
//!   credit. Prepaid credit buys any of the platform's services, in any member state: a
//!   multi-purpose voucher (article 30 bis of Directive 2006/112/EC, article 256 ter of the CGI),
//!   so no VAT when it is bought; the VAT is on the invoice it pays;
//! - prepaid credit used on an invoice: 4191 debit, 411 credit;
//! - a balance below Stripe's minimum waived when an account closes: 658 debit, 411 credit;
//! - a credit note (*avoir*, article 272-1 of the CGI; issue 22), sales journal, its own number
//!   as `PieceRef`: the invoice's entry the other way round, on the accounts its invoice used
//!   (its VAT case): revenue 706… debit of what it credits, VAT 44571… debit of its VAT, 411
//!   credit of its total; the share of the invoice's referral discount a full credit note gives
//!   back goes to 709 credit (the 706 debit then is its lines' amount before it);
//! - a refund through Stripe (card or SEPA, once it succeeded): 411 debit, Stripe's clearing
//!   account credit (Stripe takes it from the balance it pays out, where the payment went);
//! - a credit note given back to the prepaid credit: 411 debit, 4191 credit (also a failed
//!   refund through Stripe the operator gave to the credit instead, on the day they did).
//!
//! A balance carried to the account's next invoice needs no entry (it stays on the same 411
//! auxiliary account) but joins the two invoices' lettering. Lettering (`EcritureLet`,
//! `DateLet`): the 411 lines of an invoice, of the invoices whose balances it took over, of
//! what paid it, of its credit notes and of their refunds share a code once they net to zero
//! (an unpaid invoice fully credited is lettered with its credit note); `DateLet` is the date
//! of the last of them. What a credit note says was refunded outside billrun (`--refund none`,
//! or a failed refund re-routed `--to none`) has no entry here: the bank's statement is the accountant's; until it is booked the
//! invoice's 411 lines are not lettered. A referral reward is booked only when used (709 on the
//! invoice it discounts), so its reduction by a credit note needs no entry.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::vat::VatCase;

/// The 18 columns of article A47 A-1 of the LPF, in their order.
pub const COLUMNS: [&str; 18] = [
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
];

/// The chart of accounts and journals (`accounting.toml`, which an accountant edits).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    pub journals: Journals,
    pub accounts: Accounts,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Journals {
    /// Invoices.
    pub sales: Journal,
    /// Card and SEPA payments through Stripe.
    pub stripe: Journal,
    /// Prepaid credit bought (PayPal).
    pub prepaid: Journal,
    /// Prepaid credit used, balances waived.
    pub misc: Journal,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub code: String,
    pub label: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub number: String,
    pub label: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    /// 411: customers (the billrun account is the auxiliary account).
    pub customers: Account,
    /// 4191: advances received from customers (prepaid credit).
    pub customer_advances: Account,
    /// 709: discounts granted (referral rewards).
    pub discounts: Account,
    /// Card and SEPA payments until Stripe pays them out (511… or 467…).
    pub stripe_clearing: Account,
    /// Prepaid credit bought through PayPal until PayPal pays it out.
    pub prepaid_clearing: Account,
    /// 658: balances below Stripe's minimum waived when an account closes.
    pub waived: Account,
    /// 706…: revenue, one account per VAT case.
    pub revenue: PerCase,
    /// 44571…: VAT collected.
    pub vat: VatAccounts,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PerCase {
    pub domestic: Account,
    pub eu_consumer: Account,
    pub reverse_charge: Account,
    pub out_of_scope: Account,
}

impl PerCase {
    fn of(&self, case: VatCase) -> &Account {
        match case {
            VatCase::Domestic => &self.domestic,
            VatCase::EuConsumer => &self.eu_consumer,
            VatCase::ReverseCharge => &self.reverse_charge,
            VatCase::OutOfScope => &self.out_of_scope,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VatAccounts {
    /// French VAT (article 278 of the CGI).
    pub domestic: Account,
    /// VAT of other member states, due through the OSS return.
    pub eu_consumer: Account,
}

/// The customer an event concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub account_id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayMethod {
    Card,
    SepaDebit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Invoice {
        invoice_id: i64,
        number: String,
        case: VatCase,
        subtotal_minor: i64,
        discount_minor: i64,
        vat_minor: i64,
        total_minor: i64,
        /// Earlier invoices whose small balances this one took over.
        brought_forward_from: Vec<i64>,
    },
    Payment {
        invoice_id: i64,
        invoice_number: String,
        method: PayMethod,
        amount_minor: i64,
        /// The payment's reference (Stripe's PaymentIntent id, else the attempt's key).
        reference: String,
    },
    CreditPurchase {
        amount_minor: i64,
        /// The PayPal transaction id.
        reference: String,
    },
    CreditUse {
        invoice_id: i64,
        invoice_number: String,
        amount_minor: i64,
        reference: String,
    },
    Waiver {
        invoice_id: i64,
        invoice_number: String,
        amount_minor: i64,
    },
    /// A credit note issued: the invoice's entry reversed by what it credits.
    CreditNote {
        invoice_id: i64,
        invoice_number: String,
        /// `AV-2026-000001`.
        number: String,
        /// The invoice's VAT case (the credit note's is the same).
        case: VatCase,
        /// What it credits excluding VAT (its lines, the deduction included).
        subtotal_minor: i64,
        /// Its `deduction` lines, positive: on a full credit note, the invoice's referral
        /// discount (and gestures credited before), deducted from its lines.
        deduction_minor: i64,
        /// The invoice's referral discount: the most of the deduction that goes to 709.
        invoice_discount_minor: i64,
        vat_minor: i64,
        total_minor: i64,
    },
    /// A credit note's refund through Stripe that succeeded.
    GatewayRefund {
        invoice_id: i64,
        invoice_number: String,
        credit_note_number: String,
        /// How the refunded payment was made.
        method: PayMethod,
        amount_minor: i64,
        /// Stripe's refund id, else the refund's idempotency key.
        reference: String,
    },
    /// A credit note given back to the account's prepaid credit.
    CreditRefund {
        invoice_id: i64,
        invoice_number: String,
        credit_note_number: String,
        amount_minor: i64,
        /// The credit ledger row's reference.
        reference: String,
    },
}

impl EventKind {
    /// Order of events at the same instant: an invoice before what pays it.
    fn rank(&self) -> u8 {
        match self {
            EventKind::Invoice { .. } => 0,
            EventKind::CreditPurchase { .. } => 1,
            EventKind::CreditUse { .. } => 2,
            EventKind::Payment { .. } => 3,
            EventKind::Waiver { .. } => 4,
            EventKind::CreditNote { .. } => 5,
            EventKind::CreditRefund { .. } => 6,
            EventKind::GatewayRefund { .. } => 7,
        }
    }
}

/// One accounting event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub party: Party,
    /// Orders events of the same kind at the same instant (the row's id in its table).
    pub tie: i64,
    pub kind: EventKind,
}

/// One line of the FEC: the 18 columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FecLine {
    pub journal_code: String,
    pub journal_lib: String,
    pub ecriture_num: u64,
    pub ecriture_date: NaiveDate,
    pub compte_num: String,
    pub compte_lib: String,
    pub comp_aux_num: String,
    pub comp_aux_lib: String,
    pub piece_ref: String,
    pub piece_date: NaiveDate,
    pub ecriture_lib: String,
    pub debit_minor: i64,
    pub credit_minor: i64,
    pub ecriture_let: String,
    pub date_let: Option<NaiveDate>,
    pub valid_date: NaiveDate,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FecError {
    #[error("invoice {number}: {case} invoices carry no VAT, but this one has {vat_minor} cents")]
    UnexpectedVat {
        number: String,
        case: &'static str,
        vat_minor: i64,
    },
    #[error(
        "credit note {number}: {case} credit notes carry no VAT, but this one has {vat_minor} cents"
    )]
    UnexpectedCreditVat {
        number: String,
        case: &'static str,
        vat_minor: i64,
    },
    #[error("entry {0} does not balance")]
    Unbalanced(u64),
}

/// The amounts of a sales entry: what the customer owes in all (`total`), the referral
/// discount (709), the revenue before it (706…) and the VAT (44571…).
struct Sale {
    total: i64,
    discount: i64,
    revenue: i64,
    vat: i64,
}

/// One line of a sales entry, as an invoice books it.
struct SaleLine<'a> {
    account: &'a Account,
    /// Names the customer (411's auxiliary account).
    aux: bool,
    lib: String,
    amount: i64,
    /// An invoice debits this line (the customer, the discount) or credits it (revenue, VAT).
    debit: bool,
}

impl SaleLine<'_> {
    /// (debit, credit) as an invoice books the line; a credit note swaps them.
    fn invoice_side(&self) -> (i64, i64) {
        if self.debit {
            (self.amount, 0)
        } else {
            (0, self.amount)
        }
    }
}

impl Sale {
    /// The entry's lines in order: the customer first (always), then the discount, the revenue
    /// and the VAT, each only when above zero. `None`: VAT on a case that carries none
    /// (reverse charge: art. 283-2 of the CGI; outside the EU: art. 259-1 and 259 B).
    fn lines<'a>(&self, a: &'a Accounts, case: VatCase, lib: &str) -> Option<Vec<SaleLine<'a>>> {
        let line = |account, aux, lib: String, amount, debit| SaleLine {
            account,
            aux,
            lib,
            amount,
            debit,
        };
        let mut out = vec![line(&a.customers, true, lib.to_string(), self.total, true)];
        if self.discount > 0 {
            out.push(line(
                &a.discounts,
                false,
                format!("{lib} remise parrainage"),
                self.discount,
                true,
            ));
        }
        if self.revenue > 0 {
            out.push(line(
                a.revenue.of(case),
                false,
                lib.to_string(),
                self.revenue,
                false,
            ));
        }
        if self.vat > 0 {
            let vat_account = match case {
                VatCase::Domestic => &a.vat.domestic,
                VatCase::EuConsumer => &a.vat.eu_consumer,
                VatCase::ReverseCharge | VatCase::OutOfScope => return None,
            };
            out.push(line(
                vat_account,
                false,
                format!("{lib} TVA"),
                self.vat,
                false,
            ));
        }
        Some(out)
    }
}

/// The entries of the events, numbered in date order, lettered. Events outside `year` are the
/// caller's to leave out.
pub fn entries(chart: &Chart, events: &[Event]) -> Result<Vec<FecLine>, FecError> {
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|e| (e.at, e.kind.rank(), e.tie));
    let a = &chart.accounts;
    let j = &chart.journals;
    let mut lines: Vec<FecLine> = Vec::new();
    // For lettering: the 411 lines' indices, by the invoice they settle.
    let mut customer_lines: Vec<(usize, i64)> = Vec::new();
    let mut links: Vec<(i64, i64)> = Vec::new();
    for (n, e) in order.iter().enumerate() {
        let num = n as u64 + 1;
        let date = e.at.date_naive();
        let start = lines.len();
        let mut push = |journal: &Journal,
                        account: &Account,
                        aux: bool,
                        piece: &str,
                        lib: String,
                        debit: i64,
                        credit: i64| {
            lines.push(FecLine {
                journal_code: journal.code.clone(),
                journal_lib: journal.label.clone(),
                ecriture_num: num,
                ecriture_date: date,
                compte_num: account.number.clone(),
                compte_lib: account.label.clone(),
                comp_aux_num: if aux {
                    e.party.account_id.clone()
                } else {
                    String::new()
                },
                comp_aux_lib: if aux {
                    e.party.name.clone()
                } else {
                    String::new()
                },
                piece_ref: piece.to_string(),
                piece_date: date,
                ecriture_lib: lib,
                debit_minor: debit,
                credit_minor: credit,
                ecriture_let: String::new(),
                date_let: None,
                // billrun's records are final when written: the entry is validated on its date.
                valid_date: date,
            });
            lines.len() - 1
        };
        match &e.kind {
            EventKind::Invoice {
                invoice_id,
                number,
                case,
                subtotal_minor,
                discount_minor,
                vat_minor,
                total_minor,
                brought_forward_from,
            } => {
                let lib = format!("Facture {number}");
                let sale = Sale {
                    total: *total_minor,
                    discount: *discount_minor,
                    revenue: *subtotal_minor,
                    vat: *vat_minor,
                };
                let lines = sale
                    .lines(a, *case, &lib)
                    .ok_or_else(|| FecError::UnexpectedVat {
                        number: number.clone(),
                        case: case.as_str(),
                        vat_minor: *vat_minor,
                    })?;
                for (k, l) in lines.into_iter().enumerate() {
                    let (debit, credit) = l.invoice_side();
                    let i = push(&j.sales, l.account, l.aux, number, l.lib, debit, credit);
                    if k == 0 {
                        customer_lines.push((i, *invoice_id));
                    }
                }
                links.extend(brought_forward_from.iter().map(|f| (*f, *invoice_id)));
            }
            EventKind::Payment {
                invoice_id,
                invoice_number,
                method,
                amount_minor,
                reference,
            } => {
                let lib = match method {
                    PayMethod::Card => format!("Paiement carte facture {invoice_number}"),
                    PayMethod::SepaDebit => {
                        format!("Prélèvement SEPA facture {invoice_number}")
                    }
                };
                push(
                    &j.stripe,
                    &a.stripe_clearing,
                    false,
                    reference,
                    lib.clone(),
                    *amount_minor,
                    0,
                );
                let i = push(
                    &j.stripe,
                    &a.customers,
                    true,
                    reference,
                    lib,
                    0,
                    *amount_minor,
                );
                customer_lines.push((i, *invoice_id));
            }
            EventKind::CreditPurchase {
                amount_minor,
                reference,
            } => {
                let lib = "Achat de crédit prépayé".to_string();
                push(
                    &j.prepaid,
                    &a.prepaid_clearing,
                    false,
                    reference,
                    lib.clone(),
                    *amount_minor,
                    0,
                );
                push(
                    &j.prepaid,
                    &a.customer_advances,
                    true,
                    reference,
                    lib,
                    0,
                    *amount_minor,
                );
            }
            EventKind::CreditUse {
                invoice_id,
                invoice_number,
                amount_minor,
                reference,
            } => {
                let lib = format!("Crédit prépayé imputé sur facture {invoice_number}");
                push(
                    &j.misc,
                    &a.customer_advances,
                    true,
                    reference,
                    lib.clone(),
                    *amount_minor,
                    0,
                );
                let i = push(
                    &j.misc,
                    &a.customers,
                    true,
                    reference,
                    lib,
                    0,
                    *amount_minor,
                );
                customer_lines.push((i, *invoice_id));
            }
            EventKind::Waiver {
                invoice_id,
                invoice_number,
                amount_minor,
            } => {
                let lib = format!("Solde inférieur au minimum abandonné, facture {invoice_number}");
                push(
                    &j.misc,
                    &a.waived,
                    false,
                    invoice_number,
                    lib.clone(),
                    *amount_minor,
                    0,
                );
                let i = push(
                    &j.misc,
                    &a.customers,
                    true,
                    invoice_number,
                    lib,
                    0,
                    *amount_minor,
                );
                customer_lines.push((i, *invoice_id));
            }
            EventKind::CreditNote {
                invoice_id,
                invoice_number,
                number,
                case,
                subtotal_minor,
                deduction_minor,
                invoice_discount_minor,
                vat_minor,
                total_minor,
            } => {
                // Article 272-1 of the CGI: the credit note reverses its invoice's entry, on
                // the same accounts, line for line. The discount given back is what the
                // invoice put on 709, never more (the rest of a deduction is gestures already
                // credited on 706).
                let discount = (*deduction_minor).min(*invoice_discount_minor).max(0);
                let lib = format!("Avoir {number} sur facture {invoice_number}");
                let sale = Sale {
                    total: *total_minor,
                    discount,
                    revenue: subtotal_minor.saturating_add(discount),
                    vat: *vat_minor,
                };
                let lines =
                    sale.lines(a, *case, &lib)
                        .ok_or_else(|| FecError::UnexpectedCreditVat {
                            number: number.clone(),
                            case: case.as_str(),
                            vat_minor: *vat_minor,
                        })?;
                for (k, l) in lines.into_iter().enumerate() {
                    let (debit, credit) = l.invoice_side();
                    // Reversed: what the invoice debited, the credit note credits.
                    let i = push(&j.sales, l.account, l.aux, number, l.lib, credit, debit);
                    if k == 0 {
                        customer_lines.push((i, *invoice_id));
                    }
                }
            }
            EventKind::GatewayRefund {
                invoice_id,
                invoice_number,
                credit_note_number,
                method,
                amount_minor,
                reference,
            } => {
                let lib = match method {
                    PayMethod::Card => format!(
                        "Remboursement carte avoir {credit_note_number} facture {invoice_number}"
                    ),
                    PayMethod::SepaDebit => format!(
                        "Remboursement prélèvement SEPA avoir {credit_note_number} facture {invoice_number}"
                    ),
                };
                let i = push(
                    &j.stripe,
                    &a.customers,
                    true,
                    reference,
                    lib.clone(),
                    *amount_minor,
                    0,
                );
                customer_lines.push((i, *invoice_id));
                push(
                    &j.stripe,
                    &a.stripe_clearing,
                    false,
                    reference,
                    lib,
                    0,
                    *amount_minor,
                );
            }
            EventKind::CreditRefund {
                invoice_id,
                invoice_number,
                credit_note_number,
                amount_minor,
                reference,
            } => {
                let lib = format!(
                    "Avoir {credit_note_number} rendu en crédit prépayé, facture {invoice_number}"
                );
                let i = push(
                    &j.misc,
                    &a.customers,
                    true,
                    reference,
                    lib.clone(),
                    *amount_minor,
                    0,
                );
                customer_lines.push((i, *invoice_id));
                push(
                    &j.misc,
                    &a.customer_advances,
                    true,
                    reference,
                    lib,
                    0,
                    *amount_minor,
                );
            }
        }
        let (d, c) = lines[start..].iter().fold((0i128, 0i128), |(d, c), l| {
            (
                d + i128::from(l.debit_minor),
                c + i128::from(l.credit_minor),
            )
        });
        if d != c {
            return Err(FecError::Unbalanced(num));
        }
    }
    letter(&mut lines, &customer_lines, &links);
    Ok(lines)
}

/// Letters the 411 lines: those of invoices linked by carried balances, and of what paid them,
/// share a code once they net to zero.
fn letter(lines: &mut [FecLine], customer_lines: &[(usize, i64)], links: &[(i64, i64)]) {
    // Union-find over invoice ids.
    let mut parent: HashMap<i64, i64> = HashMap::new();
    fn root(parent: &mut HashMap<i64, i64>, x: i64) -> i64 {
        let p = *parent.entry(x).or_insert(x);
        if p == x {
            return x;
        }
        let r = root(parent, p);
        parent.insert(x, r);
        r
    }
    for &(a, b) in links {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent.insert(ra.max(rb), ra.min(rb));
        }
    }
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for &(i, inv) in customer_lines {
        groups.entry(root(&mut parent, inv)).or_default().push(i);
    }
    // Codes in the order the groups were settled.
    let mut settled: Vec<(NaiveDate, usize, Vec<usize>)> = groups
        .into_values()
        .filter(|g| g.len() > 1)
        .filter(|g| {
            let net: i128 = g
                .iter()
                .map(|&i| i128::from(lines[i].debit_minor) - i128::from(lines[i].credit_minor))
                .sum();
            let debits: i128 = g.iter().map(|&i| i128::from(lines[i].debit_minor)).sum();
            net == 0 && debits > 0
        })
        .map(|g| {
            let last = g.iter().map(|&i| lines[i].ecriture_date).max();
            let first = *g.iter().min().expect("a group has lines");
            (last.expect("a group has lines"), first, g)
        })
        .collect();
    settled.sort_by_key(|(d, first, _)| (*d, *first));
    for (n, (date, _, group)) in settled.into_iter().enumerate() {
        let code = letter_code(n);
        for i in group {
            lines[i].ecriture_let = code.clone();
            lines[i].date_let = Some(date);
        }
    }
}

/// `A`, `B`, … `Z`, `AA`, `AB`, …
pub fn letter_code(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII")
}

/// The file's name: `<SIREN>FEC<YYYYMMDD>` (the closing date of the financial year), then the
/// extension (article A47 A-1 of the LPF).
pub fn file_name(siren: &str, closing: NaiveDate, extension: &str) -> String {
    let siren: String = siren.chars().filter(char::is_ascii_digit).collect();
    format!("{siren}FEC{}.{extension}", closing.format("%Y%m%d"))
}

/// An amount as the FEC writes it: `1234,56`.
pub fn amount_text(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{},{:02}", m / 100, m % 100)
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// A text field without the separators of either format (a tab or a line break would cut a
/// line in two).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl FecLine {
    /// The 18 fields, in the order of [`COLUMNS`].
    pub fn fields(&self) -> [String; 18] {
        [
            clean(&self.journal_code),
            clean(&self.journal_lib),
            self.ecriture_num.to_string(),
            date_text(self.ecriture_date),
            clean(&self.compte_num),
            clean(&self.compte_lib),
            clean(&self.comp_aux_num),
            clean(&self.comp_aux_lib),
            clean(&self.piece_ref),
            date_text(self.piece_date),
            clean(&self.ecriture_lib),
            amount_text(self.debit_minor),
            amount_text(self.credit_minor),
            clean(&self.ecriture_let),
            self.date_let.map(date_text).unwrap_or_default(),
            date_text(self.valid_date),
            // Every amount is in euros, the accounts' currency: no foreign amount.
            String::new(),
            String::new(),
        ]
    }
}

/// The FEC text: the header line, then a line per entry line, tab-separated, CRLF-free.
pub fn to_fec_text(lines: &[FecLine]) -> String {
    let mut out = COLUMNS.join("\t");
    out.push('\n');
    for l in lines {
        out.push_str(&l.fields().join("\t"));
        out.push('\n');
    }
    out
}

/// The same entries as CSV (RFC 4180: comma-separated, quoted where needed).
pub fn to_csv_text(lines: &[FecLine]) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for l in lines {
        w.write_record(l.fields())?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("UTF-8 fields"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn chart() -> Chart {
        toml::from_str(include_str!("../../../jobs/accounting.toml")).unwrap()
    }

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    fn party() -> Party {
        Party {
            account_id: "acc-1".into(),
            name: "Alice".into(),
        }
    }

    #[test]
    fn letter_codes_count_in_base_26() {
        assert_eq!(letter_code(0), "A");
        assert_eq!(letter_code(25), "Z");
        assert_eq!(letter_code(26), "AA");
        assert_eq!(letter_code(27), "AB");
        assert_eq!(letter_code(26 + 26 * 26), "AAA");
    }

    #[test]
    fn fec_article_a47_a_1_lpf_amounts_and_file_name() {
        assert_eq!(amount_text(123456), "1234,56");
        assert_eq!(amount_text(5), "0,05");
        assert_eq!(amount_text(0), "0,00");
        assert_eq!(
            file_name(
                "812 345 676",
                NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
                "txt"
            ),
            "812345676FEC20261231.txt"
        );
    }

    #[test]
    fn fec_article_a47_a_1_lpf_invoice_paid_by_credit_and_card_is_balanced_and_lettered() {
        let events = vec![
            Event {
                at: at(1, 7),
                party: party(),
                tie: 1,
                kind: EventKind::Payment {
                    invoice_id: 10,
                    invoice_number: "2026-000010".into(),
                    method: PayMethod::Card,
                    amount_minor: 1000,
                    reference: "pi_1".into(),
                },
            },
            Event {
                at: at(1, 6),
                party: party(),
                tie: 10,
                kind: EventKind::Invoice {
                    invoice_id: 10,
                    number: "2026-000010".into(),
                    case: VatCase::Domestic,
                    subtotal_minor: 1100,
                    discount_minor: 100,
                    vat_minor: 200,
                    total_minor: 1200,
                    brought_forward_from: vec![],
                },
            },
            Event {
                at: at(1, 7),
                party: party(),
                tie: 1,
                kind: EventKind::CreditUse {
                    invoice_id: 10,
                    invoice_number: "2026-000010".into(),
                    amount_minor: 200,
                    reference: "invoice:10:1".into(),
                },
            },
        ];
        let lines = entries(&chart(), &events).unwrap();
        let nums: Vec<u64> = lines.iter().map(|l| l.ecriture_num).collect();
        assert_eq!(nums, [1, 1, 1, 1, 2, 2, 3, 3]);
        assert_eq!(lines[0].compte_num, "411000");
        assert_eq!(lines[0].debit_minor, 1200);
        assert_eq!(lines[1].compte_num, "709000");
        assert_eq!(lines[4].journal_code, chart().journals.misc.code);
        let lettered: Vec<&str> = lines
            .iter()
            .filter(|l| l.compte_num == "411000")
            .map(|l| l.ecriture_let.as_str())
            .collect();
        assert_eq!(lettered, ["A", "A", "A"]);
        assert!(
            lines
                .iter()
                .filter(|l| l.compte_num != "411000")
                .all(|l| l.ecriture_let.is_empty())
        );
        let text = to_fec_text(&lines);
        assert!(text.starts_with("JournalCode\tJournalLib\tEcritureNum\t"));
        assert!(text.lines().all(|l| l.split('\t').count() == 18));
    }

    #[test]
    fn fec_article_a47_a_1_lpf_a_partly_paid_invoice_is_not_lettered() {
        let events = vec![
            Event {
                at: at(1, 6),
                party: party(),
                tie: 10,
                kind: EventKind::Invoice {
                    invoice_id: 10,
                    number: "2026-000010".into(),
                    case: VatCase::OutOfScope,
                    subtotal_minor: 1000,
                    discount_minor: 0,
                    vat_minor: 0,
                    total_minor: 1000,
                    brought_forward_from: vec![],
                },
            },
            Event {
                at: at(2, 6),
                party: party(),
                tie: 1,
                kind: EventKind::CreditUse {
                    invoice_id: 10,
                    invoice_number: "2026-000010".into(),
                    amount_minor: 400,
                    reference: "invoice:10:1".into(),
                },
            },
        ];
        let lines = entries(&chart(), &events).unwrap();
        assert!(lines.iter().all(|l| l.ecriture_let.is_empty()));
    }

    fn invoice(id: i64, day: u32, total: i64, from: Vec<i64>) -> Event {
        Event {
            at: at(day, 6),
            party: party(),
            tie: id,
            kind: EventKind::Invoice {
                invoice_id: id,
                number: format!("2026-{id:06}"),
                case: VatCase::OutOfScope,
                subtotal_minor: total,
                discount_minor: 0,
                vat_minor: 0,
                total_minor: total,
                brought_forward_from: from,
            },
        }
    }

    #[test]
    fn fec_article_a47_a_1_lpf_a_carried_balance_letters_both_invoices_with_the_payment() {
        let events = vec![
            invoice(1, 1, 30, vec![]),
            invoice(2, 20, 1000, vec![1]),
            Event {
                at: at(20, 7),
                party: party(),
                tie: 5,
                kind: EventKind::Payment {
                    invoice_id: 2,
                    invoice_number: "2026-000002".into(),
                    method: PayMethod::SepaDebit,
                    amount_minor: 1030,
                    reference: "pi_2".into(),
                },
            },
            // A closing account's last cents: waived, lettered with its invoice.
            invoice(3, 21, 1000, vec![]),
            Event {
                at: at(22, 7),
                party: party(),
                tie: 7,
                kind: EventKind::CreditUse {
                    invoice_id: 3,
                    invoice_number: "2026-000003".into(),
                    amount_minor: 990,
                    reference: "invoice:3:1".into(),
                },
            },
            Event {
                at: at(22, 7),
                party: party(),
                tie: 3,
                kind: EventKind::Waiver {
                    invoice_id: 3,
                    invoice_number: "2026-000003".into(),
                    amount_minor: 10,
                },
            },
        ];
        let lines = entries(&chart(), &events).unwrap();
        let customer: Vec<(&str, i64, i64, &str)> = lines
            .iter()
            .filter(|l| l.compte_num == "411000")
            .map(|l| {
                (
                    l.piece_ref.as_str(),
                    l.debit_minor,
                    l.credit_minor,
                    l.ecriture_let.as_str(),
                )
            })
            .collect();
        assert_eq!(
            customer,
            [
                ("2026-000001", 30, 0, "A"),
                ("2026-000002", 1000, 0, "A"),
                ("pi_2", 0, 1030, "A"),
                ("2026-000003", 1000, 0, "B"),
                ("invoice:3:1", 0, 990, "B"),
                ("2026-000003", 0, 10, "B"),
            ]
        );
        let date_let: Vec<Option<NaiveDate>> = lines
            .iter()
            .filter(|l| l.compte_num == "411000")
            .map(|l| l.date_let)
            .collect();
        assert_eq!(date_let[0], Some(at(20, 0).date_naive()));
        assert_eq!(date_let[5], Some(at(22, 0).date_naive()));
        assert!(
            lines
                .iter()
                .any(|l| l.compte_num == "658000" && l.debit_minor == 10)
        );
        assert_eq!(lines.last().unwrap().ecriture_num, 6);
    }

    #[test]
    fn vat_on_a_reverse_charge_invoice_is_refused() {
        let events = vec![Event {
            at: at(1, 6),
            party: party(),
            tie: 10,
            kind: EventKind::Invoice {
                invoice_id: 10,
                number: "2026-000010".into(),
                case: VatCase::ReverseCharge,
                subtotal_minor: 1000,
                discount_minor: 0,
                vat_minor: 10,
                total_minor: 1010,
                brought_forward_from: vec![],
            },
        }];
        assert!(matches!(
            entries(&chart(), &events),
            Err(FecError::UnexpectedVat { .. })
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn credit_note(
        invoice_id: i64,
        n: u32,
        day: u32,
        case: VatCase,
        subtotal: i64,
        deduction: i64,
        invoice_discount: i64,
        vat: i64,
    ) -> Event {
        Event {
            at: at(day, 9),
            party: party(),
            tie: i64::from(n),
            kind: EventKind::CreditNote {
                invoice_id,
                invoice_number: format!("2026-{invoice_id:06}"),
                number: format!("AV-2026-{n:06}"),
                case,
                subtotal_minor: subtotal,
                deduction_minor: deduction,
                invoice_discount_minor: invoice_discount,
                vat_minor: vat,
                total_minor: subtotal + vat,
            },
        }
    }

    fn domestic_invoice(id: i64, day: u32) -> Event {
        // Lines 1100, referral discount 100, VAT 20 % on 1000.
        Event {
            at: at(day, 6),
            party: party(),
            tie: id,
            kind: EventKind::Invoice {
                invoice_id: id,
                number: format!("2026-{id:06}"),
                case: VatCase::Domestic,
                subtotal_minor: 1100,
                discount_minor: 100,
                vat_minor: 200,
                total_minor: 1200,
                brought_forward_from: vec![],
            },
        }
    }

    /// Σ(debit − credit) per account number.
    fn balances(lines: &[FecLine]) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for l in lines {
            *out.entry(l.compte_num.clone()).or_default() += l.debit_minor - l.credit_minor;
        }
        out
    }

    #[test]
    fn fec_article_a47_a_1_lpf_cgi_272_1_a_full_credit_note_reverses_its_unpaid_invoice_and_letters_it()
     {
        let events = vec![
            domestic_invoice(10, 1),
            // Full: the lines' 1100, less the discount's 100 deducted; VAT 200.
            credit_note(10, 1, 3, VatCase::Domestic, 1000, 100, 100, 200),
        ];
        let lines = entries(&chart(), &events).unwrap();
        let cn: Vec<(&str, &str, &str, i64, i64)> = lines
            .iter()
            .filter(|l| l.ecriture_num == 2)
            .map(|l| {
                (
                    l.journal_code.as_str(),
                    l.compte_num.as_str(),
                    l.piece_ref.as_str(),
                    l.debit_minor,
                    l.credit_minor,
                )
            })
            .collect();
        assert_eq!(
            cn,
            [
                ("VT", "411000", "AV-2026-000001", 0, 1200),
                ("VT", "709000", "AV-2026-000001", 0, 100),
                ("VT", "706100", "AV-2026-000001", 1100, 0),
                ("VT", "445710", "AV-2026-000001", 200, 0),
            ]
        );
        let first = lines.iter().find(|l| l.ecriture_num == 2).unwrap();
        assert_eq!(
            first.ecriture_lib,
            "Avoir AV-2026-000001 sur facture 2026-000010"
        );
        assert_eq!(first.piece_date, at(3, 0).date_naive());
        assert_eq!(first.comp_aux_num, "acc-1");
        // Every account the invoice moved is back to zero, and the 411 lines are lettered.
        assert!(
            balances(&lines).values().all(|v| *v == 0),
            "{:?}",
            balances(&lines)
        );
        let customer: Vec<(&str, Option<NaiveDate>)> = lines
            .iter()
            .filter(|l| l.compte_num == "411000")
            .map(|l| (l.ecriture_let.as_str(), l.date_let))
            .collect();
        assert_eq!(
            customer,
            [
                ("A", Some(at(3, 0).date_naive())),
                ("A", Some(at(3, 0).date_naive()))
            ]
        );
    }

    #[test]
    fn fec_article_a47_a_1_lpf_a_partial_oss_credit_note_refunded_to_the_card_and_the_credit() {
        let events = vec![
            Event {
                at: at(1, 6),
                party: party(),
                tie: 10,
                kind: EventKind::Invoice {
                    invoice_id: 10,
                    number: "2026-000010".into(),
                    case: VatCase::EuConsumer,
                    subtotal_minor: 1000,
                    discount_minor: 0,
                    vat_minor: 190,
                    total_minor: 1190,
                    brought_forward_from: vec![],
                },
            },
            Event {
                at: at(1, 7),
                party: party(),
                tie: 1,
                kind: EventKind::CreditUse {
                    invoice_id: 10,
                    invoice_number: "2026-000010".into(),
                    amount_minor: 190,
                    reference: "invoice:10:1".into(),
                },
            },
            Event {
                at: at(1, 7),
                party: party(),
                tie: 2,
                kind: EventKind::Payment {
                    invoice_id: 10,
                    invoice_number: "2026-000010".into(),
                    method: PayMethod::SepaDebit,
                    amount_minor: 1000,
                    reference: "pi_1".into(),
                },
            },
            // 500 + VAT 95 credited: 95 back to the credit, 500 to the SEPA account.
            credit_note(10, 1, 5, VatCase::EuConsumer, 500, 0, 0, 95),
            Event {
                at: at(5, 9),
                party: party(),
                tie: 4,
                kind: EventKind::CreditRefund {
                    invoice_id: 10,
                    invoice_number: "2026-000010".into(),
                    credit_note_number: "AV-2026-000001".into(),
                    amount_minor: 95,
                    reference: "credit-note:AV-2026-000001".into(),
                },
            },
            Event {
                at: at(6, 9),
                party: party(),
                tie: 1,
                kind: EventKind::GatewayRefund {
                    invoice_id: 10,
                    invoice_number: "2026-000010".into(),
                    credit_note_number: "AV-2026-000001".into(),
                    method: PayMethod::SepaDebit,
                    amount_minor: 500,
                    reference: "re_1".into(),
                },
            },
        ];
        let lines = entries(&chart(), &events).unwrap();
        let b = balances(&lines);
        assert_eq!(b["706200"], -500);
        assert_eq!(b["445720"], -95);
        assert_eq!(b["511100"], 500);
        // 190 of credit used on the invoice (debit), 95 given back (credit).
        assert_eq!(b["419100"], 190 - 95);
        assert_eq!(b["411000"], 0);
        assert!(!b.contains_key("709000"));
        let refund: Vec<(&str, &str, i64, i64)> = lines
            .iter()
            .filter(|l| l.piece_ref == "re_1")
            .map(|l| {
                (
                    l.journal_code.as_str(),
                    l.compte_num.as_str(),
                    l.debit_minor,
                    l.credit_minor,
                )
            })
            .collect();
        assert_eq!(
            refund,
            [("BQS", "411000", 500, 0), ("BQS", "511100", 0, 500)]
        );
        let credit: Vec<(&str, &str, &str, i64, i64)> = lines
            .iter()
            .filter(|l| l.piece_ref == "credit-note:AV-2026-000001")
            .map(|l| {
                (
                    l.journal_code.as_str(),
                    l.compte_num.as_str(),
                    l.comp_aux_num.as_str(),
                    l.debit_minor,
                    l.credit_minor,
                )
            })
            .collect();
        assert_eq!(
            credit,
            [
                ("OD", "411000", "acc-1", 95, 0),
                ("OD", "419100", "acc-1", 0, 95)
            ]
        );
        // Invoice, credit, payment, credit note and both refunds net to zero: one letter.
        let lettered: Vec<&str> = lines
            .iter()
            .filter(|l| l.compte_num == "411000")
            .map(|l| l.ecriture_let.as_str())
            .collect();
        assert_eq!(lettered, ["A"; 6]);
    }

    #[test]
    fn fec_a_full_credit_note_after_a_gesture_gives_back_the_discount_once() {
        // A gesture of 300, then the full rest: 700 net (lines 1100 − discount 100 − 300).
        let events = vec![
            domestic_invoice(10, 1),
            credit_note(10, 1, 2, VatCase::Domestic, 300, 0, 100, 60),
            credit_note(10, 2, 3, VatCase::Domestic, 700, 400, 100, 140),
        ];
        let lines = entries(&chart(), &events).unwrap();
        assert!(
            balances(&lines).values().all(|v| *v == 0),
            "{:?}",
            balances(&lines)
        );
        assert!(
            lines
                .iter()
                .filter(|l| l.compte_num == "411000")
                .all(|l| l.ecriture_let == "A")
        );
    }

    #[test]
    fn vat_on_a_reverse_charge_credit_note_is_refused() {
        let events = vec![credit_note(
            10,
            1,
            3,
            VatCase::ReverseCharge,
            1000,
            0,
            0,
            10,
        )];
        assert!(matches!(
            entries(&chart(), &events),
            Err(FecError::UnexpectedCreditVat { .. })
        ));
    }

    proptest::proptest! {
        /// Article A47 A-1 of the LPF: whatever the invoices, their credit notes (partial or
        /// full, article 272-1 of the CGI) and refunds, every entry balances, revenue less
        /// discounts is the invoices' taxable base less the credit notes', VAT the invoices'
        /// less the credit notes', and a lettered group nets to zero.
        #[test]
        fn fec_entries_balance_and_revenue_is_invoices_less_credit_notes(
            invoices in proptest::collection::vec(
                (0usize..4, 1i64..100_000, 0i64..50, proptest::collection::vec((1i64..100, 0u8..3), 0..3)),
                1..6),
        ) {
            let cases = [VatCase::Domestic, VatCase::EuConsumer, VatCase::ReverseCharge, VatCase::OutOfScope];
            let mut events = Vec::new();
            let (mut base, mut vat_total, mut n) = (0i64, 0i64, 0u32);
            for (k, (c, subtotal, discount_pct, notes)) in invoices.into_iter().enumerate() {
                let id = k as i64 + 1;
                let case = cases[c];
                let discount = subtotal * discount_pct / 100;
                let taxed = matches!(case, VatCase::Domestic | VatCase::EuConsumer);
                let vat = if taxed { (subtotal - discount) / 5 } else { 0 };
                events.push(Event {
                    at: at(1, 6), party: party(), tie: id,
                    kind: EventKind::Invoice {
                        invoice_id: id, number: format!("2026-{id:06}"), case,
                        subtotal_minor: subtotal, discount_minor: discount, vat_minor: vat,
                        total_minor: subtotal - discount + vat, brought_forward_from: vec![],
                    },
                });
                base += subtotal - discount;
                vat_total += vat;
                let (mut left, mut vat_left) = (subtotal - discount, vat);
                for (pct, refund) in notes {
                    if left == 0 { break; }
                    n += 1;
                    // A part of what is left, or (pct ≥ 90) the full rest with the discount.
                    let (net, deduction, cn_vat) = if pct >= 90 {
                        (left, discount, vat_left)
                    } else {
                        let net = (left * pct / 100).max(1);
                        (net, 0, (if taxed { net / 5 } else { 0 }).min(vat_left))
                    };
                    left -= net;
                    vat_left -= cn_vat;
                    base -= net;
                    vat_total -= cn_vat;
                    events.push(credit_note(id, n, 2, case, net, deduction, discount, cn_vat));
                    let number = format!("AV-2026-{n:06}");
                    let total = net + cn_vat;
                    match refund {
                        0 => {}
                        1 => events.push(Event {
                            at: at(3, 6), party: party(), tie: i64::from(n),
                            kind: EventKind::GatewayRefund {
                                invoice_id: id, invoice_number: format!("2026-{id:06}"),
                                credit_note_number: number, method: PayMethod::Card,
                                amount_minor: total, reference: format!("re_{n}"),
                            },
                        }),
                        _ => events.push(Event {
                            at: at(2, 9), party: party(), tie: i64::from(n),
                            kind: EventKind::CreditRefund {
                                invoice_id: id, invoice_number: format!("2026-{id:06}"),
                                credit_note_number: number.clone(), amount_minor: total,
                                reference: format!("credit-note:{number}"),
                            },
                        }),
                    }
                }
            }
            let lines = entries(&chart(), &events).unwrap();
            let mut per_entry: BTreeMap<u64, i64> = BTreeMap::new();
            for l in &lines {
                *per_entry.entry(l.ecriture_num).or_default() += l.debit_minor - l.credit_minor;
            }
            proptest::prop_assert!(per_entry.values().all(|v| *v == 0));
            proptest::prop_assert_eq!(per_entry.len(), events.len());
            let b = balances(&lines);
            let sum = |prefix: &str| -> i64 {
                b.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| *v).sum()
            };
            proptest::prop_assert_eq!(-(sum("706") + sum("709")), base);
            proptest::prop_assert!(sum("709") >= 0);
            proptest::prop_assert_eq!(-sum("4457"), vat_total);
            let mut letters: BTreeMap<&str, i64> = BTreeMap::new();
            for l in lines.iter().filter(|l| !l.ecriture_let.is_empty()) {
                *letters.entry(l.ecriture_let.as_str()).or_default() += l.debit_minor - l.credit_minor;
            }
            proptest::prop_assert!(letters.values().all(|v| *v == 0));
        }
    }

    #[test]
    fn csv_quotes_comma_amounts() {
        let events = vec![Event {
            at: at(1, 6),
            party: Party {
                account_id: "acc-1".into(),
                name: "Durand, \"SAS\"\tx".into(),
            },
            tie: 1,
            kind: EventKind::CreditPurchase {
                amount_minor: 5000,
                reference: "PAYPAL-1".into(),
            },
        }];
        let lines = entries(&chart(), &events).unwrap();
        let csv = to_csv_text(&lines).unwrap();
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS);
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(&rows[0][11], "50,00");
        assert_eq!(&rows[1][7], "Durand, \"SAS\" x");
    }
}
