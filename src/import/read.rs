//! Reading import files: CSV with a header, or NDJSON with the same keys, by file extension.
//! Each record comes out as its line number and a map of field to text (empty = absent).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::LineError;
use crate::core::bounds::excerpt;

pub type Fields = BTreeMap<String, String>;

/// What a file holds: its records (line, fields), and the records that could not be read
/// (a line that is not JSON, a CSV record with too many fields), one error or more each.
pub type ReadOutcome = (Vec<(usize, Fields)>, Vec<LineError>);

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

/// Reads every record of the file. A CSV file without a usable header is refused as a whole
/// (`Err`, whatever `--skip-invalid` says: no record of it can be read). Records that cannot
/// be read are returned as line errors alongside those that could.
pub fn read_records(
    file: &str,
    text: &str,
    format: Format,
    columns: &[&str],
    required: &[&str],
) -> Result<ReadOutcome, LineError> {
    match format {
        Format::Csv => read_csv(file, text, columns, required),
        Format::Ndjson => Ok(read_ndjson(file, text, columns, required)),
    }
}

/// The problems of a record's (or a header's) keys: unknown, duplicated or missing.
fn key_problems<'a>(
    keys: impl Iterator<Item = &'a str>,
    columns: &[&str],
    required: &[&str],
) -> Vec<(String, String)> {
    let keys: Vec<&str> = keys.collect();
    let mut problems = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if !columns.contains(k) {
            problems.push((
                k.to_string(),
                format!("unknown field (expected: {})", columns.join(",")),
            ));
        } else if keys[..i].contains(k) {
            problems.push((k.to_string(), "given twice".to_string()));
        }
    }
    for r in required {
        if !keys.contains(r) {
            problems.push((r.to_string(), "missing field".to_string()));
        }
    }
    problems
}

/// Line numbers of byte offsets, counted forward once over the text (offsets come in order).
struct Lines<'t> {
    text: &'t [u8],
    at: usize,
    line: usize,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        Lines {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line of the first character at or after `byte` that is not a line break: the csv
    /// crate places a record after `\r\n` at the `\n` (one line too low in a CRLF file).
    fn of(&mut self, byte: u64) -> usize {
        let mut b = (byte as usize).min(self.text.len());
        while matches!(self.text.get(b), Some(b'\r' | b'\n')) {
            b += 1;
        }
        if b < self.at {
            self.at = 0;
            self.line = 1;
        }
        self.line += self.text[self.at..b]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        self.at = b;
        self.line
    }
}

fn read_csv(
    file: &str,
    text: &str,
    columns: &[&str],
    required: &[&str],
) -> Result<ReadOutcome, LineError> {
    let expected = columns.join(",");
    if text.trim().is_empty() {
        return Err(LineError::new(
            file,
            1,
            "header",
            format!("the file is empty: no header (expected: {expected})"),
        ));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut lines = Lines::new(text);
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(LineError::new(
                file,
                1,
                "header",
                format!("cannot read the header: {}", excerpt(&e.to_string())),
            ));
        }
    };
    let header_line = headers.position().map_or(1, |p| lines.of(p.byte()));
    if !headers.iter().any(|h| columns.contains(&h)) {
        let first = text.trim_start().lines().next().unwrap_or_default();
        return Err(LineError::new(
            file,
            header_line,
            "header",
            format!(
                "the header is missing: the first line must name the columns (expected: {expected}), not `{}`",
                excerpt(first)
            ),
        ));
    }
    let problems = key_problems(headers.iter(), columns, required);
    if !problems.is_empty() {
        let what: Vec<String> = problems
            .iter()
            .map(|(k, why)| format!("`{}` {why}", excerpt(k)))
            .collect();
        return Err(LineError::new(file, header_line, "header", what.join("; ")));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for rec in rdr.records() {
        match rec {
            Ok(r) => {
                let line = r.position().map_or(0, |p| lines.of(p.byte()));
                let fields = headers
                    .iter()
                    .zip(r.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect();
                out.push((line, fields));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.of(p.byte()));
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} field(s) where the header names {expected_len}"),
                    _ => excerpt(&e.to_string()),
                };
                errors.push(LineError::new(file, line, "record", msg));
            }
        }
    }
    Ok((out, errors))
}

