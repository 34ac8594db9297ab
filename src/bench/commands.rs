//! The bench's command step: the CLI commands whose output grows with the platform, each run as
//! a child process of this binary against the bench's store, with its own peak resident memory
//! (the kernel's `ru_maxrss` for that child, from `wait4`). Their output goes to /dev/null: what
//! is measured is what the command holds, not what a terminal keeps.

use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

/// One command's run.
#[derive(Debug, Clone, Serialize)]
pub struct CommandPeak {
    /// The arguments after `billrun`, as typed.
    pub command: String,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    pub exit_code: i32,
}

/// Runs `billrun ARGS` against `database_url` and waits for it; its peak memory and exit code.
pub async fn measure(args: Vec<String>, database_url: String) -> anyhow::Result<CommandPeak> {
    tokio::task::spawn_blocking(move || measure_blocking(&args, &database_url)).await?
}

fn measure_blocking(args: &[String], database_url: &str) -> anyhow::Result<CommandPeak> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let child = Command::new(exe)
        .args(args)
        .args(["--database-url", database_url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; `pid` is our own child, not yet waited
    // for (std's `Child` only waits when asked, and is dropped without waiting below).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid {
        anyhow::bail!(
            "waiting for `billrun {}`: {}",
            args.join(" "),
            std::io::Error::last_os_error()
        );
    }
    drop(child);
    let exit_code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(CommandPeak {
        command: args.join(" "),
        seconds: started.elapsed().as_secs_f64(),
        // Linux reports ru_maxrss in kilobytes.
        peak_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        exit_code,
    })
}
