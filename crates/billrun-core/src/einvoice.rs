//! What an e-invoice needs beyond the printed invoice: the buyer's SIREN (EN 16931 BT-47), the
//! parties' electronic addresses (BT-34, BT-49), the SEPA creditor identifier (BT-90) and the
//! payment means recorded when an invoice is issued (BG-16, UNTDID 4461 codes).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::locale::Language;

/// Why a SIREN, an electronic address or a creditor identifier is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a SIREN has 9 digits (spaces allowed), not `{0}`")]
    SirenFormat(String),
    #[error("`{0}` is not a SIREN: its check digit is wrong (Luhn key, as INSEE computes it)")]
    SirenCheck(String),
    #[error("a SIRET has 14 digits (spaces allowed), not `{0}`")]
    SiretFormat(String),
    #[error(
        "SIRET `{0}` does not begin with the SIREN `{1}` (a SIRET is the SIREN, then the establishment's 5-digit NIC)"
    )]
    SiretSiren(String, String),
    #[error(
        "`{0}` is not a SIRET: its check digit is wrong (Luhn key over the 14 digits, as INSEE computes it)"
    )]
    SiretCheck(String),
    #[error("electronic address scheme `{0}` is not one billrun writes: {SCHEMES_TEXT}")]
    Scheme(String),
    #[error(
        "electronic address `{0}`: letters, digits, `+`, `-`, `_` and `.` only, at most 125 characters (BR-FR-23, BR-FR-25)"
    )]
    Address(String),
    #[error(
        "electronic address `{0}` (scheme 0225) must begin with the SIREN `{1}` (BR-FR-21: the French directory's addresses are the SIREN, then an optional `_` suffix)"
    )]
    AddressSiren(String, String),
    #[error("scheme 0225 addresses a French company by its SIREN: give the account's `siren`")]
    AddressNeedsSiren,
    #[error(
        "`{0}` is not a SEPA creditor identifier (country, 2 check digits, 3-character business code, national id; ISO 7064 MOD 97-10)"
    )]
    CreditorId(String),
}

/// A SIREN without its spaces: `812 345 676` → `812345676`.
pub fn normalize_siren(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// A SIREN (the French SIRENE register's number of a legal unit): 9 digits whose Luhn key is
/// right, as INSEE defines it (the check digit is the 9th; the sum of the digits, every
/// second one from the right doubled and its digits added, is a multiple of 10).
pub fn validate_siren(s: &str) -> Result<String, IdError> {
    let siren = normalize_siren(s);
    if siren.len() != 9 || !siren.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::SirenFormat(s.to_string()));
    }
    if !luhn(&siren) {
        return Err(IdError::SirenCheck(s.to_string()));
    }
    Ok(siren)
}

/// La Poste's SIREN, whose establishments' SIRETs do not pass the Luhn key (see
/// [`validate_siret`]).
const LA_POSTE_SIREN: &str = "356000000";

/// A SIRET (the SIRENE register's number of an establishment): the 9-digit SIREN `siren` it
/// belongs to, then the 5-digit NIC, the whole 14 digits passing the Luhn key as INSEE defines
/// it. La Poste (SIREN 356 000 000) is INSEE's documented exception: it has more
/// establishments than NICs with a right Luhn key, so its establishments' SIRETs are numbered
/// so that the sum of the 14 digits (none doubled) is a multiple of 5 instead; its head office
/// (356 000 000 00048) passes the Luhn key. Returns it without spaces.
pub fn validate_siret(s: &str, siren: &str) -> Result<String, IdError> {
    let siret = normalize_siren(s);
    if siret.len() != 14 || !siret.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::SiretFormat(s.to_string()));
    }
    let siren = normalize_siren(siren);
    if !siret.starts_with(&siren) {
        return Err(IdError::SiretSiren(s.to_string(), siren));
    }
    // INSEE's exception for La Poste's establishments: the digit sum is a multiple of 5.
    let la_poste = || {
        siren == LA_POSTE_SIREN
            && siret
                .bytes()
                .map(|b| u32::from(b - b'0'))
                .sum::<u32>()
                .is_multiple_of(5)
    };
    if !(luhn(&siret) || la_poste()) {
        return Err(IdError::SiretCheck(s.to_string()));
    }
    Ok(siret)
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The electronic address schemes (EAS code list of EN 16931, BT-34-1/BT-49-1) billrun
/// accepts: those that name a French or European business.
pub const SCHEMES: &[&str] = &["0225", "0009", "0002", "0088", "9957"];
const SCHEMES_TEXT: &str = "0225 (French e-invoicing directory, SIREN-based), 0009 (SIRET), 0002 (SIREN), 0088 (GLN), 9957 (French VAT number)";

