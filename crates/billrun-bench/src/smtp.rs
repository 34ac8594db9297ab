//! An SMTP sink on loopback for the delivery step: it speaks just enough SMTP for lettre
//! (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), accepts every message, keeps
//! nothing and counts what it accepted. The bench starts it itself, so it needs no mail server.
//!
//! By default it acknowledges what it reads at once (`TCP_QUICKACK`). lettre writes a message's
//! end (`\r\n.\r\n`) apart from its body on a socket without `TCP_NODELAY`, so Nagle's algorithm
//! holds that last small write until the server acknowledges the body; a server that delays
//! its ACKs (Linux's default, and most mail servers') then adds about 40 ms to every message.
//! `quick_ack = false` keeps the kernel's default, to measure that case.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct SmtpSink {
    pub port: u16,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1 at a free port.
    pub async fn start(quick_ack: bool) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    // A session ends when the client quits or drops the connection.
                    let _ = Session::new(stream, quick_ack).run(&counter).await;
                });
            }
        });
        Ok(SmtpSink {
            port,
            accepted,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Messages accepted so far (answered `250` after their DATA).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Session {
    stream: TcpStream,
    quick_ack: bool,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    pos: usize,
}

impl Session {
    fn new(stream: TcpStream, quick_ack: bool) -> Session {
        Session {
            stream,
            quick_ack,
            buf: Vec::with_capacity(128 * 1024),
            pos: 0,
        }
    }

    /// The next line, with its line ending; `None` at the end of the connection.
    async fn line(&mut self) -> std::io::Result<Option<std::ops::Range<usize>>> {
        loop {
            if let Some(n) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let line = self.pos..self.pos + n + 1;
                self.pos += n + 1;
                return Ok(Some(line));
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            let len = self.buf.len();
            self.buf.resize(len + 64 * 1024, 0);
            let read = self.stream.read(&mut self.buf[len..]).await?;
            self.buf.truncate(len + read);
            if read == 0 {
                return Ok(None);
            }
            if self.quick_ack {
                // The kernel leaves quick-ACK mode on its own: ask again after each read.
                socket2::SockRef::from(&self.stream).set_tcp_quickack(true)?;
            }
        }
    }

    async fn run(mut self, accepted: &AtomicU64) -> std::io::Result<()> {
        self.stream.set_nodelay(true)?;
        self.stream
            .write_all(b"220 billrun-bench ESMTP sink\r\n")
            .await?;
        loop {
            let Some(line) = self.line().await? else {
                return Ok(());
            };
            let verb: Vec<u8> = self.buf[line]
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .map(u8::to_ascii_uppercase)
                .collect();
            let reply: &[u8] = match verb.as_slice() {
                b"EHLO" => b"250-billrun-bench\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                b"HELO" => b"250 billrun-bench\r\n",
                b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 OK\r\n",
                b"DATA" => {
                    self.stream
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    loop {
                        let Some(line) = self.line().await? else {
                            return Ok(());
                        };
                        let line = &self.buf[line];
                        if line == b".\r\n" || line == b".\n" {
                            break;
                        }
                    }
                    accepted.fetch_add(1, Ordering::SeqCst);
                    b"250 OK: queued\r\n"
                }
                b"QUIT" => {
                    self.stream.write_all(b"221 Bye\r\n").await?;
                    return Ok(());
                }
                _ => b"502 Command not implemented\r\n",
            };
            self.stream.write_all(reply).await?;
        }
    }
}
