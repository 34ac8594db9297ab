//! Reading import files: CSV with a header, or NDJSON with the same keys, by file extension.
//! Each record comes out as its line number and a map of field to text (empty = absent).

use std::collections::BTreeMap;
use std::path::Path;

use super::LineError;

pub type Fields = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn from_path(path: &Path) -> Result<Format, String> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("csv") => Ok(Format::Csv),
            Some("ndjson") | Some("jsonl") => Ok(Format::Ndjson),
            _ => Err(format!(
                "{}: unknown file type: use a .csv file (with a header) or a .ndjson file",
                path.display()
            )),
        }
    }
}

/// Reads every record of the file. Structural errors (a bad header, a line that is not JSON)
/// are returned as line errors alongside the records that could be read.
pub fn read_records(
    file: &str,
    text: &str,
    format: Format,
    columns: &[&str],
    required: &[&str],
) -> (Vec<(usize, Fields)>, Vec<LineError>) {
    match format {
        Format::Csv => read_csv(file, text, columns, required),
        Format::Ndjson => read_ndjson(file, text, columns, required),
    }
}

fn check_keys<'a>(
    file: &str,
    line: usize,
    keys: impl Iterator<Item = &'a str>,
    columns: &[&str],
    required: &[&str],
) -> Vec<LineError> {
    let keys: Vec<&str> = keys.collect();
    let mut errors = Vec::new();
    for k in &keys {
        if !columns.contains(k) {
            errors.push(LineError::new(
                file,
                line,
                k,
                format!("unknown field (expected: {})", columns.join(",")),
            ));
        }
    }
    for r in required {
        if !keys.contains(r) {
            errors.push(LineError::new(file, line, r, "missing field".to_string()));
        }
    }
    errors
}

fn read_csv(
    file: &str,
    text: &str,
    columns: &[&str],
    required: &[&str],
) -> (Vec<(usize, Fields)>, Vec<LineError>) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return (
                Vec::new(),
                vec![LineError::new(file, 1, "header", e.to_string())],
            );
        }
    };
    let header_errors = check_keys(file, 1, headers.iter(), columns, required);
    if !header_errors.is_empty() {
        return (Vec::new(), header_errors);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for rec in rdr.records() {
        match rec {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                let fields = headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect();
                out.push((line, fields));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(LineError::new(file, line, "record", e.to_string()));
            }
        }
    }
    (out, errors)
}

fn read_ndjson(
    file: &str,
    text: &str,
    columns: &[&str],
    required: &[&str],
) -> (Vec<(usize, Fields)>, Vec<LineError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        // Values are read as raw JSON so that numbers keep their exact text (never via f64).
        let obj =
            match serde_json::from_str::<BTreeMap<String, Box<serde_json::value::RawValue>>>(raw) {
                Ok(o) => o,
                Err(e) => {
                    errors.push(LineError::new(
                        file,
                        line,
                        "record",
                        format!("not a JSON object: {e}"),
                    ));
                    continue;
                }
            };
        let key_errors = check_keys(
            file,
            line,
            obj.keys().map(|k| k.as_str()),
            columns,
            required,
        );
        if !key_errors.is_empty() {
            errors.extend(key_errors);
            continue;
        }
        let mut fields = Fields::new();
        let mut bad = false;
        for (k, v) in obj {
            let raw = v.get().trim();
            let text = if raw == "null" {
                String::new()
            } else if raw.starts_with('"') {
                match serde_json::from_str::<String>(raw) {
                    Ok(s) => s.trim().to_string(),
                    Err(e) => {
                        errors.push(LineError::new(file, line, &k, format!("bad string: {e}")));
                        bad = true;
                        continue;
                    }
                }
            } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                raw.to_string()
            } else {
                errors.push(LineError::new(
                    file,
                    line,
                    &k,
                    format!("expected a string or number, got {raw}"),
                ));
                bad = true;
                continue;
            };
            fields.insert(k, text);
        }
        if !bad {
            out.push((line, fields));
        }
    }
    (out, errors)
}
