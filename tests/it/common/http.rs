//! The HTTP server under the test fakes (`fake_stripe`, `fake_vies`): hyper 1's HTTP/1.1 server
//! on 127.0.0.1, on a free port, with a handler that sees a request as plain data (method, path,
//! query string, headers, whole body) and answers status, headers and body.
//!
//! The server runs on its own thread with its own Tokio runtime, so it keeps answering while
//! the test blocks (for example while it waits for a child process) and whatever runtime the
//! test uses. It stops when the last [`Server`] handle is dropped; dropping its runtime cancels
//! the connections still open (answers still delayed, or that never come).
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;

/// A request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Upper case, e.g. `POST`.
    pub method: String,
    /// Without the query string, e.g. `/v1/payment_intents`.
    pub path: String,
    /// The raw query string (without `?`), empty when there is none.
    pub query: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First header with that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The handler's answer; hyper adds `Content-Length` and `Date`.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Handle on a running server; cheap to clone. The server stops when the last clone is dropped.
#[derive(Clone)]
pub struct Server {
    port: u16,
    _stop: Arc<Stop>,
}

struct Stop(Mutex<Option<tokio::sync::oneshot::Sender<()>>>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

impl Server {
    /// Binds 127.0.0.1 on a free port and answers every request with `handler`.
    /// `name` names the server's thread.
    pub fn start<F, Fut>(name: &str, handler: F) -> Server
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{name}: bind 127.0.0.1:0: {e}"));
        std_listener
            .set_nonblocking(true)
            .expect("listener non-blocking");
        let port = std_listener.local_addr().expect("local address").port();
        let handler = Arc::new(handler);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("{name}-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("test server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)
                        .expect("test server listener");
                    let accept = async {
                        loop {
                            match listener.accept().await {
                                Ok((sock, _)) => {
                                    tokio::spawn(serve_connection(sock, handler.clone()));
                                }
                                // Out of file descriptors or the like: try again shortly.
                                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                            }
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = rx => {}
                    }
                });
            })
            .expect("spawn the test server's thread");
        Server {
            port,
            _stop: Arc::new(Stop(Mutex::new(Some(tx)))),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

async fn serve_connection<F, Fut>(sock: tokio::net::TcpStream, handler: Arc<F>)
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let handler = handler.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await?.to_bytes().to_vec();
            let request = Request {
                method: parts.method.as_str().to_ascii_uppercase(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or_default().to_string(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body,
            };
            let answer = handler(request).await;
            let mut response = hyper::Response::builder().status(answer.status);
            for (k, v) in &answer.headers {
                response = response.header(k.as_str(), v.as_str());
            }
            let response = response
                .body(Full::new(Bytes::from(answer.body)))
                .expect("the handler's status and headers are valid HTTP");
            Ok::<_, hyper::Error>(response)
        }
    });
    // Header names as most servers write them (`Content-Length`), not hyper's lower case.
    let _ = hyper::server::conn::http1::Builder::new()
        .title_case_headers(true)
        .serve_connection(TokioIo::new(sock), service)
        .await;
}
