//! The bench's command step: the CLI commands whose output grows with the platform, each run as
//! a child process of this binary against the bench's store, with its own peak resident memory:
//! the child's `VmHWM` (/proc/PID/status), read every 5 ms while it runs. (Not `wait4`'s
//! `ru_maxrss`: a child spawned by vfork starts its count from the parent's peak, which Linux
//! keeps across exec.) Their output goes to /dev/null: what is measured is what the command
//! holds, not what a terminal keeps.

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
    let mut child = child;
    let mut peak = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        peak = peak.max(vm_hwm(child.id()).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let exit_code = status.code().unwrap_or(-1);
    Ok(CommandPeak {
        command: args.join(" "),
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak,
        exit_code,
    })
}

/// A running process's peak resident memory, from /proc; `None` once it has exited.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}
