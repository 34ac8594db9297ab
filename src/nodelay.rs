//! `TCP_NODELAY` on sockets whose library does not set it: the PostgreSQL pool's and the
//! deliver job's SMTP connections.
//!
//! sqlx 0.9.0 no longer sets it (sqlx issue #4335; fixed upstream by PR #4336, not in a release
//! yet), and lettre never does. A message larger than the socket's send buffer — an invoice
//! PDF, a multi-row insert — or one written in two parts (lettre writes an email's final
//! `\r\n.\r\n` apart) then waits: Nagle's algorithm holds the second write until the server
//! has acknowledged the first, which the server's kernel delays by up to 40 ms. On loopback
//! every PDF stored in PostgreSQL cost 45 ms, and every email to a server with default ACK
//! timing ~40 ms (`billrun bench`, README "Benchmarks"). Neither library gives access to its
//! socket, so the process's TCP sockets connected to the server's port get `TCP_NODELAY`
//! (what libpq and most mail clients set): after each new pool connection, and after each
//! email sent. Drop the PostgreSQL use once sqlx sets it again.

/// Sets `TCP_NODELAY` on this process's TCP sockets whose peer port is `port`.
#[cfg(target_os = "linux")]
pub fn set_on_sockets_to(port: u16) {
    use std::os::fd::BorrowedFd;
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for the few calls below. Should another
        // thread close it meanwhile, they fail (EBADF, ignored); should it be reused at once,
        // they touch that new descriptor only if it is a TCP socket to the same port too, where
        // TCP_NODELAY is what we want anyway.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let to_port = socket
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.port() == port);
        if to_port && socket.r#type().is_ok_and(|t| t == socket2::Type::STREAM) {
            let _ = socket.set_tcp_nodelay(true);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn set_on_sockets_to(_port: u16) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn sets_nodelay_on_sockets_to_the_port_only() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to_server = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let to_other = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!to_server.nodelay().unwrap() && !to_other.nodelay().unwrap());
        super::set_on_sockets_to(server.local_addr().unwrap().port());
        assert!(to_server.nodelay().unwrap());
        assert!(!to_other.nodelay().unwrap());
    }
}
