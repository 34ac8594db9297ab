//! A real SMTP server for tests: aiosmtpd (Debian's python3-aiosmtpd or PyPI's aiosmtpd),
//! storing what it receives in a Maildir that the tests read back.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn support_dir() -> PathBuf {
    crate::common::repo_root().join("tests/support")
}

/// A Python that has aiosmtpd: Debian's package installs it for /usr/bin/python3.
pub fn python() -> String {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return candidate.to_string();
        }
    }
    panic!(
        "no python3 with aiosmtpd: install python3-aiosmtpd (apt) or aiosmtpd (pip); .ci/run does"
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct SmtpServer {
    pub port: u16,
    pub maildir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> SmtpServer {
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new(python())
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "billrun_smtp.Handler",
            ])
            .arg(maildir.path().join("mail"))
            .env("PYTHONPATH", support_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer {
            port,
            maildir,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received, parsed by Python's email package, in the order the server
    /// received them (`X-Arrival`, added by the handler).
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let dir = self.maildir.path().join("mail/new");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files
            .iter()
            .map(|f| {
                let out = Command::new(python())
                    .arg(support_dir().join("extract_mail.py"))
                    .arg(f)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let rank: u64 = m["X-Arrival"]
                    .as_str()
                    .and_then(|r| r.parse().ok())
                    .expect("the handler ranks every message");
                (rank, m)
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
