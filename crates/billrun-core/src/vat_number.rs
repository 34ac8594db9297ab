//! EU VAT identification numbers: the format and, where the member state publishes one, the
//! check digits of each state's number (article 214 of Directive 2006/112/EC: each state
//! identifies its taxable persons; article 215: the number carries the state's prefix, `EL` for
//! Greece). Pure: no network. Whether a well-formed number is *registered* is VIES's answer
//! (the `vat-check` job), not this module's.
//!
//! Sources of the algorithms, per state, are named beside each one. Where several are cited
//! they agree; the reference implementation used to cross-check them is python-stdnum
//! (`stdnum.<cc>.vat` and the modules it delegates to), whose docstring examples are the
//! valid numbers in the tests below.

/// Why a VAT number is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VatNumberError {
    #[error("`{number}` is not a {country} VAT number: it must start with {expected}")]
    WrongPrefix {
        number: String,
        country: String,
        expected: &'static str,
    },
    #[error("`{number}` is not a {country} VAT number: expected {expected}")]
    Format {
        number: String,
        country: String,
        expected: &'static str,
    },
    #[error("`{number}` is not a {country} VAT number: its check digits are wrong")]
    CheckDigit { number: String, country: String },
}

/// A VAT number as typed, without spaces, dots and dashes, upper case.
pub fn normalize(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// Checks a normalized VAT number of a customer in `country` (ISO 3166 alpha-2; `GR` for
/// Greece). Numbers of countries outside the EU are not checked (any form is accepted).
pub fn validate(country: &str, number: &str) -> Result<(), VatNumberError> {
    if !super::countries::is_eu_member(country) {
        return Ok(());
    }
    let prefix = super::countries::vat_prefix(country);
    let prefix: &'static str = EU_PREFIXES
        .iter()
        .find(|p| **p == prefix)
        .copied()
        .unwrap_or("??");
    let Some(body) = number.strip_prefix(prefix) else {
        return Err(VatNumberError::WrongPrefix {
            number: number.to_string(),
            country: country.to_string(),
            expected: prefix,
        });
    };
    let format = |expected: &'static str| VatNumberError::Format {
        number: number.to_string(),
        country: country.to_string(),
        expected,
    };
    let check = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(VatNumberError::CheckDigit {
                number: number.to_string(),
                country: country.to_string(),
            })
        }
    };
    let d = digits_of(body);
    let all_digits = |n: usize| body.len() == n && body.bytes().all(|b| b.is_ascii_digit());
    match prefix {
        // Austria: "U" + 8 digits; the UID check of the Bundesministerium für Finanzen
        // (weights 1,2,1,2,1,2,1, cross sums, +4, mod 10; stdnum.at.uid).
        "AT" => {
            let Some(rest) = body.strip_prefix('U') else {
                return Err(format("U followed by 8 digits"));
            };
            if !(rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_digit())) {
                return Err(format("U followed by 8 digits"));
            }
            let d = digits_of(rest);
            let s: u32 = (0..7)
                .map(|i| {
                    let p = d[i] * if i % 2 == 1 { 2 } else { 1 };
                    p / 10 + p % 10
                })
                .sum();
            check((10 - (s + 4) % 10) % 10 == d[7])
        }
        // Belgium: 10 digits starting 0 or 1 (a 9-digit number gets a leading 0); the last two
        // are 97 - (first eight mod 97) (SPF Finances, numéro d'entreprise; stdnum.be.vat).
        "BE" => {
            let body = if all_digits(9) {
                format!("0{body}")
            } else {
                body.to_string()
            };
            if !(body.len() == 10
                && body.bytes().all(|b| b.is_ascii_digit())
                && matches!(body.as_bytes()[0], b'0' | b'1'))
            {
                return Err(format("10 digits starting with 0 or 1"));
            }
            let n: u64 = body[..8].parse().unwrap_or(0);
            let key: u64 = body[8..].parse().unwrap_or(0);
            check(97 - n % 97 == key)
        }
        // Germany: 9 digits, the first not 0; ISO 7064 MOD 11,10 (Bundeszentralamt für
        // Steuern, USt-IdNr.; stdnum.de.vat).
        "DE" => {
            if !all_digits(9) || d[0] == 0 {
                return Err(format("9 digits, the first not 0"));
            }
            check(iso7064_mod_11_10(&d[..8]) == d[8])
        }
        // Croatia: the OIB, 11 digits, ISO 7064 MOD 11,10 (stdnum.hr.oib).
        "HR" => {
            if !all_digits(11) {
                return Err(format("11 digits"));
            }
            check(iso7064_mod_11_10(&d[..10]) == d[10])
        }
        // Denmark: the CVR, 8 digits, the first not 0; weights 2,7,6,5,4,3,2,1, sum mod 11 = 0
        // (Erhvervsstyrelsen; stdnum.dk.cvr).
        "DK" => {
            if !all_digits(8) || d[0] == 0 {
                return Err(format("8 digits, the first not 0"));
            }
            check(weighted(&d, &[2, 7, 6, 5, 4, 3, 2, 1]).is_multiple_of(11))
        }
        // Spain: the NIF, 9 characters (stdnum.es.nif/cif/dni/nie; Real Decreto 1065/2007):
        // a company's CIF (letter, 7 digits, a control digit or letter), a resident's DNI
        // (8 digits and the letter of the number mod 23), a foreigner's NIE (X/Y/Z as 0/1/2,
        // then as a DNI), or K/L/M with the letter of its 7 digits mod 23.
        "ES" => check_es(body)
            .map_err(|()| format("9 characters: a NIF, CIF, DNI or NIE"))
            .and_then(check),
        // Finland: the Y-tunnus, 8 digits; weights 7,9,10,5,8,4,2, 11 - sum mod 11, a remainder
        // of 1 never issued (Verohallinto; stdnum.fi.ytunnus).
        "FI" => {
            if !all_digits(8) {
                return Err(format("8 digits"));
            }
            let r = weighted(&d[..7], &[7, 9, 10, 5, 8, 4, 2]) % 11;
            check(r != 1 && (if r == 0 { 0 } else { 11 - r }) == d[7])
        }
        // France: a two-character key and the 9-digit SIREN; a numeric key is
        // (12 + 3 × (SIREN mod 97)) mod 97 (article 286 ter of the CGI, BOI-TVA-DECLA-30-20-30;
        // stdnum.fr.tva). Alphabetic keys (issued to some entities) are checked in form only.
        "FR" => {
            let ok_format = body.len() == 11
                && body.bytes().all(|b| b.is_ascii_alphanumeric())
                && body[2..].bytes().all(|b| b.is_ascii_digit())
                && !body[..2].bytes().any(|b| matches!(b, b'I' | b'O'));
            if !ok_format {
                return Err(format("a 2-character key and a 9-digit SIREN"));
            }
            match body[..2].parse::<u64>() {
                Ok(key) => {
                    let siren: u64 = body[2..].parse().unwrap_or(0);
                    check((12 + 3 * (siren % 97)) % 97 == key)
                }
                Err(_) => Ok(()),
            }
        }
        // Hungary: 8 digits; weights 9,7,3,1,9,7,3,1, sum mod 10 = 0 (stdnum.hu.anum).
        "HU" => {
            if !all_digits(8) {
                return Err(format("8 digits"));
            }
            check(weighted(&d, &[9, 7, 3, 1, 9, 7, 3, 1]).is_multiple_of(10))
        }
        // Ireland: 7 digits and 1 or 2 letters (the second W or A–I), or the old form digit,
        // letter/+/*, 5 digits, letter; weights 8..2 (and 9 for the second letter), the
        // check letter is "WABCDEFGHIJKLMNOPQRSTUV"[sum mod 23] (Revenue; stdnum.ie.vat).
        "IE" => check_ie(body)
            .map_err(|()| format("7 digits and 1 or 2 letters"))
            .and_then(check),
        // Italy: the partita IVA, 11 digits, Luhn (DPR 633/1972 art. 35, Agenzia delle Entrate;
        // stdnum.it.iva).
        "IT" => {
            if !all_digits(11) {
                return Err(format("11 digits"));
            }
            check(luhn_valid(&d))
        }
        // Luxembourg: 8 digits, the last two are the first six mod 89 (stdnum.lu.tva).
        "LU" => {
            if !all_digits(8) {
                return Err(format("8 digits"));
            }
            let n: u64 = body[..6].parse().unwrap_or(0);
            let key: u64 = body[6..].parse().unwrap_or(0);
            check(n % 89 == key)
        }
        // The Netherlands: 9 digits, "B", 2 digits. A company's omzetbelastingnummer passes the
        // mod 11 test on its 9 digits (weights 9..2 and -1); a sole trader's btw-id (since 2020)
        // instead passes ISO 7064 MOD 97-10 over "NL" + the number, letters as 10..35
        // (Belastingdienst; stdnum.nl.btw).
        "NL" => {
            let ok = body.len() == 12
                && body[..9].bytes().all(|b| b.is_ascii_digit())
                && &body[9..10] == "B"
                && body[10..].bytes().all(|b| b.is_ascii_digit());
            if !ok {
                return Err(format("9 digits, B and 2 digits"));
            }
            let d = digits_of(&body[..9]);
            let s: i64 = (0..8).map(|i| d[i] as i64 * (9 - i as i64)).sum::<i64>() - d[8] as i64;
            check(s % 11 == 0 || mod_97_10(&format!("NL{body}")) == 1)
        }
        // Poland: the NIP, 10 digits; weights 6,5,7,2,3,4,5,6,7, sum mod 11 is the last digit
        // (never 10) (Ministerstwo Finansów; stdnum.pl.nip).
        "PL" => {
            if !all_digits(10) {
                return Err(format("10 digits"));
            }
            let r = weighted(&d[..9], &[6, 5, 7, 2, 3, 4, 5, 6, 7]) % 11;
            check(r != 10 && r == d[9])
        }
        // Portugal: the NIF, 9 digits, the first not 0; weights 9..2, 11 - sum mod 11, 10 and
        // 11 as 0 (Autoridade Tributária; stdnum.pt.nif).
        "PT" => {
            if !all_digits(9) || d[0] == 0 {
                return Err(format("9 digits, the first not 0"));
            }
            let r = 11 - weighted(&d[..8], &[9, 8, 7, 6, 5, 4, 3, 2]) % 11;
            check(if r >= 10 { 0 } else { r } == d[8])
        }
        // Sweden: the organisationsnummer (10 digits, Luhn) followed by "01" (Skatteverket;
        // stdnum.se.vat).
        "SE" => {
            if !all_digits(12) || &body[10..] != "01" {
                return Err(format("10 digits followed by 01"));
            }
            check(luhn_valid(&d[..10]))
        }
        // Slovakia: the IČ DPH, 10 digits, the first not 0, divisible by 11 (stdnum.sk.dph).
        "SK" => {
            if !all_digits(10) || d[0] == 0 {
                return Err(format("10 digits, the first not 0"));
            }
            let n: u64 = body.parse().unwrap_or(1);
            check(n.is_multiple_of(11))
        }
        // The rest: their format only (the European Commission's VIES FAQ, "VAT number
        // format"): the check of a number they issued is VIES's.
        "BG" if all_digits(9) || all_digits(10) => Ok(()),
        "BG" => Err(format("9 or 10 digits")),
        "CY" => {
            let ok = body.len() == 9
                && body[..8].bytes().all(|b| b.is_ascii_digit())
                && body.as_bytes()[8].is_ascii_uppercase();
            if ok {
                Ok(())
            } else {
                Err(format("8 digits and a letter"))
            }
        }
        "CZ" if (8..=10).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(())
        }
        "CZ" => Err(format("8, 9 or 10 digits")),
        "EE" if all_digits(9) => Ok(()),
        "EE" => Err(format("9 digits")),
        "EL" if all_digits(9) => Ok(()),
        "EL" => Err(format("9 digits")),
        "LT" if all_digits(9) || all_digits(12) => Ok(()),
        "LT" => Err(format("9 or 12 digits")),
        "LV" if all_digits(11) => Ok(()),
        "LV" => Err(format("11 digits")),
        "MT" if all_digits(8) => Ok(()),
        "MT" => Err(format("8 digits")),
        "RO" if (2..=10).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(())
        }
        "RO" => Err(format("2 to 10 digits")),
        "SI" if all_digits(8) => Ok(()),
        "SI" => Err(format("8 digits")),
        _ => Err(format("a number of an EU member state")),
    }
}