/// A JSON object's members in the order written, duplicates kept (a map would keep the last).
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = m.next_entry::<String, Box<RawValue>>()? {
                    v.push(entry);
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

fn read_ndjson(file: &str, text: &str, columns: &[&str], required: &[&str]) -> ReadOutcome {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        // Values are read as raw JSON so that numbers keep their exact text (never via f64).
        let members = match serde_json::from_str::<Members>(raw) {
            Ok(o) => o.0,
            Err(e) => {
                errors.push(LineError::new(
                    file,
                    line,
                    "record",
                    format!("not a JSON object: {}", excerpt(&e.to_string())),
                ));
                continue;
            }
        };
        let problems = key_problems(members.iter().map(|(k, _)| k.as_str()), columns, required);
        if !problems.is_empty() {
            for (k, why) in problems {
                errors.push(LineError::new(file, line, &k, why));
            }
            continue;
        }
        let mut fields = Fields::new();
        let mut bad = false;
        for (k, v) in members {
            let raw = v.get().trim();
            let text = if raw == "null" {
                String::new()
            } else if raw.starts_with('"') {
                match serde_json::from_str::<String>(raw) {
                    Ok(s) => s.trim().to_string(),
                    Err(e) => {
                        errors.push(LineError::new(
                            file,
                            line,
                            &k,
                            format!("bad string: {}", excerpt(&e.to_string())),
                        ));
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
                    format!("expected a string or number, got {}", excerpt(raw)),
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

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[&str] = &["id", "name"];

    fn csv(text: &str) -> Result<ReadOutcome, LineError> {
        read_records("f.csv", text, Format::Csv, COLS, COLS)
    }

    #[test]
    fn crlf_records_are_named_by_their_own_line() {
        let (records, errors) = csv("id,name\r\na,A\r\n\r\nb,B\r\nc\r\n").unwrap();
        let lines: Vec<usize> = records.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![2, 4]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 5, "{}", errors[0]);
        let (records, _) = csv("id,name\na,A\nb,B\n").unwrap();
        let lines: Vec<usize> = records.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![2, 3]);
        // A quoted field spanning lines: the record is named by the line it starts on.
        let (records, _) = csv("id,name\r\na,\"two\r\nlines\"\r\nb,B\r\n").unwrap();
        let lines: Vec<usize> = records.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![2, 4]);
    }

    #[test]
    fn an_empty_file_has_no_header() {
        for text in ["", "\n", "  \r\n"] {
            let e = csv(text).unwrap_err();
            assert_eq!((e.line, e.field.as_str()), (1, "header"));
            assert!(e.message.contains("no header"), "{e}");
        }
    }

    #[test]
    fn a_file_without_its_header_says_so() {
        let e = csv("a,A\nb,B\n").unwrap_err();
        assert!(e.message.starts_with("the header is missing"), "{e}");
        let e = csv("id,nom\na,A\n").unwrap_err();
        assert!(e.message.contains("`nom` unknown field"), "{e}");
        assert!(e.message.contains("`name` missing field"), "{e}");
        let e = csv("id,name,id\na,A,b\n").unwrap_err();
        assert!(e.message.contains("`id` given twice"), "{e}");
    }

    #[test]
    fn ndjson_duplicate_keys_are_refused() {
        let (records, errors) = read_records(
            "f.ndjson",
            "{\"id\":\"a\",\"name\":\"A\",\"name\":\"B\"}\n{\"id\":\"b\",\"name\":\"B\"}\r\n",
            Format::Ndjson,
            COLS,
            COLS,
        )
        .unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0, 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].to_string(), "f.ndjson:1: name: given twice");
    }

    #[test]
    fn a_huge_value_is_quoted_in_part() {
        let big = "x".repeat(1_000_000);
        let (_, errors) = read_records(
            "f.ndjson",
            &format!("{{\"id\":[\"{big}\"],\"name\":\"A\"}}\n[\"{big}\"]\n"),
            Format::Ndjson,
            COLS,
            COLS,
        )
        .unwrap();
        assert_eq!(errors.len(), 2);
        for e in errors {
            assert!(e.to_string().len() < 400, "{}", e.to_string().len());
        }
        let e = csv(&format!("{big},name\n")).unwrap_err();
        assert!(e.to_string().len() < 400);
    }
}
