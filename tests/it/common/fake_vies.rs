//! A fake VIES REST API for tests: `POST /check-vat-number` on 127.0.0.1, answering as the
//! European Commission's service does (`{countryCode, vatNumber, requestDate, valid,
//! requestIdentifier, name, address}`; an error as HTTP 500 `{actionSucceed: false,
//! errorWrappers: [{error: "MS_UNAVAILABLE", message}]}`), with a member state that can be
//! down and an answer that can hang (a timeout). One request per connection.
//!
//! Like `fake_stripe`, it runs on its own thread with its own Tokio runtime and stops when the
//! last handle is dropped.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct State {
    /// Registered numbers ("DE123456788") and the name VIES has for each.
    valid: HashMap<String, String>,
    /// Member states whose service is down (`MS_UNAVAILABLE`).
    down: HashSet<String>,
    /// Numbers whose answer never comes (the client times out).
    hang: HashSet<String>,
    /// Every request body received.
    requests: Vec<Value>,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeVies {
    port: u16,
    state: Arc<Mutex<State>>,
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

impl FakeVies {
    pub fn start() -> FakeVies {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("fake vies: bind");
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        std::thread::Builder::new()
            .name(format!("fake-vies-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).unwrap();
                    let accept = async {
                        loop {
                            if let Ok((sock, _)) = listener.accept().await {
                                tokio::spawn(serve(sock, st.clone()));
                            }
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = rx => {}
                    }
                });
            })
            .unwrap();
        FakeVies {
            port,
            state,
            _stop: Arc::new(Stop(Mutex::new(Some(tx)))),
        }
    }

    /// The base URL (`vies_base_url`).
    pub fn base_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/taxation_customs/vies/rest-api",
            self.port
        )
    }

    pub fn register(&self, number: &str, name: &str) {
        self.lock().valid.insert(number.into(), name.into());
    }

    pub fn set_down(&self, country: &str, down: bool) {
        let mut st = self.lock();
        if down {
            st.down.insert(country.into());
        } else {
            st.down.remove(country);
        }
    }

    pub fn hang(&self, number: &str) {
        self.lock().hang.insert(number.into());
    }

    pub fn requests(&self) -> Vec<Value> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn serve(mut sock: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // The head, then Content-Length bytes of body.
    let (head_end, len) = loop {
        let Ok(n) = sock.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, len);
        }
    };
    while buf.len() < head_end + len {
        let Ok(n) = sock.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request_line = String::from_utf8_lossy(&buf[..head_end])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let body: Value = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
    let (status, answer, hang) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.requests.push(body.clone());
        let country = body["countryCode"].as_str().unwrap_or_default().to_string();
        let number = format!(
            "{country}{}",
            body["vatNumber"].as_str().unwrap_or_default()
        );
        if !request_line.starts_with("POST ") || !request_line.contains("/check-vat-number ") {
            (
                404,
                json!({"actionSucceed": false, "errorWrappers": [{"error": "NOT_FOUND"}]}),
                false,
            )
        } else if st.hang.contains(&number) {
            (200, Value::Null, true)
        } else if st.down.contains(&country) {
            (
                500,
                json!({"actionSucceed": false, "errorWrappers": [{"error": "MS_UNAVAILABLE", "message": "The application at the Member State is not replying or not available"}]}),
                false,
            )
        } else {
            st.next_id += 1;
            let id = format!("WAPIFAKE{:08}", st.next_id);
            let name = st.valid.get(&number).cloned();
            (
                200,
                json!({
                    "countryCode": country,
                    "vatNumber": body["vatNumber"],
                    "requestDate": "2026-11-01T05:00:00.000Z",
                    "valid": name.is_some(),
                    "requestIdentifier": id,
                    "name": name.clone().unwrap_or_else(|| "---".into()),
                    "address": if name.is_some() { "Unter den Linden 5\n10117 Berlin" } else { "---" },
                }),
                false,
            )
        }
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    let text = answer.to_string();
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = sock.write_all(response.as_bytes()).await;
    let _ = sock.shutdown().await;
}
