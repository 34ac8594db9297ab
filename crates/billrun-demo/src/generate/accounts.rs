//! The demo's accounts: a country drawn by weight, a name, an address and an email in its
//! style; for businesses a company name and a VAT number (EU) or local tax id; a referral.

use super::at_second;
use super::rng::Rng;
use super::tables::{AddressStyle, Country, Names, Tables};
use billrun::core::countries::{is_eu_member, vat_prefix};
use billrun::core::ids::AccountId;
use billrun::core::invoice::Language;
use billrun::model::Account;

use AddressStyle::{Japan, NorthAmerica, NumberAfter, NumberFirst, Uk};

/// A company name and the slug its apps may be named after.
fn company_name(
    rng: &mut Rng,
    country: &Country,
    names: &Names,
    last: &str,
    french: bool,
) -> (String, String) {
    let form = rng.pick(&country.legal_forms);
    // French sector words in francophone countries only (not for a French reader in Madrid).
    let sector = if french && country.french >= 25 {
        rng.pick(&names.sectors_fr)
    } else {
        rng.pick(&names.sectors)
    };
    match rng.below(100) {
        0..=39 => {
            let brand = rng.pick(&names.brands);
            (format!("{brand} {sector} {form}"), slug(brand))
        }
        40..=69 => {
            let word = format!(
                "{}{}",
                rng.pick(&names.word_heads),
                rng.pick(&names.word_tails)
            );
            let s = slug(&word);
            (format!("{word} {form}"), s)
        }
        _ => (format!("{last} {sector} {form}"), slug(last)),
    }
}

/// Lowercase ASCII letters only: accents folded, everything else dropped.
fn push_folded(out: &mut String, s: &str) {
    for c in s.chars().flat_map(char::to_lowercase) {
        let folded: &str = match c {
            'a'..='z' => {
                out.push(c);
                continue;
            }
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ą' => "a",
            'æ' => "ae",
            'ç' | 'ć' | 'č' => "c",
            'ď' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ę' | 'ě' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ł' => "l",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ő' => "o",
            'œ' => "oe",
            'ř' => "r",
            'ś' | 'š' => "s",
            'ß' => "ss",
            'ť' => "t",
            'ù' | 'ú' | 'û' | 'ü' | 'ů' | 'ű' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            _ => "",
        };
        out.push_str(folded);
    }
}

fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_folded(&mut out, s);
    if out.is_empty() {
        out.push_str("user");
    }
    out
}

fn slug(s: &str) -> String {
    let mut out = fold(s);
    out.truncate(16);
    out
}

/// Surnames that agree with a woman's first name (Polish `-ska`, Greek `-ou`, `-i`, `-a`).
fn surname_for(country: &str, first: &str, last: &str) -> String {
    match country {
        "PL" if first.ends_with('a') => {
            for male in ["ski", "cki", "dzki"] {
                if let Some(stem) = last.strip_suffix(male) {
                    return format!("{stem}{}a", &male[..male.len() - 1]);
                }
            }
            last.to_string()
        }
        "GR" if !first.ends_with('s') => {
            if let Some(stem) = last.strip_suffix("os") {
                format!("{stem}ou")
            } else if let Some(stem) = last.strip_suffix("is") {
                format!("{stem}i")
            } else if let Some(stem) = last.strip_suffix("as") {
                format!("{stem}a")
            } else {
                last.to_string()
            }
        }
        _ => last.to_string(),
    }
}

fn address(rng: &mut Rng, country: &Country) -> String {
    let street = rng.pick(&country.streets);
    let (postcode, city) = rng.pick(&country.cities);
    let number = if rng.chance(70) {
        rng.range(1, 60)
    } else {
        rng.range(61, 240)
    };
    match country.address_style {
        NumberFirst => format!("{number} {street}, {postcode} {city}"),
        NumberAfter => format!("{street} {number}, {postcode} {city}"),
        NorthAmerica => format!("{number} {street}, {city}, {postcode}"),
        Uk => format!("{number} {street}, {city} {postcode}"),
        Japan => format!(
            "{}-{}-{} {street}, {city} {postcode}",
            rng.range(1, 6),
            rng.range(1, 30),
            rng.range(1, 20)
        ),
    }
}

fn digits(rng: &mut Rng, n: u32) -> String {
    let max = 10i64.pow(n) - 1;
    format!("{:0width$}", rng.range(0, max), width = n as usize)
}

