//! Errors as one line of text, each cause said once.
//!
//! `{:#}` on an `anyhow::Error` joins every cause with `: `. Some errors repeat their source in
//! their own message: sqlx's database errors say "error returned from database: {source}" and
//! return that source too, so a missing database read `database "x" does not exist at line
//! 948: database "x" does not exist at line 948`. [`chain`] leaves such a cause out.

/// The error and its causes joined by `: `, leaving out a cause whose text the one before
/// already ends with.
pub fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !previous.is_empty() && previous.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        previous = text;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("database \"x\" does not exist")]
    struct Inner;

    /// Says its source in its own message, and returns it as its source, as sqlx does.
    #[derive(Debug, thiserror::Error)]
    #[error("error returned from database: {0}")]
    struct Repeats(#[source] Inner);

    #[test]
    fn a_cause_repeated_by_its_parent_is_said_once() {
        let e = anyhow::Error::new(Repeats(Inner)).context("cannot connect to PostgreSQL");
        assert_eq!(
            format!("{e:#}"),
            "cannot connect to PostgreSQL: error returned from database: database \"x\" does not exist: database \"x\" does not exist"
        );
        assert_eq!(
            chain(&e),
            "cannot connect to PostgreSQL: error returned from database: database \"x\" does not exist"
        );
        let plain = anyhow::anyhow!("timed out").context("reading");
        assert_eq!(chain(&plain), "reading: timed out");
    }
}