/// Every EU member state's VAT prefix.
const EU_PREFIXES: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

fn digits_of(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn weighted(d: &[u32], weights: &[u32]) -> u32 {
    d.iter().zip(weights).map(|(a, b)| a * b).sum()
}

/// The check digit of ISO 7064 MOD 11,10 over `d`.
fn iso7064_mod_11_10(d: &[u32]) -> u32 {
    let mut product = 10;
    for &digit in d {
        let mut sum = (digit + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (2 * sum) % 11;
    }
    (11 - product) % 10
}

/// ISO 7064 MOD 97-10 of a string of digits and capital letters (A = 10 … Z = 35).
fn mod_97_10(s: &str) -> u32 {
    let mut r: u32 = 0;
    for c in s.chars() {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return 0,
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    r
}

/// Luhn over all digits (the last is the check digit).
fn luhn_valid(d: &[u32]) -> bool {
    let s: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let p = x * 2;
                p / 10 + p % 10
            } else {
                x
            }
        })
        .sum();
    s.is_multiple_of(10)
}

const MOD23: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Spain: `Err(())` for a bad form, `Ok(check digits right)` otherwise.
fn check_es(body: &str) -> Result<bool, ()> {
    let b = body.as_bytes();
    if b.len() != 9
        || !b.iter().all(u8::is_ascii_alphanumeric)
        || !b[1..8].iter().all(u8::is_ascii_digit)
    {
        return Err(());
    }
    let (first, last) = (b[0], b[8]);
    let mid: u32 = body[1..8].parse().map_err(|_| ())?;
    match first {
        b'0'..=b'9' | b'X' | b'Y' | b'Z' => {
            // DNI (8 digits) or NIE (X, Y, Z for 0, 1, 2): the letter of the number mod 23.
            let lead = match first {
                b'X' => 0,
                b'Y' => 1,
                b'Z' => 2,
                d => u32::from(d - b'0'),
            };
            Ok(MOD23[((lead * 10_000_000 + mid) % 23) as usize] == last)
        }
        b'K' | b'L' | b'M' => Ok(MOD23[(mid % 23) as usize] == last),
        b'A' | b'B' | b'C' | b'D' | b'E' | b'F' | b'G' | b'H' | b'J' | b'N' | b'P' | b'Q'
        | b'R' | b'S' | b'U' | b'V' | b'W' => {
            // CIF: odd positions doubled (cross sums), even ones added; the control is
            // (10 - sum mod 10) mod 10, as a digit or as the letter "JABCDEFGHI"[control].
            let d = digits_of(&body[1..8]);
            let s: u32 = d
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    if i % 2 == 0 {
                        let p = x * 2;
                        p / 10 + p % 10
                    } else {
                        x
                    }
                })
                .sum();
            let control = (10 - s % 10) % 10;
            Ok(last == b'0' + control as u8 || last == b"JABCDEFGHI"[control as usize])
        }
        _ => Err(()),
    }
}

