//! Stripe webhooks (issue 23 §3) against the daemon over real HTTP, and `billrun webhooks
//! replay`, on both stores: Stripe's webhook signature scheme, duplicate events, events out of
//! order, polling as the fallback.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use billrun::jobs::{Count, JobName};
use serde_json::{Value, json};

use crate::common::fake_stripe::FakeStripe;
use crate::common::smtp::SmtpServer;
use crate::common::{TestApp, opts, wait_until};

const SECRET: &str = "whsec_billrun_test_endpoint_secret";
const INVOICED: &str = "2026-11-01T06:00:00Z";
const COLLECT: &str = "2026-11-01T07:00:00Z";

// ---------------------------------------------------------------------------------------------
// The daemon, as a process

/// A child process killed when the test ends; its output goes to a file.
struct Daemon {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A jobs directory with every job disabled: the daemon only serves HTTP (no tick, no
/// catch-up runs under the test's feet).
fn quiet_jobs_dir(app: &TestApp) -> PathBuf {
    let dir = app.dir.path().join("quiet-jobs");
    std::fs::create_dir_all(&dir).unwrap();
    let root = crate::common::repo_root().join("jobs");
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("enabled = true", "enabled = false");
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    dir
}

/// `billrun daemon` on a port the system picks, with the webhook secret when given.
async fn daemon(app: &TestApp, secret: Option<&str>) -> Daemon {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let log = app.dir.path().join(format!(
        "daemon-{}.log",
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let file = std::fs::File::create(&log).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_billrun"));
    c.args(["daemon", "--listen", "127.0.0.1:0"])
        .env("BILLRUN_DATABASE_URL", &app.url)
        .env("BILLRUN_JOBS_DIR", quiet_jobs_dir(app))
        .env_remove("STRIPE_SECRET_KEY")
        .env("BILLRUN_LOG", "info")
        .current_dir(app.dir.path())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    match secret {
        Some(s) => c.env("STRIPE_WEBHOOK_SECRET", s),
        None => c.env_remove("STRIPE_WEBHOOK_SECRET"),
    };
    let child = c.spawn().unwrap();
    let mut port = None;
    wait_until(
        "the daemon's address",
        Duration::from_secs(30),
        async || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            port = text
                .split("/metrics on http://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|p| p.parse().ok());
            port.is_some()
        },
    )
    .await;
    Daemon {
        child,
        log,
        port: port.unwrap(),
    }
}

/// One HTTP/1.1 request to the daemon; (status, body).
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The daemon may answer (413) before reading a large body, and close.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {out:?}"));
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// A POST that declares a body of `len` bytes and sends none; the status answered.
fn declaring(port: u16, len: usize) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /webhooks/stripe HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {out:?}"))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// HMAC-SHA256 (RFC 2104), written out here so that the tests sign Stripe's way without
/// borrowing the daemon's check (async-stripe's): checked against RFC 4231 below.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[test]
fn rfc_4231_hmac_sha256_test_vectors_for_the_tests_signer() {
    let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    // RFC 4231 test case 2 (a short key) and 6 (a key longer than the block).
    assert_eq!(
        hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

/// Stripe's webhook signature scheme: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
fn signature(secret: &str, t: i64, body: &str) -> String {
    let mac = hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes());
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Posts `body` to `/webhooks/stripe`, signed now with the endpoint's secret.
fn deliver_event(d: &Daemon, body: &str) -> (u16, String) {
    let sig = signature(SECRET, unix_now(), body);
    request(
        d.port,
        "POST",
        "/webhooks/stripe",
        &[("Stripe-Signature", sig)],
        body.as_bytes(),
    )
}

/// The outcome the daemon answered with, after a 200.
fn outcome_of(answer: (u16, String)) -> String {
    assert_eq!(answer.0, 200, "{}", answer.1);
    let v: Value = serde_json::from_str(answer.1.trim()).unwrap();
    v["outcome"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Events, shaped as Stripe sends them

fn event(id: &str, kind: &str, created: i64, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2026-09-30.endive",
        "type": kind,
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "data": {"object": object},
    })
    .to_string()
}

/// A PaymentIntent event from the fake Stripe's own PaymentIntent, in the given status.
fn intent_event(
    fake: &FakeStripe,
    id: &str,
    kind: &str,
    created: i64,
    pi: &str,
    status: &str,
) -> String {
    let mut object = fake
        .payment_intent(pi)
        .expect("the fake made this PaymentIntent");
    object["status"] = json!(status);
    if kind == "payment_intent.payment_failed" {
        object["last_payment_error"] = json!({
            "type": "card_error", "code": "payment_intent_payment_attempt_failed",
            "decline_code": "insufficient_funds", "message": "The debit was refused.",
        });
    }
    event(id, kind, created, object)
}

// ---------------------------------------------------------------------------------------------
// The platform

/// Fixtures invoiced for October and collected: Bob (acc-fr-business) and Clara
/// (acc-de-business) pay by SEPA debit, so their attempts are `processing`; the rest by card.
async fn sepa_pending(app: &mut TestApp, fake: &FakeStripe) {
    app.use_stripe(fake);
    app.seed_fixtures().await;
    for acc in [
        "acc-fr-consumer",
        "acc-de-consumer",
        "acc-fi-consumer",
        "acc-us-business",
    ] {
        app.set_pm(acc, "card", "pm_card_visa", "2026-10-01T00:00:00Z")
            .await;
    }
    app.set_pm(
        "acc-fr-business",
        "sepa_debit",
        "pm_sepa_debit_ok",
        "2026-10-01T00:00:00Z",
    )
    .await;
    app.set_pm(
        "acc-de-business",
        "sepa_debit",
        "pm_sepa_debit_fail",
        "2026-10-01T00:00:00Z",
    )
    .await;
    app.run(JobName::Invoice, INVOICED).await;
    let r = app.run(JobName::Collect, COLLECT).await;
    assert_eq!(r.counts.get(&Count::Pending), Some(&2), "{r:#?}");
}

async fn attempts(app: &TestApp, account: &str) -> Vec<billrun::store::collection::AttemptRow> {
    let id = app.invoice(account, "2026-10").await.id.unwrap();
    billrun::store::collection::attempts(app.db(), id)
        .await
        .unwrap()
}

/// The PaymentIntent of an account's only attempt.
async fn payment_intent(app: &TestApp, account: &str) -> String {
    let a = attempts(app, account).await;
    assert_eq!(a.len(), 1);
    a[0].payment_intent_id.clone().expect("a PaymentIntent")
}

/// The tables that differ between two dumps.
fn changed(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    after
        .iter()
        .filter(|(t, rows)| before.get(*t) != Some(*rows))
        .map(|(t, _)| t.clone())
        .collect()
}

/// Asserts that only `stripe_events` (and its id sequence) changed.
fn only_events_changed(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) {
    let mut tables = changed(before, after);
    // The id sequence: `(sequences)` on PostgreSQL, `sqlite_sequence` on SQLite.
    tables.retain(|t| t != "(sequences)" && t != "sqlite_sequence");
    assert_eq!(tables, vec!["stripe_events".to_string()]);
}

async fn outbox_kinds(app: &TestApp, account: &str) -> Vec<String> {
    app.outbox()
        .await
        .into_iter()
        .filter(|(a, _, _)| a == account)
        .map(|(_, k, _)| k)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The route

both_stores!(
    stripe_webhook_signature_scheme_bad_or_stale_signatures_are_refused_with_400_and_nothing_is_stored,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        sepa_pending(&mut app, &fake).await;
        let pi = payment_intent(&app, "acc-fr-business").await;
        let d = daemon(&app, Some(SECRET)).await;
        let before = app.dump().await;
        let body = intent_event(&fake, "evt_forged", "payment_intent.succeeded", unix_now(), &pi, "succeeded");
        let post = |headers: &[(&str, String)], body: &str| {
            request(d.port, "POST", "/webhooks/stripe", headers, body.as_bytes())
        };
        // Signed under another secret.
        let forged = signature("whsec_someone_else", unix_now(), &body);
        assert_eq!(post(&[("Stripe-Signature", forged.clone())], &body).0, 400);
        // No header at all.
        assert_eq!(post(&[], &body).0, 400);
        // The right secret, but the body changed after signing.
        let sig = signature(SECRET, unix_now(), &body);
        let tampered = body.replace("\"succeeded\"", "\"processing\"");
        assert_eq!(post(&[("Stripe-Signature", sig)], &tampered).0, 400);
        // Stale: signed ten minutes ago, beyond Stripe's 300 s tolerance (a captured request
        // replayed later).
        let stale = signature(SECRET, unix_now() - 600, &body);
        assert_eq!(post(&[("Stripe-Signature", stale)], &body).0, 400);
        // Signed, but not a Stripe event, or one lacking the PaymentIntent's id.
        assert_eq!(deliver_event(&d, "{\"nope\": 1}").0, 400);
        let no_id = event("evt_no_id", "payment_intent.succeeded", unix_now(), json!({"status": "succeeded"}));
        assert_eq!(deliver_event(&d, &no_id).0, 400);
        // More than 1 MiB: refused on its declared length, unread.
        assert_eq!(declaring(d.port, 1024 * 1024 + 1), 413);
        // Only POST.
        assert_eq!(request(d.port, "GET", "/webhooks/stripe", &[], b"").0, 405);

        assert_eq!(app.count("stripe_events").await, 0);
        assert!(changed(&before, &app.dump().await).is_empty(), "a refused event changed nothing");
        assert_eq!(app.invoice("acc-fr-business", "2026-10").await.status, "pending");
        // Nothing secret in the log: not the secret, not a signature, not the body.
        let log = d.log();
        assert!(log.contains("bad signature"), "{log}");
        let hex = forged.split("v1=").nth(1).unwrap();
        for secret in [SECRET, hex, pi.as_str(), "evt_forged"] {
            assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
        }
    }
);

both_stores!(
    a_succeeded_event_settles_a_pending_sepa_debit_once_duplicate_events_and_events_out_of_order_change_nothing,
    |app: TestApp| async move {
        let mut app = app;
        let smtp = SmtpServer::start();
        app.env.smtp_url = Some(billrun::jobs::Secret(smtp.url()));
        let fake = FakeStripe::start().await;
        sepa_pending(&mut app, &fake).await;
        // The invoices and receipts so far go out first.
        app.run(JobName::Deliver, "2026-11-01T08:00:00Z").await;
        let sent = smtp.messages().len();
        let bob_pi = payment_intent(&app, "acc-fr-business").await;
        let clara_pi = payment_intent(&app, "acc-de-business").await;
        let d = daemon(&app, Some(SECRET)).await;
        let t0 = unix_now();

        // Bob's debit succeeded (days later, on Stripe's side): settled as collect would.
        let succeeded = intent_event(&fake, "evt_bob_ok", "payment_intent.succeeded", t0, &bob_pi, "succeeded");
        assert_eq!(outcome_of(deliver_event(&d, &succeeded)), "applied");
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!((bob.status.as_str(), bob.amount_paid.as_str(), bob.amount_due.as_str()), ("paid", "35.65", "0.00"));
        assert_eq!(attempts(&app, "acc-fr-business").await[0].outcome.as_str(), "succeeded");
        assert_eq!(
            outbox_kinds(&app, "acc-fr-business").await.iter().filter(|k| *k == "payment_succeeded").count(),
            1
        );
        let timeline = billrun::store::events::timeline(app.db(), "acc-fr-business").await.unwrap();
        assert!(timeline.iter().any(|e| e.kind.as_str() == "invoice.paid"), "{timeline:#?}");
        app.run(JobName::Deliver, "2026-11-03T08:00:00Z").await;
        let messages = smtp.messages();
        assert_eq!(messages.len(), sent + 1, "the receipt, once");
        assert!(messages[sent]["To"].as_str().unwrap().contains("bob@example.com"));

        // Stripe API "Handle duplicate events": the same event again is acknowledged and
        // changes nothing.
        let settled = app.dump().await;
        assert_eq!(outcome_of(deliver_event(&d, &succeeded)), "duplicate");
        assert!(changed(&settled, &app.dump().await).is_empty());

        // Stripe API "Event ordering": events may arrive out of order. `processing` (made
        // before `succeeded`) and a `payment_failed` after `succeeded` change nothing but
        // their own row.
        let processing = intent_event(&fake, "evt_bob_processing", "payment_intent.processing", t0 - 60, &bob_pi, "processing");
        assert_eq!(outcome_of(deliver_event(&d, &processing)), "no_change");
        let failed = intent_event(&fake, "evt_bob_failed", "payment_intent.payment_failed", t0 + 60, &bob_pi, "requires_payment_method");
        assert_eq!(outcome_of(deliver_event(&d, &failed)), "no_change");
        only_events_changed(&settled, &app.dump().await);
        assert_eq!(app.invoice("acc-fr-business", "2026-10").await.status, "paid");

        // Clara's debit failed: the dunning schedule moves on and she is told, as collect does.
        let clara_failed = intent_event(&fake, "evt_clara_failed", "payment_intent.payment_failed", t0, &clara_pi, "requires_payment_method");
        assert_eq!(outcome_of(deliver_event(&d, &clara_failed)), "applied");
        let clara = app.invoice("acc-de-business", "2026-10").await;
        assert_eq!(clara.status, "unpaid");
        assert!(clara.next_attempt_at.is_some(), "a retry is scheduled");
        let a = &attempts(&app, "acc-de-business").await[0];
        assert_eq!((a.outcome.as_str(), a.decline_code.as_deref()), ("failed", Some("insufficient_funds")));
        assert_eq!(
            outbox_kinds(&app, "acc-de-business").await.iter().filter(|k| *k == "payment_failed").count(),
            1
        );

        let rows = billrun::store::webhooks::list(app.db()).await.unwrap();
        let by_id: BTreeMap<&str, (&str, bool)> = rows
            .iter()
            .map(|r| (r.event_id.as_str(), (r.outcome.as_str(), r.applied_at.is_some())))
            .collect();
        assert_eq!(
            by_id,
            BTreeMap::from([
                ("evt_bob_ok", ("applied", true)),
                ("evt_bob_processing", ("no_change", false)),
                ("evt_bob_failed", ("no_change", false)),
                ("evt_clara_failed", ("applied", true)),
            ])
        );
        assert!(rows.iter().all(|r| r.source == "webhook" && r.attempt_id.is_some()));
        assert_eq!(rows[0].object_id.as_deref(), Some(bob_pi.as_str()));

        // Polling stays the fallback: the next collect run finds nothing in flight for these
        // two, so it asks Stripe nothing (Clara's retry waits for its date).
        let requests = fake.requests().len();
        let r = app.run(JobName::Collect, "2026-11-02T07:00:00Z").await;
        assert_eq!(fake.requests().len(), requests, "no poll, no charge: {r:#?}");
        assert_eq!(r.counts.get(&Count::Paid), None);
        assert_eq!(app.invoice("acc-fr-business", "2026-10").await.attempts.len(), 1);
        app.run(JobName::Deliver, "2026-11-03T09:00:00Z").await;
        assert_eq!(smtp.messages().len(), sent + 2, "Clara's notice; Bob's receipt not again");
    }
);

both_stores!(
    disputes_on_unpaid_intents_change_nothing_refunds_are_recorded_unknown_payment_intents_unmatched_and_other_types_ignored_with_200,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        sepa_pending(&mut app, &fake).await;
        let pi = payment_intent(&app, "acc-fr-business").await;
        // Without the secret the route is off: 503, so that Stripe keeps the events for later.
        let off = daemon(&app, None).await;
        let body = event("evt_off", "customer.created", unix_now(), json!({"id": "cus_1"}));
        assert_eq!(deliver_event(&off, &body).0, 503);
        assert!(off.log().contains("Stripe webhooks are off"), "{}", off.log());
        drop(off);

        let d = daemon(&app, Some(SECRET)).await;
        let before = app.dump().await;
        let t = unix_now();
        let dispute = event("evt_dispute", "charge.dispute.created", t, json!({
            "id": "dp_1", "object": "dispute", "amount": 3565, "currency": "eur",
            "charge": "ch_1", "payment_intent": pi, "reason": "fraudulent", "status": "needs_response",
        }));
        // Nothing was collected on this PaymentIntent yet (SEPA processing): a dispute cannot
        // take back what was not paid, so it changes nothing (logged).
        assert_eq!(outcome_of(deliver_event(&d, &dispute)), "no_change");
        let closed = event("evt_dispute_closed", "charge.dispute.closed", t, json!({
            "id": "dp_1", "object": "dispute", "amount": 3565, "payment_intent": pi, "status": "lost",
        }));
        assert_eq!(outcome_of(deliver_event(&d, &closed)), "recorded");
        let refunded = event("evt_refund", "charge.refunded", t, json!({
            "id": "ch_1", "object": "charge", "amount": 3565, "amount_refunded": 1000, "payment_intent": pi,
        }));
        assert_eq!(outcome_of(deliver_event(&d, &refunded)), "recorded");
        let other = event("evt_customer", "customer.created", t, json!({"id": "cus_9", "object": "customer"}));
        assert_eq!(outcome_of(deliver_event(&d, &other)), "ignored");
        // A PaymentIntent billrun never made: acknowledged (Stripe would resend it for three
        // days otherwise) and logged at warn with its event id.
        let stranger = event("evt_stranger", "payment_intent.succeeded", t, json!({
            "id": "pi_not_billrun", "object": "payment_intent", "amount": 100, "status": "succeeded",
        }));
        assert_eq!(outcome_of(deliver_event(&d, &stranger)), "unmatched");
        let log = d.log();
        assert!(
            log.lines().any(|l| l.contains("WARN") && l.contains("evt_stranger")),
            "{log}"
        );

        // Only the events' own rows: no effect on invoices, attempts or emails.
        only_events_changed(&before, &app.dump().await);
        let rows = billrun::store::webhooks::list(app.db()).await.unwrap();
        let got: Vec<(&str, &str, Option<&str>, &str)> = rows
            .iter()
            .map(|r| (r.event_id.as_str(), r.kind.as_str(), r.object_id.as_deref(), r.outcome.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("evt_dispute", "charge.dispute.created", Some("dp_1"), "no_change"),
                ("evt_dispute_closed", "charge.dispute.closed", Some("dp_1"), "recorded"),
                ("evt_refund", "charge.refunded", Some("ch_1"), "recorded"),
                ("evt_customer", "customer.created", Some("cus_9"), "ignored"),
                ("evt_stranger", "payment_intent.succeeded", Some("pi_not_billrun"), "unmatched"),
            ]
        );
        assert!(rows.iter().all(|r| r.applied_at.is_none() && r.created.timestamp() == t));
        assert_eq!(app.invoice("acc-fr-business", "2026-10").await.status, "pending");
    }
);

both_stores!(
    the_daemon_counts_stripe_webhook_events_in_its_metrics_by_type_and_outcome,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        sepa_pending(&mut app, &fake).await;
        let bob_pi = payment_intent(&app, "acc-fr-business").await;
        let d = daemon(&app, Some(SECRET)).await;
        let t = unix_now();
        let ok = intent_event(
            &fake,
            "evt_m_ok",
            "payment_intent.succeeded",
            t,
            &bob_pi,
            "succeeded",
        );
        assert_eq!(outcome_of(deliver_event(&d, &ok)), "applied");
        assert_eq!(outcome_of(deliver_event(&d, &ok)), "duplicate");
        let other = event(
            "evt_m_customer",
            "customer.created",
            t,
            json!({"id": "cus_9"}),
        );
        assert_eq!(outcome_of(deliver_event(&d, &other)), "ignored");
        let stranger = event(
            "evt_m_stranger",
            "payment_intent.succeeded",
            t,
            json!({"id": "pi_not_billrun"}),
        );
        assert_eq!(outcome_of(deliver_event(&d, &stranger)), "unmatched");
        // Refused: a forged signature (its type unread), an event lacking its PaymentIntent id.
        let forged = signature("whsec_someone_else", t, &ok);
        let post = request(
            d.port,
            "POST",
            "/webhooks/stripe",
            &[("Stripe-Signature", forged)],
            ok.as_bytes(),
        );
        assert_eq!(post.0, 400);
        let no_id = event(
            "evt_m_no_id",
            "payment_intent.succeeded",
            t,
            json!({"status": "succeeded"}),
        );
        assert_eq!(deliver_event(&d, &no_id).0, 400);

        let (status, metrics) = request(d.port, "GET", "/metrics", &[], b"");
        assert_eq!(status, 200);
        let counted: BTreeMap<String, String> = metrics
            .lines()
            .filter_map(|l| l.strip_prefix("billrun_stripe_webhook_events_total{"))
            .filter_map(|l| l.split_once("} "))
            .map(|(labels, n)| (labels.to_string(), n.to_string()))
            .collect();
        let expected: BTreeMap<String, String> = [
            (r#"type="payment_intent.succeeded",outcome="applied""#, "1"),
            (
                r#"type="payment_intent.succeeded",outcome="duplicate""#,
                "1",
            ),
            (
                r#"type="payment_intent.succeeded",outcome="unmatched""#,
                "1",
            ),
            (r#"type="payment_intent.succeeded",outcome="rejected""#, "1"),
            (r#"type="other",outcome="ignored""#, "1"),
            (r#"type="unknown",outcome="rejected""#, "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(counted, expected, "{metrics}");
        assert!(
            metrics.contains("# TYPE billrun_stripe_webhook_events_total counter"),
            "{metrics}"
        );
    }
);

// ---------------------------------------------------------------------------------------------
// billrun webhooks replay

both_stores!(
    webhooks_replay_applies_an_export_from_stripe_s_dashboard_once,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        sepa_pending(&mut app, &fake).await;
        let bob_pi = payment_intent(&app, "acc-fr-business").await;
        let dir = app.dir.path().to_path_buf();
        let t = unix_now();
        let line = |id: &str, kind: &str, object: Value| event(id, kind, t, object);
        let good = [
            intent_event(
                &fake,
                "evt_r_bob",
                "payment_intent.succeeded",
                t,
                &bob_pi,
                "succeeded",
            ),
            String::new(),
            line("evt_r_customer", "customer.created", json!({"id": "cus_2"})),
            intent_event(
                &fake,
                "evt_r_bob",
                "payment_intent.succeeded",
                t,
                &bob_pi,
                "succeeded",
            ),
            line(
                "evt_r_stranger",
                "payment_intent.succeeded",
                json!({"id": "pi_not_billrun", "amount": 5}),
            ),
            line(
                "evt_r_dispute",
                "charge.dispute.created",
                json!({"id": "dp_2", "amount": 100, "payment_intent": bob_pi}),
            ),
        ];
        let file = dir.join("events.ndjson");
        std::fs::write(&file, good.join("\n") + "\n").unwrap();
        let replay = |extra: &[&str]| {
            let mut args = vec![
                "webhooks",
                "replay",
                "--from",
                file.to_str().unwrap(),
                "--now",
                "2026-11-04T10:00:00Z",
                "--format",
                "json",
            ];
            args.extend_from_slice(extra);
            let out = app.cli(&args);
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            (
                out.status.code(),
                stdout,
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        };
        let outcomes = |stdout: &str| -> Vec<(u64, String)> {
            let v: Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["line"].as_u64().unwrap(),
                        e["outcome"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        // The dispute (line 6) is judged by the dispute code when applied, once line 1 has
        // paid the invoice; a dry-run, which applies nothing, says what it can: line 1 would
        // apply, the dispute would be recorded and handed to the dispute code.
        let expected = |first: &str, dispute: &str| {
            vec![
                (1, first.to_string()),
                (3, "ignored".to_string()),
                (4, "duplicate".to_string()),
                (5, "unmatched".to_string()),
                (6, dispute.to_string()),
            ]
        };

        // A bad line refuses the whole file: exit 2, naming the file and line; nothing stored.
        let bad = dir.join("bad.ndjson");
        std::fs::write(
            &bad,
            format!("{}\n{{\"id\": \"evt_x\", \"type\"\n", good[0]),
        )
        .unwrap();
        let out = app.cli(&["webhooks", "replay", "--from", bad.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("bad.ndjson:2"), "{stderr}");
        assert_eq!(app.count("stripe_events").await, 0);

        // --dry-run: what each would do, nothing written.
        let before = app.dump().await;
        let (code, stdout, stderr) = replay(&["--dry-run"]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(outcomes(&stdout), expected("would_apply", "would_record"));
        assert!(changed(&before, &app.dump().await).is_empty());
        // The table says the same, and that nothing was written.
        let out = app.cli(&[
            "webhooks",
            "replay",
            "--from",
            file.to_str().unwrap(),
            "--dry-run",
        ]);
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            table.contains("would_record") && !table.contains(" recorded"),
            "{table}"
        );
        assert!(table.contains("dry run, nothing written"), "{table}");

        let (code, stdout, stderr) = replay(&[]);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(outcomes(&stdout), expected("applied", "applied"));
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(bob.status, "paid");
        assert_eq!(
            bob.attempts[0].settled_at,
            Some(crate::common::t("2026-11-04T10:00:00Z")),
            "settled at --now"
        );
        let rows = billrun::store::webhooks::list(app.db()).await.unwrap();
        assert_eq!(rows.len(), 4, "the duplicate line is not stored twice");
        assert!(rows.iter().all(|r| r.source == "replay"));

        // Again: every event is a duplicate; nothing changes.
        let settled = app.dump().await;
        let (code, stdout, _) = replay(&[]);
        assert_eq!(code, Some(0));
        assert!(
            outcomes(&stdout).iter().all(|(_, o)| o == "duplicate"),
            "{stdout}"
        );
        assert!(changed(&settled, &app.dump().await).is_empty());

        // Collect does not poll or charge what the replay settled.
        let requests = fake.requests().len();
        let mut o = opts("2026-11-05T07:00:00Z");
        o.accounts = vec!["acc-fr-business".into()];
        app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(fake.requests().len(), requests);
    }
);

both_stores!(
    a_payment_whose_answer_was_lost_is_settled_by_its_event_through_the_payment_intent_s_metadata,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        sepa_pending(&mut app, &fake).await;
        // Clara owes her invoice once her debit failed (by event).
        let clara_pi = payment_intent(&app, "acc-de-business").await;
        let d = daemon(&app, Some(SECRET)).await;
        let failed = intent_event(
            &fake,
            "evt_l_failed",
            "payment_intent.payment_failed",
            unix_now(),
            &clara_pi,
            "requires_payment_method",
        );
        assert_eq!(outcome_of(deliver_event(&d, &failed)), "applied");
        // She gives a card; billrun charges it at once, and the answer is lost.
        app.set_pm(
            "acc-de-business",
            "card",
            "pm_card_visa",
            "2026-11-02T09:00:00Z",
        )
        .await;
        app.env.jobs.collect.settings.transient_tries = 1;
        fake.lose_next_response(1);
        let mut o = opts("2026-11-02T09:05:00Z");
        o.accounts = vec!["acc-de-business".into()];
        let r = app.run_with(JobName::Collect, o.clone()).await.unwrap();
        assert_eq!(r.counts.get(&Count::OutcomeUnknown), Some(&1), "{r:#?}");
        let a = attempts(&app, "acc-de-business").await;
        assert_eq!(
            (a[1].outcome.as_str(), a[1].payment_intent_id.as_deref()),
            ("unknown", None)
        );
        let pi = fake.payment_intent_ids().last().unwrap().clone();
        assert_eq!(
            fake.payment_intent(&pi).unwrap()["metadata"]["invoice_id"],
            json!(a[1].invoice_id.to_string())
        );
        let ok = intent_event(
            &fake,
            "evt_l_ok",
            "payment_intent.succeeded",
            unix_now(),
            &pi,
            "succeeded",
        );
        assert_eq!(outcome_of(deliver_event(&d, &ok)), "applied");
        let a = attempts(&app, "acc-de-business").await;
        assert_eq!(
            (a[1].outcome.as_str(), a[1].payment_intent_id.as_deref()),
            ("succeeded", Some(pi.as_str()))
        );
        assert_eq!(
            app.invoice("acc-de-business", "2026-10").await.status,
            "paid"
        );
        // The next run has nothing to resend.
        let requests = fake.requests().len();
        app.run_with(JobName::Collect, o).await.unwrap();
        assert_eq!(fake.requests().len(), requests);
        assert_eq!(
            fake.charges_created(),
            4 + 2 + 1,
            "four cards, two debits, Clara's card: once each"
        );
    }
);

both_stores!(
    stripe_charge_dispute_events_record_the_dispute_and_a_lost_one_makes_the_amount_owed_again,
    |app: TestApp| async move {
        let mut app = app;
        let fake = FakeStripe::start().await;
        sepa_pending(&mut app, &fake).await;
        let pi = payment_intent(&app, "acc-fr-business").await;
        let d = daemon(&app, Some(SECRET)).await;
        let t = unix_now();
        let ok = intent_event(
            &fake,
            "evt_ok",
            "payment_intent.succeeded",
            t,
            &pi,
            "succeeded",
        );
        assert_eq!(outcome_of(deliver_event(&d, &ok)), "applied");
        // The bank disputes 10.00 of it: recorded by the dispute code (issue 22), nothing owed yet.
        let created = event(
            "evt_dp",
            "charge.dispute.created",
            t,
            json!({
                "id": "dp_9", "object": "dispute", "amount": 1000, "currency": "eur",
                "charge": "ch_9", "payment_intent": pi, "status": "needs_response",
            }),
        );
        assert_eq!(outcome_of(deliver_event(&d, &created)), "applied");
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (bob.status.as_str(), bob.amount_due.as_str()),
            ("paid", "0.00")
        );
        // Lost: the 10.00 is owed again, collected from now; the same event again changes nothing.
        let lost = event(
            "evt_dp_lost",
            "charge.dispute.closed",
            t,
            json!({
                "id": "dp_9", "object": "dispute", "amount": 1000, "payment_intent": pi, "status": "lost",
            }),
        );
        assert_eq!(outcome_of(deliver_event(&d, &lost)), "applied");
        assert_eq!(outcome_of(deliver_event(&d, &lost)), "duplicate");
        let bob = app.invoice("acc-fr-business", "2026-10").await;
        assert_eq!(
            (
                bob.status.as_str(),
                bob.amount_paid.as_str(),
                bob.amount_due.as_str()
            ),
            ("unpaid", "25.65", "10.00")
        );
        let kinds: Vec<String> = billrun::store::events::timeline(app.db(), "acc-fr-business")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind.to_string())
            .collect();
        assert!(
            kinds.contains(&"payment.dispute_open".to_string()),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&"payment.dispute_lost".to_string()),
            "{kinds:?}"
        );
        assert_eq!(
            app.count("credit_notes").await,
            0,
            "a dispute is never a credit note"
        );
    }
);
