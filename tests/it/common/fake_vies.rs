//! A fake VIES REST API for tests: `POST /check-vat-number` on 127.0.0.1, answering as the
//! European Commission's service does (`{countryCode, vatNumber, requestDate, valid,
//! requestIdentifier, name, address}`; an error as HTTP 500 `{actionSucceed: false,
//! errorWrappers: [{error: "MS_UNAVAILABLE", message}]}`), with a member state that can be
//! down and an answer that can hang (a timeout). One request per connection.
//!
//! Served by [`super::http::Server`] (hyper), like `fake_stripe`: its own thread and runtime,
//! stopped when the last handle is dropped.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http;

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
    server: http::Server,
    state: Arc<Mutex<State>>,
}

impl FakeVies {
    pub fn start() -> FakeVies {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let server = http::Server::start("fake-vies", move |req| answer(st.clone(), req));
        FakeVies { server, state }
    }

    /// The base URL (`vies_base_url`).
    pub fn base_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/taxation_customs/vies/rest-api",
            self.server.port()
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

async fn answer(state: Arc<Mutex<State>>, req: http::Request) -> http::Response {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let (status, answer, hang) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.requests.push(body.clone());
        let country = body["countryCode"].as_str().unwrap_or_default().to_string();
        let number = format!(
            "{country}{}",
            body["vatNumber"].as_str().unwrap_or_default()
        );
        if req.method != "POST" || !req.path.ends_with("/check-vat-number") {
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
        // The answer never comes: the client times out (the server's runtime drops this).
        std::future::pending::<()>().await;
    }
    http::Response {
        status,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Connection".into(), "close".into()),
        ],
        body: answer.to_string().into_bytes(),
    }
}