/// Ireland: `Err(())` for a bad form, `Ok(check letter right)` otherwise.
fn check_ie(body: &str) -> Result<bool, ()> {
    let b = body.as_bytes();
    // The old form: digit, letter or + or *, 5 digits, letter: read as "0" + the 5 digits +
    // the first digit, then the check letter.
    let number: String = if b.len() == 8
        && b[0].is_ascii_digit()
        && (b[1].is_ascii_uppercase() || b[1] == b'+' || b[1] == b'*')
        && b[2..7].iter().all(u8::is_ascii_digit)
        && b[7].is_ascii_uppercase()
    {
        format!("0{}{}{}", &body[2..7], &body[..1], &body[7..])
    } else {
        body.to_string()
    };
    let n = number.as_bytes();
    let ok = (n.len() == 8 || n.len() == 9)
        && n[..7].iter().all(u8::is_ascii_digit)
        && n[7].is_ascii_uppercase()
        && (n.len() == 8 || matches!(n[8], b'W' | b'A'..=b'I'));
    if !ok {
        return Err(());
    }
    let d = digits_of(&number[..7]);
    let mut s = weighted(&d, &[8, 7, 6, 5, 4, 3, 2]);
    if n.len() == 9 && n[8] != b'W' {
        s += 9 * u32::from(n[8] - b'A' + 1);
    }
    Ok(b"WABCDEFGHIJKLMNOPQRSTUV"[(s % 23) as usize] == n[7])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(country: &str, number: &str) {
        assert_eq!(validate(country, &normalize(number)), Ok(()), "{number}");
    }

    fn bad_check(country: &str, number: &str) {
        assert!(
            matches!(
                validate(country, &normalize(number)),
                Err(VatNumberError::CheckDigit { .. })
            ),
            "{number}: {:?}",
            validate(country, &normalize(number))
        );
    }

    fn wrong_prefix(country: &str, number: &str) {
        assert!(
            matches!(
                validate(country, &normalize(number)),
                Err(VatNumberError::WrongPrefix { .. })
            ),
            "{number}"
        );
    }

    #[test]
    fn at_uid_bmf_check_digit() {
        ok("AT", "ATU13585627");
        bad_check("AT", "ATU13585626");
        wrong_prefix("AT", "DEU13585627");
    }

    #[test]
    fn be_mod_97_check() {
        ok("BE", "BE0403019261");
        ok("BE", "BE403019261");
        bad_check("BE", "BE0403019262");
        wrong_prefix("BE", "NL0403019261");
    }

    #[test]
    fn de_iso_7064_mod_11_10() {
        ok("DE", "DE136695976");
        ok("DE", "DE123456788");
        bad_check("DE", "DE123456789");
        wrong_prefix("DE", "AT136695976");
    }

    #[test]
    fn hr_oib_iso_7064_mod_11_10() {
        ok("HR", "HR33392005961");
        bad_check("HR", "HR33392005962");
        wrong_prefix("HR", "HU33392005961");
    }

    #[test]
    fn dk_cvr_mod_11() {
        ok("DK", "DK13585628");
        bad_check("DK", "DK13585627");
        wrong_prefix("DK", "DE13585628");
    }

    #[test]
    fn es_cif_dni_nie_control() {
        ok("ES", "ESB58378431");
        ok("ES", "ES B-58378431");
        ok("ES", "ES54362315K");
        ok("ES", "ESX5253868R");
        bad_check("ES", "ESB58378432");
        bad_check("ES", "ES54362315Z");
        wrong_prefix("ES", "FRB58378431");
    }

    #[test]
    fn fi_ytunnus_mod_11() {
        ok("FI", "FI20774740");
        bad_check("FI", "FI20774741");
        wrong_prefix("FI", "SE20774740");
    }

    #[test]
    fn fr_key_is_12_plus_3_siren_mod_97_art_286_ter_cgi() {
        ok("FR", "FR40303265045");
        ok("FR", "FR 40 303 265 045");
        bad_check("FR", "FR41303265045");
        wrong_prefix("FR", "DE40303265045");
        // An alphabetic key is checked in form only.
        ok("FR", "FRK7399859412");
    }

    #[test]
    fn hu_mod_10() {
        ok("HU", "HU12892312");
        bad_check("HU", "HU12892313");
        wrong_prefix("HU", "HR12892312");
    }

    #[test]
    fn ie_mod_23_check_letter() {
        ok("IE", "IE6433435F");
        ok("IE", "IE6433435OA");
        ok("IE", "IE8Z49289F");
        bad_check("IE", "IE6433435E");
        wrong_prefix("IE", "IT6433435F");
    }

    #[test]
    fn it_partita_iva_luhn() {
        ok("IT", "IT00743110157");
        bad_check("IT", "IT00743110158");
        wrong_prefix("IT", "IE00743110157");
    }

    #[test]
    fn lu_mod_89() {
        ok("LU", "LU15027442");
        bad_check("LU", "LU15027443");
        wrong_prefix("LU", "LT15027442");
    }

    #[test]
    fn nl_mod_11_and_sole_trader_mod_97() {
        ok("NL", "NL004495445B01");
        // A sole trader's btw-id (ISO 7064 MOD 97-10 over "NL" + the number).
        ok("NL", "NL000099998B57");
        bad_check("NL", "NL004495446B01");
        wrong_prefix("NL", "BE004495445B01");
    }

    #[test]
    fn pl_nip_mod_11() {
        ok("PL", "PL8567346215");
        bad_check("PL", "PL8567346216");
        wrong_prefix("PL", "PT8567346215");
    }

    #[test]
    fn pt_nif_mod_11() {
        ok("PT", "PT501964843");
        bad_check("PT", "PT501964844");
        wrong_prefix("PT", "PL501964843");
    }

    #[test]
    fn se_luhn_and_01() {
        ok("SE", "SE123456789701");
        bad_check("SE", "SE123456789801");
        wrong_prefix("SE", "FI123456789701");
        assert!(matches!(
            validate("SE", "SE123456789702"),
            Err(VatNumberError::Format { .. })
        ));
    }

    #[test]
    fn sk_mod_11() {
        ok("SK", "SK2022749619");
        bad_check("SK", "SK2022749618");
        wrong_prefix("SK", "CZ2022749619");
    }

    #[test]
    fn greece_uses_el_and_formats_of_the_rest() {
        ok("GR", "EL094259216");
        wrong_prefix("GR", "GR094259216");
        ok("CY", "CY10259033P");
        assert!(matches!(
            validate("MT", "MT1234567"),
            Err(VatNumberError::Format { .. })
        ));
        // Outside the EU nothing is checked.
        ok("US", "12-3456789");
    }
}
