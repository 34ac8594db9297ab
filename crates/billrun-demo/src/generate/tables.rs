//! The demo's countries and names: data files (`crates/billrun-demo/src/data/*.toml`) compiled in and read
//! once, on first use.

use std::sync::LazyLock;

use serde::Deserialize;

const COUNTRIES: &str = include_str!("../data/countries.toml");
const NAMES: &str = include_str!("../data/names.toml");

/// How a country writes an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressStyle {
    /// `12 rue Victor Hugo, 69003 Lyon`
    NumberFirst,
    /// `Hauptstraße 12, 10115 Berlin`
    NumberAfter,
    /// `12 Market Street, San Francisco, CA 94103` (the "postcode" holds the state)
    NorthAmerica,
    /// `12 Baker Street, London NW1 6XE`
    Uk,
    /// `2-14-7 Jingumae, Shibuya-ku, Tokyo 150-0001`
    Japan,
}

/// A country accounts may be in, and what their names and addresses there look like.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Country {
    /// ISO 3166-1 alpha-2.
    pub code: String,
    /// Per mille of accounts.
    pub weight: u64,
    /// Percent of accounts reading French.
    pub french: u64,
    /// Percent of businesses outside the EU that give a local tax id.
    pub tax_id: u64,
    pub address_style: AddressStyle,
    pub legal_forms: Vec<String>,
    pub first_names: Vec<String>,
    pub last_names: Vec<String>,
    pub streets: Vec<String>,
    /// `(postcode, city)`
    pub cities: Vec<(String, String)>,
}

/// Words apps and companies are named with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Names {
    pub app_stems: Vec<String>,
    pub app_roles: Vec<String>,
    pub brands: Vec<String>,
    pub sectors: Vec<String>,
    pub sectors_fr: Vec<String>,
    pub word_heads: Vec<String>,
    pub word_tails: Vec<String>,
}

/// Every table, ready to draw from.
#[derive(Debug)]
pub struct Tables {
    pub countries: Vec<Country>,
    /// `(index into countries, weight)`
    pub weights: Vec<(usize, u64)>,
    pub names: Names,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountriesFile {
    country: Vec<Country>,
}

impl Tables {
    /// Reads the tables from the texts of the data files. Refused if a list is empty (the
    /// generator draws from each) or no country has a weight.
    fn parse(countries: &str, names: &str) -> Result<Tables, String> {
        let countries = toml::from_str::<CountriesFile>(countries)
            .map_err(|e| format!("countries.toml: {e}"))?
            .country;
        let names: Names = toml::from_str(names).map_err(|e| format!("names.toml: {e}"))?;
        for c in &countries {
            let lists = [
                ("legal_forms", c.legal_forms.len()),
                ("first_names", c.first_names.len()),
                ("last_names", c.last_names.len()),
                ("streets", c.streets.len()),
                ("cities", c.cities.len()),
            ];
            if let Some((list, _)) = lists.iter().find(|(_, n)| *n == 0) {
                return Err(format!("countries.toml: {}: `{list}` is empty", c.code));
            }
        }
        let lists = [
            ("app_stems", &names.app_stems),
            ("app_roles", &names.app_roles),
            ("brands", &names.brands),
            ("sectors", &names.sectors),
            ("sectors_fr", &names.sectors_fr),
            ("word_heads", &names.word_heads),
            ("word_tails", &names.word_tails),
        ];
        if let Some((list, _)) = lists.iter().find(|(_, l)| l.is_empty()) {
            return Err(format!("names.toml: `{list}` is empty"));
        }
        if countries.iter().map(|c| c.weight).sum::<u64>() == 0 {
            return Err("countries.toml: no country has a weight".into());
        }
        Ok(Tables {
            weights: countries.iter().map(|c| c.weight).enumerate().collect(),
            countries,
            names,
        })
    }
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    // The files are compiled in: a unit test reads them, so this cannot fail in a build
    // whose tests pass.
    Tables::parse(COUNTRIES, NAMES).unwrap_or_else(|e| panic!("crates/billrun-demo/src/data/{e}"))
});

/// The tables, read on first use.
pub fn tables() -> &'static Tables {
    &TABLES
}

#[cfg(test)]
mod tests {
    use super::*;
    use billrun::core::countries::{is_eu_member, is_iso_country};

    #[test]
    fn country_table_is_well_formed() {
        let tables = Tables::parse(COUNTRIES, NAMES).unwrap();
        assert_eq!(tables.countries.len(), 23);
        assert_eq!(tables.countries.iter().map(|c| c.weight).sum::<u64>(), 1000);
        let mut codes = std::collections::HashSet::new();
        for c in &tables.countries {
            assert!(is_iso_country(&c.code), "{}", c.code);
            assert!(codes.insert(c.code.as_str()), "{} twice", c.code);
            let words = c
                .first_names
                .iter()
                .chain(&c.last_names)
                .chain(&c.streets)
                .chain(&c.legal_forms)
                .chain(c.cities.iter().flat_map(|(p, city)| [p, city]));
            for w in words {
                assert!(!w.is_empty() && w.trim() == w, "{}: `{w}`", c.code);
            }
            assert!(
                c.first_names.len() >= 10 && c.last_names.len() >= 10,
                "{}",
                c.code
            );
            assert!(c.french <= 100 && c.tax_id <= 100);
            if is_eu_member(&c.code) {
                assert_eq!(c.tax_id, 0, "EU businesses give a VAT number");
            }
        }
    }

    #[test]
    fn name_lists_are_words() {
        let names = &tables().names;
        let lists = [
            &names.app_stems,
            &names.app_roles,
            &names.brands,
            &names.sectors,
            &names.sectors_fr,
            &names.word_heads,
            &names.word_tails,
        ];
        for list in lists {
            assert!(!list.is_empty());
            for w in list {
                assert!(!w.is_empty() && w.trim() == w, "`{w}`");
            }
        }
        // App names are lowercase ASCII letters, digits and `-`.
        for w in names.app_stems.iter().chain(&names.app_roles) {
            assert!(w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
        }
    }

    #[test]
    fn an_empty_list_is_refused() {
        let start = NAMES.find("brands = [").unwrap();
        let end = start + NAMES[start..].find(']').unwrap() + 1;
        let names = format!("{}brands = []{}", &NAMES[..start], &NAMES[end..]);
        let e = Tables::parse(COUNTRIES, &names).unwrap_err();
        assert_eq!(e, "names.toml: `brands` is empty");
        let e = Tables::parse("[[country]]\ncode = \"FR\"", NAMES).unwrap_err();
        assert!(e.starts_with("countries.toml: "), "{e}");
    }
}