/// The check digit that makes `payload` followed by it pass the Luhn test.
fn luhn_digit(payload: u64) -> u64 {
    let mut sum = 0;
    let mut rest = payload;
    let mut double = true;
    while rest > 0 {
        let d = rest % 10;
        rest /= 10;
        sum += if double {
            if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
        } else {
            d
        };
        double = !double;
    }
    (10 - sum % 10) % 10
}

/// A VAT number of an EU business, in its country's format, with check digits where they are
/// simple (France, Belgium, Italy).
fn eu_vat_number(rng: &mut Rng, code: &str) -> String {
    let body = match code {
        "FR" => {
            let payload = rng.range(30_000_000, 99_999_999) as u64;
            let siren = payload * 10 + luhn_digit(payload);
            let key = (12 + 3 * (siren % 97)) % 97;
            format!("{key:02}{siren:09}")
        }
        "BE" => {
            let first8 = rng.range(2_000_000, 19_999_999);
            format!("{first8:08}{:02}", 97 - first8 % 97)
        }
        "IT" => {
            let payload = rng.range(1_000_000_000, 9_999_999_999) as u64;
            format!("{payload}{}", luhn_digit(payload))
        }
        "DE" => rng.range(100_000_000, 999_999_999).to_string(),
        "ES" => format!(
            "{}{}",
            if rng.chance(70) { 'B' } else { 'A' },
            digits(rng, 8)
        ),
        "NL" => format!(
            "{}B{:02}",
            rng.range(100_000_000, 999_999_999),
            rng.range(1, 3)
        ),
        "PL" => rng.range(1_000_000_000, 9_999_999_999).to_string(),
        "PT" => format!("5{}", digits(rng, 8)),
        "IE" => format!(
            "{}{}",
            rng.range(1_000_000, 9_999_999),
            char::from(b'A' + rng.below(23) as u8)
        ),
        "AT" => format!("U{}", digits(rng, 8)),
        "SE" => format!("{}01", rng.range(5_500_000_000, 5_599_999_999)),
        "EE" => format!("10{}", digits(rng, 7)),
        "FI" | "LU" | "DK" => rng.range(10_000_000, 99_999_999).to_string(),
        _ => rng.range(100_000_000, 999_999_999).to_string(),
    };
    valid_vat_number(code, &format!("{}{body}", vat_prefix(code)))
}

/// `number` with its check character set so that it passes `core::vat_number::validate`,
/// without drawing from the generator (the rest of the demo stays the same): each candidate
/// for the check position in turn, the digit before it bumped when none fits.
fn valid_vat_number(code: &str, number: &str) -> String {
    use billrun::core::vat_number::validate;
    if validate(code, number).is_ok() {
        return number.to_string();
    }
    let prefix = vat_prefix(code).len();
    // The check character: the ninth digit of a Dutch number (before B01), the tenth of a
    // Swedish one (before 01), else the last.
    let pos = match code {
        "NL" => prefix + 8,
        "SE" => prefix + 9,
        _ => number.len() - 1,
    };
    let mut chars: Vec<u8> = number.as_bytes().to_vec();
    for _ in 0..10 {
        for c in b"0123456789ABCDEFGHIJKLMNOPQRSTUVW" {
            chars[pos] = *c;
            let candidate = String::from_utf8_lossy(&chars).into_owned();
            if validate(code, &candidate).is_ok() {
                return candidate;
            }
        }
        let before = &mut chars[pos - 1];
        if before.is_ascii_digit() {
            *before = b'0' + (*before - b'0' + 1) % 10;
        }
    }
    number.to_string()
}

/// A local tax id of a business outside the EU, or none (most don't give one).
fn foreign_tax_id(rng: &mut Rng, country: &Country, french: bool) -> Option<String> {
    if !rng.chance(country.tax_id) {
        return None;
    }
    Some(match country.code.as_str() {
        "GB" => format!("GB{}", rng.range(100_000_000, 999_999_999)),
        "CH" => format!(
            "CHE-{:03}.{:03}.{:03} {}",
            rng.range(100, 999),
            rng.range(0, 999),
            rng.range(0, 999),
            if french { "TVA" } else { "MWST" }
        ),
        "NO" => format!("NO{}MVA", rng.range(900_000_000, 999_999_999)),
        "US" => format!("{:02}-{}", rng.range(10, 99), digits(rng, 7)),
        "CA" => format!("{}RT0001", rng.range(100_000_000, 999_999_999)),
        "JP" => format!("T{}", rng.range(1_000_000_000_000, 9_999_999_999_999)),
        "MA" => format!("00{}", digits(rng, 13)),
        _ => return None,
    })
}