/// A party's electronic address (EN 16931 BT-34 for the seller, BT-49 for the buyer): where
/// its e-invoices are delivered, with the scheme of its identifier (BR-62, BR-63: a scheme is
/// required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectronicAddress {
    /// EAS code (ISO 6523 ICD or CEF EAS), e.g. `0225`.
    pub scheme: String,
    pub id: String,
}

impl ElectronicAddress {
    /// Checks an address against the rules of the French CTC schematron, which billrun meets
    /// for every scheme: BR-FR-23 (letters, digits, `+ - _ .`), BR-FR-25 (at most 125
    /// characters), and for scheme 0225 BR-FR-21 (it begins with the party's SIREN).
    pub fn validate(&self, siren: Option<&str>) -> Result<(), IdError> {
        if !SCHEMES.contains(&self.scheme.as_str()) {
            return Err(IdError::Scheme(self.scheme.clone()));
        }
        let ok_chars = self
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '.'));
        if self.id.is_empty() || self.id.chars().count() > 125 || !ok_chars {
            return Err(IdError::Address(self.id.clone()));
        }
        if self.scheme == "0225" {
            let Some(siren) = siren else {
                return Err(IdError::AddressNeedsSiren);
            };
            let siren = normalize_siren(siren);
            if !self.id.starts_with(&siren) {
                return Err(IdError::AddressSiren(self.id.clone(), siren));
            }
        }
        Ok(())
    }
}

impl fmt::Display for ElectronicAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.id)
    }
}

/// A SEPA creditor identifier (EN 16931 BT-90; the EPC's "Creditor Identifier", in France the
/// ICS): country code, two check digits, a three-character business code (not in the
/// checksum), the national identifier; the check digits are ISO 7064 MOD 97-10 over the
/// national identifier, the country code and `00` (EPC262-08). Returns it without spaces.
pub fn validate_creditor_id(s: &str) -> Result<String, IdError> {
    let id: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let bad = || IdError::CreditorId(s.to_string());
    if id.len() < 8 || id.len() > 35 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    let (country, rest) = id.split_at(2);
    let (check, rest) = rest.split_at(2);
    let national = &rest[3..];
    if !country.chars().all(|c| c.is_ascii_uppercase())
        || !check.chars().all(|c| c.is_ascii_digit())
        || national.is_empty()
    {
        return Err(bad());
    }
    let mut rem: u32 = 0;
    for c in national.chars().chain(country.chars()).chain(check.chars()) {
        let v = c.to_digit(36).ok_or_else(bad)?;
        for d in v.to_string().chars() {
            rem = (rem * 10 + d.to_digit(10).expect("a digit")) % 97;
        }
    }
    if rem != 1 {
        return Err(bad());
    }
    Ok(id)
}

/// How an invoice was expected to be paid when it was issued (EN 16931 BG-16), recorded on the
/// invoice at finalization from the account's payment method and credit at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMeans {
    /// The card on file (UNTDID 4461 code 48, "bank card").
    Card,
    /// A SEPA direct debit under the account's mandate (code 59).
    SepaDebit,
    /// Met in full by the account's prepaid credit (code 97, "clearing between partners":
    /// the buyer's earlier payment to the seller is set against the invoice; nothing moves).
    PrepaidCredit,
    /// Nothing to pay (discounts or a zero invoice): no payment instruction (BG-16 is
    /// optional in EN 16931, and there is no instruction to give).
    NothingDue,
    /// No payment method on file and not enough credit: the account must add one or buy
    /// credit; the instrument is not known at issue (code 1, "instrument not defined"; 30/58
    /// would promise a credit transfer billrun does not offer, and BR-50/BR-61 would want the
    /// seller's account for it).
    NotDefined,
    /// Invoices issued before the payment means were recorded (migration 0013): the
    /// instruction they were issued with (code 1, "card or SEPA direct debit on file").
    Unrecorded,
}

impl PaymentMeans {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMeans::Card => "card",
            PaymentMeans::SepaDebit => "sepa_debit",
            PaymentMeans::PrepaidCredit => "prepaid_credit",
            PaymentMeans::NothingDue => "nothing_due",
            PaymentMeans::NotDefined => "not_defined",
            PaymentMeans::Unrecorded => "unrecorded",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentMeans> {
        Some(match s {
            "card" => PaymentMeans::Card,
            "sepa_debit" => PaymentMeans::SepaDebit,
            "prepaid_credit" => PaymentMeans::PrepaidCredit,
            "nothing_due" => PaymentMeans::NothingDue,
            "not_defined" => PaymentMeans::NotDefined,
            "unrecorded" => PaymentMeans::Unrecorded,
            _ => return None,
        })
    }

