//! The core reads no clock. Its dependencies keep out the database, the runtime and the network
//! (none of them is in its Cargo.toml), but chrono's `clock` feature comes in with croner, so the
//! clock is checked here: no source file of the core calls one. "Now" is always a parameter.

use std::path::Path;

const CLOCKS: &[&str] = &[
    "Utc::now",
    "Local::now",
    "SystemTime::now",
    "Instant::now",
    "chrono::offset::Local",
    "UNIX_EPOCH.elapsed",
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_of_the_core_reads_a_clock() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10, "the core's sources were found: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if let Some(clock) = CLOCKS.iter().find(|c| line.contains(*c)) {
                found.push(format!("{}:{}: {clock}", file.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "the core reads a clock: {found:#?}");
}