const EMAIL_DOMAINS: &[(&str, u64)] = &[
    ("example.com", 60),
    ("example.org", 20),
    ("example.net", 20),
];

/// `prenom.nom.42@example.com` and variants. Every local part ends with the account's number
/// after a letter or a dot, and names fold to letters only: emails are unique by construction.
fn email(rng: &mut Rng, first: &str, last: &str, number: usize) -> String {
    let f = fold(first);
    let l = fold(last);
    let domain = rng.weighted(EMAIL_DOMAINS);
    match rng.below(100) {
        0..=49 => format!("{f}.{l}.{number}@{domain}"),
        50..=69 => format!("{}{l}{number}@{domain}", &f[..1]),
        70..=79 => format!("{f}{number}@{domain}"),
        80..=89 => format!("{f}_{l}{number}@{domain}"),
        _ => format!("{l}.{f}{number}@{domain}"),
    }
}

/// Account number `index + 1`, signed up at `created_at`, and the slug its apps may be named
/// after.
pub fn make_account(
    rng: &mut Rng,
    tables: &Tables,
    index: usize,
    created_at: i64,
    recent_from: i64,
) -> (Account, String) {
    let country = &tables.countries[rng.weighted(&tables.weights)];
    let first = rng.pick(&country.first_names).as_str();
    let family_name = rng.pick(&country.last_names);
    let last = surname_for(&country.code, first, family_name);
    let french = rng.chance(country.french);
    let business = rng.chance(45);

    let (company, vat_number, app_slug) = if business {
        let (company, app_slug) = company_name(rng, country, &tables.names, &last, french);
        let vat = if is_eu_member(&country.code) {
            Some(eu_vat_number(rng, &country.code))
        } else {
            foreign_tax_id(rng, country, french)
        };
        (Some(company), vat, app_slug)
    } else {
        let app_slug = if rng.chance(50) {
            slug(first)
        } else {
            slug(&last)
        };
        (None, None, app_slug)
    };

    let number = index + 1;
    let email = email(rng, first, &last, number);
    let address = address(rng, country);
    // Referrals: more among recent sign-ups, so that many still earn their reward.
    let referral_percent = if created_at >= recent_from { 22 } else { 9 };
    let referred_by = (index > 0 && rng.chance(referral_percent))
        .then(|| AccountId(format!("acc-{:06}", rng.below(index as u64) + 1)));

    // A French business's SIREN is its VAT number's last 9 digits (article 286 ter of the
    // CGI), and its e-invoice address in the French directory (scheme 0225) is that SIREN:
    // derived, nothing drawn, so the rest of the demo stays the same.
    let siren = vat_number
        .as_deref()
        .filter(|_| country.code == "FR")
        .and_then(|v| v.get(4..))
        .and_then(|s| billrun::core::einvoice::validate_siren(s).ok());
    let electronic_address = siren
        .as_ref()
        .map(|s| billrun::core::einvoice::ElectronicAddress {
            scheme: "0225".into(),
            id: s.clone(),
        });
    let account = Account {
        id: AccountId(format!("acc-{number:06}")),
        email,
        name: format!("{first} {last}"),
        company,
        address,
        country: country.code.clone(),
        vat_number,
        language: if french { Language::Fr } else { Language::En },
        created_at: at_second(created_at),
        referred_by,
        siren,
        electronic_address,
    };
    (account, app_slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_names_gives_lowercase_ascii() {
        assert_eq!(fold("Łukasz"), "lukasz");
        assert_eq!(fold("Wójcik"), "wojcik");
        assert_eq!(fold("O'Sullivan"), "osullivan");
        assert_eq!(fold("Søren Jørgensen"), "sorenjorgensen");
        assert_eq!(fold("Müller-Straße"), "mullerstrasse");
        assert_eq!(fold("Élodie"), "elodie");
        assert_eq!(fold("日本"), "user");
        assert_eq!(surname_for("PL", "Zofia", "Kowalski"), "Kowalska");
        assert_eq!(surname_for("PL", "Jan", "Kowalski"), "Kowalski");
        assert_eq!(surname_for("GR", "Eleni", "Papadopoulos"), "Papadopoulou");
        assert_eq!(surname_for("GR", "Maria", "Papadakis"), "Papadaki");
    }
}