    /// The UNTDID 4461 payment means code (BT-81); `None`: no BG-16 is written.
    pub fn untdid_4461(self) -> Option<&'static str> {
        match self {
            PaymentMeans::Card => Some("48"),
            PaymentMeans::SepaDebit => Some("59"),
            PaymentMeans::PrepaidCredit => Some("97"),
            PaymentMeans::NothingDue => None,
            PaymentMeans::NotDefined | PaymentMeans::Unrecorded => Some("1"),
        }
    }

    /// What is expected at issue, from the facts at finalization: nothing due, else credit
    /// that covers it all (the collect job applies credit first, `core::collection`), else the
    /// payment method on file (`card` or `sepa_debit`), else not defined.
    pub fn at_issue(amount_due_minor: i64, credit_minor: i64, method: Option<&str>) -> Self {
        if amount_due_minor <= 0 {
            PaymentMeans::NothingDue
        } else if credit_minor >= amount_due_minor {
            PaymentMeans::PrepaidCredit
        } else {
            match method {
                Some("card") => PaymentMeans::Card,
                Some("sepa_debit") => PaymentMeans::SepaDebit,
                _ => PaymentMeans::NotDefined,
            }
        }
    }
}

impl PaymentMeans {
    /// The payment instruction in words (BT-82), the same on the PDF and in the XML; `None`
    /// when nothing is due. A SEPA debit names its mandate (BT-89) when it is known.
    pub fn information(self, language: Language, mandate: Option<&str>) -> Option<String> {
        let text = match (self, language) {
            (PaymentMeans::NothingDue, _) => return None,
            (PaymentMeans::Card, Language::Fr) => "Carte bancaire enregistrée sur le compte".into(),
            (PaymentMeans::Card, Language::En) => "Card on file".into(),
            (PaymentMeans::SepaDebit, Language::Fr) => match mandate {
                Some(m) => format!("Prélèvement SEPA, mandat {m}"),
                None => "Prélèvement SEPA".into(),
            },
            (PaymentMeans::SepaDebit, Language::En) => match mandate {
                Some(m) => format!("SEPA direct debit, mandate {m}"),
                None => "SEPA direct debit".into(),
            },
            (PaymentMeans::PrepaidCredit, Language::Fr) => "Crédit prépayé du compte".into(),
            (PaymentMeans::PrepaidCredit, Language::En) => "Prepaid credit on the account".into(),
            (PaymentMeans::NotDefined, Language::Fr) => {
                "non défini, aucun moyen de paiement n'est enregistré (ajoutez une carte, un \
                 mandat SEPA ou du crédit prépayé)"
                    .into()
            }
            (PaymentMeans::NotDefined, Language::En) => {
                "not defined, no payment method on file (add a card, a SEPA mandate or prepaid \
                 credit)"
                    .into()
            }
            (PaymentMeans::Unrecorded, Language::Fr) => {
                "Carte bancaire ou prélèvement SEPA enregistré sur le compte".into()
            }
            (PaymentMeans::Unrecorded, Language::En) => "Card or SEPA direct debit on file".into(),
        };
        Some(text)
    }
}

