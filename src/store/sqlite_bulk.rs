//! Bulk inserts (and the month's usage reads) on SQLite through the connection's own handle.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement, every
//! bound value and every returned row across a channel to it. For the few rows of most
//! statements that costs nothing; for the invoice job, which writes thousands of rows per group
//! (invoices, their lines, events, emails), it cost several times what SQLite itself spends
//! writing them. Here the caller locks the connection (`SqliteConnection::lock_handle`, inside
//! its transaction), prepares one single-row `INSERT` per table and steps it once per row on
//! its own thread (or steps a `SELECT` through its rows): SQLite's work and no more.
//!
//! Values are bound exactly as sqlx encodes them (see [`Val`]), so that rows written here and
//! rows written through sqlx are the same bytes; a test compares a group's rows with the rows
//! the one-by-one path writes.

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use libsqlite3_sys as ffi;
use rust_decimal::Decimal;
use sqlx::sqlite::LockedSqliteHandle;

/// A value to bind, encoded as sqlx encodes the same Rust value for SQLite.
pub(crate) enum Val<'a> {
    Int(i64),
    Text(&'a str),
    /// Text made for this row (a time, a date, a decimal).
    Owned(String),
    /// Bytes, bound as a BLOB (sqlx: `&[u8]`, `Vec<u8>`).
    Blob(&'a [u8]),
    Null,
}

impl<'a> Val<'a> {
    pub(crate) fn text(s: &'a str) -> Val<'a> {
        Val::Text(s)
    }

    pub(crate) fn opt_text(s: Option<&'a str>) -> Val<'a> {
        s.map_or(Val::Null, Val::Text)
    }

    pub(crate) fn opt_int(n: Option<i64>) -> Val<'a> {
        n.map_or(Val::Null, Val::Int)
    }

    /// sqlx: `to_rfc3339_opts(SecondsFormat::AutoSi, false)`.
    pub(crate) fn time(t: DateTime<Utc>) -> Val<'a> {
        Val::Owned(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }

    /// sqlx: `%F`.
    pub(crate) fn date(d: NaiveDate) -> Val<'a> {
        Val::Owned(d.format("%F").to_string())
    }

    /// `DbDecimal`: the normalized decimal as text.
    pub(crate) fn decimal(d: Decimal) -> Val<'a> {
        Val::Owned(d.normalize().to_string())
    }
}

/// The connection of a locked handle, for as long as the lock is held.
pub(crate) struct Raw<'h> {
    db: NonNull<ffi::sqlite3>,
    _lock: PhantomData<&'h mut ()>,
}

impl<'h> Raw<'h> {
    pub(crate) fn new(handle: &'h mut LockedSqliteHandle<'_>) -> Raw<'h> {
        Raw {
            db: handle.as_raw_handle(),
            _lock: PhantomData,
        }
    }

    /// Prepares `sql` (one statement); `what` names it in errors.
    pub(crate) fn prepare<'r>(
        &'r self,
        sql: &str,
        what: &'static str,
    ) -> anyhow::Result<Statement<'r>> {
        let mut raw = std::ptr::null_mut();
        let len = c_int::try_from(sql.len())?;
        // SAFETY: the handle is locked for us for 'h (no other thread uses the connection) and
        // `sql` is valid for `len` bytes for the call.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut raw,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK || raw.is_null() {
            anyhow::bail!("{what}: preparing: {}", self.error(rc));
        }
        Ok(Statement {
            raw,
            raw_db: self,
            what,
        })
    }

    fn error(&self, rc: c_int) -> String {
        // SAFETY: the handle is valid and locked; the message is copied before any other call.
        let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) };
        format!(
            "{} (SQLite error {rc})",
            msg.to_string_lossy().trim_end_matches('\0')
        )
    }
}

/// A prepared statement, finalized on drop.
pub(crate) struct Statement<'r> {
    raw: *mut ffi::sqlite3_stmt,
    raw_db: &'r Raw<'r>,
    what: &'static str,
}

