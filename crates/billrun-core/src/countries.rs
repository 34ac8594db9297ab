//! ISO 3166-1 alpha-2 country codes and membership of the European Union.

/// Every officially assigned ISO 3166-1 alpha-2 code.
const ISO_3166_ALPHA2: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The 27 member states of the European Union (the United Kingdom left on 2020-12-31).
const EU_MEMBERS: &[&str] = &[
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

#[cfg(test)]
pub(crate) const EU_MEMBERS_FOR_TESTS: &[&str] = EU_MEMBERS;

pub fn is_iso_country(code: &str) -> bool {
    ISO_3166_ALPHA2.binary_search(&code).is_ok()
}

pub fn is_eu_member(code: &str) -> bool {
    EU_MEMBERS.contains(&code)
}

/// The prefix a VAT number of this EU country starts with (Greece uses `EL`).
pub fn vat_prefix(code: &str) -> &str {
    match code {
        "GR" => "EL",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_list_is_sorted_so_binary_search_works() {
        let mut sorted = ISO_3166_ALPHA2.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, ISO_3166_ALPHA2);
        assert_eq!(ISO_3166_ALPHA2.len(), 249);
    }

    #[test]
    fn knows_countries_and_the_eu() {
        assert!(is_iso_country("FR"));
        assert!(is_iso_country("US"));
        assert!(!is_iso_country("XX"));
        assert!(!is_iso_country("fr"));
        assert!(is_eu_member("DE"));
        assert!(!is_eu_member("GB"));
        assert!(!is_eu_member("CH"));
        assert_eq!(EU_MEMBERS.len(), 27);
        assert!(EU_MEMBERS.iter().all(|c| is_iso_country(c)));
    }
}