impl fmt::Display for PaymentMeans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siren_luhn_key_as_insee_defines_it() {
        // Keys right (La Poste's 356 000 000 among them), one wrong, bad formats.
        assert_eq!(validate_siren("120 027 016").unwrap(), "120027016");
        assert_eq!(validate_siren("356000000").unwrap(), "356000000");
        assert_eq!(validate_siren("404 833 048").unwrap(), "404833048");
        assert!(matches!(
            validate_siren("120027017"),
            Err(IdError::SirenCheck(_))
        ));
        assert!(matches!(
            validate_siren("12002701"),
            Err(IdError::SirenFormat(_))
        ));
        assert!(matches!(
            validate_siren("12002701A"),
            Err(IdError::SirenFormat(_))
        ));
    }

    #[test]
    fn siret_is_the_siren_and_a_nic_passing_the_luhn_key_insee() {
        // The sample seller's head office (jobs/invoice.toml) and INSEE's own SIRET.
        assert_eq!(
            validate_siret("812 345 676 00025", "812 345 676"),
            Ok("81234567600025".into())
        );
        assert!(validate_siret("12002701600563", "120027016").is_ok());
        assert_eq!(
            validate_siret("812 345 676 00021", "812345676"),
            Err(IdError::SiretCheck("812 345 676 00021".into()))
        );
        assert_eq!(
            validate_siret("812 345 676 0002", "812345676"),
            Err(IdError::SiretFormat("812 345 676 0002".into()))
        );
        assert_eq!(
            validate_siret("12002701600563", "812345676"),
            Err(IdError::SiretSiren(
                "12002701600563".into(),
                "812345676".into()
            ))
        );
    }

    #[test]
    fn la_postes_siret_has_a_digit_sum_multiple_of_5_insee() {
        // 3 + 5 + 6 + 1 = 15: La Poste's rule, though not the Luhn key.
        assert!(!luhn("35600000000001"));
        assert!(validate_siret("356 000 000 00001", "356000000").is_ok());
        // The head office passes the Luhn key (its digit sum is 26).
        assert!(validate_siret("356 000 000 00048", "356 000 000").is_ok());
        // Neither rule (sum 29, Luhn wrong).
        assert_eq!(
            validate_siret("356 000 000 00049", "356 000 000"),
            Err(IdError::SiretCheck("356 000 000 00049".into()))
        );
        // The exception is La Poste's alone: another SIREN's SIRET with a digit sum of a
        // multiple of 5 but a wrong Luhn key is refused (8+1+2+3+4+5+6+7+6 + 2 + 1 = 45).
        assert!(!luhn("81234567600021"));
        assert_eq!(
            validate_siret("81234567600021", "812345676"),
            Err(IdError::SiretCheck("81234567600021".into()))
        );
    }

    #[test]
    fn electronic_address_br_fr_21_23_25() {
        let a = |scheme: &str, id: &str| ElectronicAddress {
            scheme: scheme.into(),
            id: id.into(),
        };
        assert!(a("0225", "404833048").validate(Some("404833048")).is_ok());
        assert!(
            a("0225", "404833048_FACT")
                .validate(Some("404 833 048"))
                .is_ok()
        );
        assert_eq!(
            a("0225", "120027016").validate(Some("404833048")),
            Err(IdError::AddressSiren(
                "120027016".into(),
                "404833048".into()
            ))
        );
        assert_eq!(
            a("0225", "404833048").validate(None),
            Err(IdError::AddressNeedsSiren)
        );
        assert!(matches!(
            a("0009", "4048 33048").validate(None),
            Err(IdError::Address(_))
        ));
        assert!(matches!(
            a("0009", &"1".repeat(126)).validate(None),
            Err(IdError::Address(_))
        ));
        assert!(matches!(
            a("EM", "x").validate(None),
            Err(IdError::Scheme(_))
        ));
        assert!(a("0009", "40483304800012").validate(None).is_ok());
    }

    #[test]
    fn sepa_creditor_id_iso_7064_mod_97_10() {
        // The EPC's example (EPC262-08) and a French ICS.
        assert_eq!(
            validate_creditor_id("DE98ZZZ09999999999").unwrap(),
            "DE98ZZZ09999999999"
        );
        assert_eq!(
            validate_creditor_id("fr72 zzz 123456").unwrap(),
            "FR72ZZZ123456"
        );
        assert!(validate_creditor_id("FR73ZZZ123456").is_err());
        assert!(validate_creditor_id("FR7").is_err());
    }

    #[test]
    fn untdid_4461_payment_means_at_issue() {
        use PaymentMeans::*;
        assert_eq!(PaymentMeans::at_issue(0, 0, Some("card")), NothingDue);
        assert_eq!(
            PaymentMeans::at_issue(100, 100, Some("card")),
            PrepaidCredit
        );
        assert_eq!(PaymentMeans::at_issue(100, 99, Some("card")), Card);
        assert_eq!(
            PaymentMeans::at_issue(100, 0, Some("sepa_debit")),
            SepaDebit
        );
        assert_eq!(PaymentMeans::at_issue(100, 0, None), NotDefined);
        let codes: Vec<_> = [
            Card,
            SepaDebit,
            PrepaidCredit,
            NothingDue,
            NotDefined,
            Unrecorded,
        ]
        .iter()
        .map(|m| (m.untdid_4461(), PaymentMeans::parse(m.as_str()) == Some(*m)))
        .collect();
        assert_eq!(
            codes,
            [
                (Some("48"), true),
                (Some("59"), true),
                (Some("97"), true),
                (None, true),
                (Some("1"), true),
                (Some("1"), true)
            ]
        );
    }
}