impl Statement<'_> {
    /// Resets the statement and binds `values` in order, without copying them: the caller
    /// must [`Statement::unbind`] before `values` goes away.
    fn bind(&mut self, values: &[Val<'_>]) -> anyhow::Result<()> {
        // SAFETY: `raw` is a live statement of the locked connection. Text and bytes are bound
        // with SQLITE_STATIC (SQLite reads them in place while it steps, without a copy and
        // its allocation first: 4% of the instructions of a group's invoices and lines);
        // `run` and `query` unbind them before they return, so no binding outlives its value.
        c_int::try_from(values.len())?;
        unsafe {
            ffi::sqlite3_reset(self.raw);
            for (at, v) in (1..).zip(values) {
                let rc = match v {
                    Val::Int(n) => ffi::sqlite3_bind_int64(self.raw, at, *n),
                    Val::Text(s) => bind_text(self.raw, at, s),
                    Val::Owned(s) => bind_text(self.raw, at, s),
                    Val::Blob(b) => bind_blob(self.raw, at, b),
                    Val::Null => ffi::sqlite3_bind_null(self.raw, at),
                };
                if rc != ffi::SQLITE_OK {
                    let e = self.raw_db.error(rc);
                    self.unbind();
                    anyhow::bail!("{}: binding value {at}: {e}", self.what);
                }
            }
        }
        Ok(())
    }

    /// Ends the statement's run and drops every binding (SQLite keeps bindings across runs;
    /// ours point into the caller's values).
    fn unbind(&mut self) {
        // SAFETY: `raw` is a live statement of the locked connection.
        unsafe {
            ffi::sqlite3_reset(self.raw);
            ffi::sqlite3_clear_bindings(self.raw);
        }
    }

    /// Binds `values` (in order) and runs the statement once: the number of rows it changed
    /// (0 when `ON CONFLICT … DO NOTHING` skipped the row).
    pub(crate) fn run(&mut self, values: &[Val<'_>]) -> anyhow::Result<u64> {
        self.bind(values)?;
        // SAFETY: `raw` is a live statement of the locked connection, its values bound (and
        // alive: `values` is borrowed for this call).
        let outcome = unsafe {
            match ffi::sqlite3_step(self.raw) {
                ffi::SQLITE_DONE => Ok(ffi::sqlite3_changes64(self.raw_db.db.as_ptr()) as u64),
                rc => Err(self.raw_db.error(rc)),
            }
        };
        self.unbind();
        outcome.map_err(|e| anyhow::anyhow!("{}: {e}", self.what))
    }

    /// Binds `values` and hands each row the statement returns to `each`, in order.
    pub(crate) fn query(
        &mut self,
        values: &[Val<'_>],
        mut each: impl FnMut(&Row<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.bind(values)?;
        // SAFETY: as in `run`; a row's values are read before the next step.
        let outcome = unsafe {
            loop {
                match ffi::sqlite3_step(self.raw) {
                    ffi::SQLITE_ROW => {
                        if let Err(e) = each(&Row {
                            raw: self.raw,
                            _statement: PhantomData,
                        }) {
                            break Err(e);
                        }
                    }
                    ffi::SQLITE_DONE => break Ok(()),
                    rc => break Err(anyhow::anyhow!("{}: {}", self.what, self.raw_db.error(rc))),
                }
            }
        };
        self.unbind();
        outcome
    }

    /// The rowid of the row the last [`Statement::run`] inserted.
    pub(crate) fn last_rowid(&self) -> i64 {
        // SAFETY: the handle is valid and locked.
        unsafe { ffi::sqlite3_last_insert_rowid(self.raw_db.db.as_ptr()) }
    }
}

/// The current row of a [`Statement::query`].
pub(crate) struct Row<'s> {
    raw: *mut ffi::sqlite3_stmt,
    _statement: PhantomData<&'s ()>,
}

impl Row<'_> {
    pub(crate) fn is_null(&self, column: c_int) -> bool {
        // SAFETY: the statement is on a row (see `query`).
        unsafe { ffi::sqlite3_column_type(self.raw, column) == ffi::SQLITE_NULL }
    }

    pub(crate) fn int(&self, column: c_int) -> i64 {
        // SAFETY: the statement is on a row (see `query`).
        unsafe { ffi::sqlite3_column_int64(self.raw, column) }
    }

    /// The column as text (empty for NULL); an error names the column if it is not UTF-8.
    pub(crate) fn text(&self, column: c_int) -> anyhow::Result<&str> {
        // SAFETY: the statement is on a row; the pointer and length are read together and the
        // bytes stay valid until the next step, which the borrow of `self` outlasts.
        let bytes = unsafe {
            let p = ffi::sqlite3_column_text(self.raw, column);
            let n = ffi::sqlite3_column_bytes(self.raw, column);
            if p.is_null() || n <= 0 {
                return Ok("");
            }
            std::slice::from_raw_parts(p, n as usize)
        };
        std::str::from_utf8(bytes).map_err(|e| anyhow::anyhow!("column {column}: {e}"))
    }

    /// A time as sqlx stores and reads it: RFC 3339 text (what it writes), `YYYY-MM-DD
    /// HH:MM:SS[.f]` in UTC, or Unix seconds.
    pub(crate) fn time(&self, column: c_int) -> anyhow::Result<DateTime<Utc>> {
        // SAFETY: the statement is on a row.
        if unsafe { ffi::sqlite3_column_type(self.raw, column) } == ffi::SQLITE_INTEGER {
            return DateTime::from_timestamp(self.int(column), 0)
                .ok_or_else(|| anyhow::anyhow!("column {column}: a time out of range"));
        }
        let s = self.text(column)?;
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(t.with_timezone(&Utc));
        }
        chrono::NaiveDateTime::parse_from_str(s, "%F %T%.f")
            .map(|t| t.and_utc())
            .map_err(|_| anyhow::anyhow!("column {column}: `{s}` is not a time"))
    }
}

/// # Safety
/// `stmt` must be a live statement of a connection locked for the caller.
unsafe fn bind_text(stmt: *mut ffi::sqlite3_stmt, at: c_int, s: &str) -> c_int {
    // SAFETY: per the function's contract; `s` is valid for its length until the caller
    // unbinds it (SQLITE_STATIC: SQLite reads it in place).
    unsafe {
        ffi::sqlite3_bind_text64(
            stmt,
            at,
            s.as_ptr().cast(),
            s.len() as u64,
            ffi::SQLITE_STATIC(),
            ffi::SQLITE_UTF8 as u8,
        )
    }
}

/// Binds `b` as a BLOB, read in place by SQLite.
///
/// # Safety
/// `stmt` must be a live statement of a connection the caller has locked, and `b` must stay
/// valid until the caller unbinds it.
unsafe fn bind_blob(stmt: *mut ffi::sqlite3_stmt, at: c_int, b: &[u8]) -> c_int {
    // SAFETY: per the function's contract; `b` is valid for its length until the caller
    // unbinds it (SQLITE_STATIC: SQLite reads it in place).
    unsafe {
        ffi::sqlite3_bind_blob64(
            stmt,
            at,
            b.as_ptr().cast(),
            b.len() as u64,
            ffi::SQLITE_STATIC(),
        )
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` was prepared on this connection, is finalized once, and the lock is
        // still held ('r outlives the statement).
        unsafe {
            ffi::sqlite3_finalize(self.raw);
        }
    }
}
