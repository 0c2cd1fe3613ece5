//! Client-side error handling (retries, status mapping, request shapes) against a tiny scripted
//! HTTP server on loopback. This server is NOT a broker: it only answers what each test scripts,
//! so these tests say nothing about interoperability; that is what the end-to-end tests against
//! the real broker are for.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aws_lc_rs::digest;
use serde_json::{Value, json};

use super::jwe::tests::encrypt_to_jwk;
use super::*;

#[derive(Clone, Debug)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Bytes promised by `content-length` beyond `body` and never sent: after `body` the fake
    /// waits (up to its 5 s read timeout) for the client to hang up, and logs whether it did
    /// in [`Fake::hang_ups`].
    unsent: usize,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: serde_json::to_vec(&body).unwrap(),
        unsent: 0,
    }
}

fn kbs_error(status: u16, name: &str, detail: &str) -> Reply {
    reply(
        status,
        json!({ "type": format!("{ERROR_TYPE_PREFIX}{name}"), "detail": detail }),
    )
}

/// A scripted HTTP/1.1 server on 127.0.0.1: one request per connection, `Connection: close`.
struct Fake {
    scheme: &'static str,
    port: u16,
    log: Arc<Mutex<Vec<Req>>>,
    hang_ups: Arc<Mutex<Vec<bool>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    fn serve(handler: impl FnMut(&Req) -> Reply + Send + 'static) -> Fake {
        Fake::start(None, handler)
    }

    /// The same over TLS with `testdata/tls/server.pem` (signed by `testdata/tls/ca.pem`).
    fn serve_tls(handler: impl FnMut(&Req) -> Reply + Send + 'static) -> Fake {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(TLS_SERVER_PEM)
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(TLS_SERVER_KEY).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Fake::start(Some(Arc::new(config)), handler)
    }

    fn start(
        tls: Option<Arc<rustls::ServerConfig>>,
        mut handler: impl FnMut(&Req) -> Reply + Send + 'static,
    ) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let hang_ups = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, hang_ups2, stop2) = (log.clone(), hang_ups.clone(), stop.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                match &tls {
                    None => exchange(stream, &log2, &hang_ups2, &mut handler),
                    Some(cfg) => {
                        let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                        let tls = rustls::StreamOwned::new(conn, stream);
                        exchange(tls, &log2, &hang_ups2, &mut handler);
                    }
                }
            }
        });
        Fake {
            scheme,
            port,
            log,
            hang_ups,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    /// Stops the server and returns, for each reply with `unsent` bytes in order, whether the
    /// client hung up while they were still promised (rather than waiting for them until the
    /// fake gave up). Stopping first waits for the last exchange to end: the client may
    /// return its error before the server has seen it hang up.
    fn hang_ups(self) -> Vec<bool> {
        let hang_ups = self.hang_ups.clone();
        drop(self);
        hang_ups.lock().unwrap().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.target.starts_with(prefix))
            .count()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const TLS_CA_PEM: &[u8] = include_bytes!("../../testdata/tls/ca.pem");
const TLS_OTHER_CA_PEM: &[u8] = include_bytes!("../../testdata/tls/other-ca.pem");
const TLS_SERVER_PEM: &[u8] = include_bytes!("../../testdata/tls/server.pem");
const TLS_SERVER_KEY: &[u8] = include_bytes!("../../testdata/tls/server.key");

/// Reads one request, logs it, writes the handler's reply (and, for a reply with `unsent`
/// bytes, logs whether the client hung up before the stream's read timeout).
fn exchange(
    mut stream: impl Read + Write,
    log: &Mutex<Vec<Req>>,
    hang_ups: &Mutex<Vec<bool>>,
    handler: &mut impl FnMut(&Req) -> Reply,
) {
    let Some(req) = read_request(&mut stream) else {
        return;
    };
    log.lock().unwrap().push(req.clone());
    let r = handler(&req);
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n",
        r.status,
        r.body.len() + r.unsent
    );
    for (n, v) in &r.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&r.body);
    let _ = stream.flush();
    if r.unsent > 0 {
        // End of stream or a reset: the client closed the connection. A timeout: it was
        // still waiting for the promised bytes.
        let hung_up = match stream.read(&mut [0u8; 1]) {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        hang_ups.lock().unwrap().push(hung_up);
    }
}

fn read_request(stream: &mut impl Read) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Req {
        method,
        target,
        headers,
        body,
    })
}

/// The happy-path answers of the scripted server. Checks what a broker would check so the
/// happy path cannot pass by accident: the cookie, the nonce and the REPORT_DATA binding
/// (recomputed here with serde_json's sorted compact output — equal to JCS for these
/// all-string objects — and not with `serde_json_canonicalizer`).
struct Script {
    hash: Option<&'static str>,
    sessions: u32,
    nonce: String,
    session: String,
    token: String,
    jwk: Option<Value>,
    secret: Vec<u8>,
}

impl Script {
    fn new(secret: &[u8]) -> Script {
        Script {
            hash: None,
            sessions: 0,
            nonce: String::new(),
            session: String::new(),
            token: String::new(),
            jwk: None,
            secret: secret.to_vec(),
        }
    }

    fn answer(&mut self, req: &Req) -> Reply {
        match (req.method.as_str(), req.target.as_str()) {
            ("POST", "/kbs/v0/auth") => {
                self.sessions += 1;
                self.nonce = format!("bm9uY2Ut{}", self.sessions);
                self.session = format!("sess{}", self.sessions);
                let extra = match self.hash {
                    Some(h) => json!({ "selected-hash-algorithm": h }),
                    None => json!(""),
                };
                let mut r = reply(200, json!({ "nonce": self.nonce, "extra-params": extra }));
                r.headers.push((
                    "set-cookie".into(),
                    format!(
                        "kbs-session-id={}; Path=/kbs/v0; HttpOnly; Max-Age=300",
                        self.session
                    ),
                ));
                r
            }
            ("POST", "/kbs/v0/attest") => {
                if req.header("cookie") != Some(&format!("kbs-session-id={}", self.session)) {
                    return kbs_error(401, "UnAuthenticated", "unknown session");
                }
                let body = req.json();
                let rt = &body["runtime-data"];
                if rt["nonce"] != self.nonce.as_str() {
                    return kbs_error(401, "AttestationFailed", "nonce");
                }
                let binding = json!({
                    "additional-evidence": "", "nonce": rt["nonce"], "tee-pubkey": rt["tee-pubkey"],
                });
                let text = serde_json::to_string(&binding).unwrap();
                let alg = match self.hash.unwrap_or("sha384") {
                    "sha256" => &digest::SHA256,
                    "sha512" => &digest::SHA512,
                    _ => &digest::SHA384,
                };
                let mut expected = digest::digest(alg, text.as_bytes()).as_ref().to_vec();
                expected.resize(64, 0);
                let rd = body["tee-evidence"]["primary_evidence"]["report_data"].as_str();
                if rd != Some(hex::encode(&expected).as_str()) {
                    return kbs_error(401, "AttestationFailed", "REPORT_DATA does not bind");
                }
                self.jwk = Some(rt["tee-pubkey"].clone());
                self.token = format!("eyJhbGciOiJFUzI1NiJ9.e30.c2ln{}", self.sessions);
                reply(200, json!({ "token": self.token }))
            }
            ("GET", t) if t.starts_with("/kbs/v0/resource/") => {
                let by_cookie =
                    req.header("cookie") == Some(&format!("kbs-session-id={}", self.session));
                let by_token =
                    req.header("authorization") == Some(&format!("Bearer {}", self.token));
                match (&self.jwk, by_cookie || by_token) {
                    (Some(jwk), true) => reply(200, encrypt_to_jwk(jwk, &self.secret)),
                    _ => kbs_error(401, "UnAuthenticated", "no attested session"),
                }
            }
            _ => kbs_error(404, "ResourceNotFound", "no such path"),
        }
    }
}

fn fast_options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            handshake_attempts: 5,
            handshake_delay: Duration::from_millis(5),
            resource_attempts: 3,
        },
        ..ClientOptions::default()
    }
}

fn evidence(rd: &[u8; 64]) -> Result<Value, ClientError> {
    Ok(json!({ "report_data": hex::encode(rd) }))
}

fn client(fake: &Fake, opts: ClientOptions) -> Client {
    Client::new(&fake.url(), opts).unwrap()
}

#[test]
fn full_flow_sends_the_protocol_messages_cookie_mode() {
    let mut script = Script::new(b"top secret");
    let fake = Fake::serve(move |r| script.answer(r));
    let c = client(&fake, fast_options());
    let toml = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n";
    let secret = c
        .get_secret(
            "snp",
            "default/key/one?version=2",
            Some(toml),
            &mut evidence,
        )
        .unwrap();
    assert_eq!(&secret[..], b"top secret");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert_eq!(reqs[0].json(), auth_request("snp"));
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!(reqs[0].header("cookie"), None);
    let attest = reqs[1].json();
    assert_eq!(reqs[1].header("cookie"), Some("kbs-session-id=sess1"));
    assert_eq!(
        attest["init-data"],
        json!({ "format": "toml", "body": toml })
    );
    assert_eq!(attest["tee-evidence"]["additional_evidence"], "");
    assert_eq!(attest["runtime-data"]["tee-pubkey"]["crv"], "P-256");
    assert_eq!(reqs[2].method, "GET");
    assert_eq!(reqs[2].target, "/kbs/v0/resource/default/key/one?version=2");
    assert_eq!(reqs[2].header("cookie"), Some("kbs-session-id=sess1"));
    assert_eq!(reqs[2].header("authorization"), None);
}

#[test]
fn bearer_mode_and_selected_hashes_and_key_kinds() {
    for (hash, alg) in [
        (Some("sha256"), TeeKeyAlg::P521),
        (Some("sha512"), TeeKeyAlg::Rsa),
        (Some("sha384"), TeeKeyAlg::P256),
    ] {
        let mut script = Script::new(b"s3");
        script.hash = hash;
        let fake = Fake::serve(move |r| script.answer(r));
        let opts = ClientOptions {
            auth: AuthMode::Bearer,
            key_alg: alg,
            ..fast_options()
        };
        let secret = client(&fake, opts)
            .get_secret("tdx", "a/b/c", None, &mut evidence)
            .unwrap();
        assert_eq!(&secret[..], b"s3");
        let reqs = fake.requests();
        assert!(reqs[1].json().get("init-data").is_none());
        let get = &reqs[2];
        assert_eq!(get.header("cookie"), None);
        assert!(
            get.header("authorization")
                .unwrap()
                .starts_with("Bearer eyJ")
        );
    }
}

#[test]
fn a_wrong_binding_is_caught_by_the_scripted_check() {
    // Guard for the happy-path tests: the script really checks REPORT_DATA.
    let mut script = Script::new(b"x");
    let fake = Fake::serve(move |r| script.answer(r));
    let e = client(&fake, fast_options())
        .get_secret("snp", "a/b/c", None, &mut |_| {
            Ok(json!({ "report_data": "00" }))
        })
        .unwrap_err();
    assert_eq!(e.kind(), Some("AttestationFailed"));
    assert_eq!(
        fake.count("/kbs/v0/attest"),
        5,
        "401 during the handshake is retried"
    );
}

#[test]
fn handshake_retries_transient_failures_then_succeeds() {
    let mut script = Script::new(b"ok");
    let mut fails = 0;
    let fake = Fake::serve(move |r| {
        if r.target == "/kbs/v0/auth" && fails < 2 {
            fails += 1;
            return kbs_error(503, "Unavailable", "busy");
        }
        if r.target == "/kbs/v0/attest" && fails < 4 {
            fails += 1;
            return Reply {
                status: 502,
                headers: vec![],
                body: b"<html>gateway</html>".to_vec(),
                unsent: 0,
            };
        }
        script.answer(r)
    });
    let secret = client(&fake, fast_options()).get_secret("snp", "a/b/c", None, &mut evidence);
    assert_eq!(&secret.unwrap()[..], b"ok");
    assert_eq!(fake.count("/kbs/v0/auth"), 5);
    assert_eq!(fake.count("/kbs/v0/attest"), 3);
}

#[test]
fn handshake_gives_up_after_the_configured_attempts() {
    let fake = Fake::serve(|_| kbs_error(401, "ProtocolVersion", "supported: 0.4.0"));
    let mut opts = fast_options();
    opts.retry.handshake_attempts = 4;
    let e = client(&fake, opts)
        .get_secret("snp", "a/b/c", None, &mut evidence)
        .unwrap_err();
    match &e {
        ClientError::Broker {
            step: Step::Auth,
            status: 401,
            kind,
            detail,
        } => {
            assert_eq!(kind, "ProtocolVersion");
            assert_eq!(detail, "supported: 0.4.0");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.count("/kbs/v0/auth"), 4);
}

#[test]
fn final_errors_are_not_retried() {
    for (status, name) in [
        (400, "InvalidRequest"),
        (413, "PayloadTooLarge"),
        (404, "ResourceNotFound"),
    ] {
        let fake = Fake::serve(move |_| kbs_error(status, name, "no"));
        let e = client(&fake, fast_options())
            .get_secret("snp", "a/b/c", None, &mut evidence)
            .unwrap_err();
        assert_eq!((e.status(), e.kind()), (Some(status), Some(name)));
        assert_eq!(fake.requests().len(), 1, "{name}");
    }
    // The evidence callback's own error ends the flow as it is.
    let mut script = Script::new(b"x");
    let fake = Fake::serve(move |r| script.answer(r));
    let e = client(&fake, fast_options())
        .get_secret("snp", "a/b/c", None, &mut |_| {
            Err(ClientError::Evidence {
                reason: "no TEE".into(),
            })
        })
        .unwrap_err();
    assert!(matches!(e, ClientError::Evidence { ref reason } if reason == "no TEE"));
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn resource_401_redoes_the_handshake_with_a_fresh_key() {
    let mut script = Script::new(b"second time");
    let mut denied = false;
    let fake = Fake::serve(move |r| {
        if r.method == "GET" && !denied {
            denied = true;
            return kbs_error(401, "TokenInvalid", "expired");
        }
        script.answer(r)
    });
    let mut calls = 0;
    let secret = client(&fake, fast_options())
        .get_secret("snp", "a/b/c", None, &mut |rd| {
            calls += 1;
            evidence(rd)
        })
        .unwrap();
    assert_eq!(&secret[..], b"second time");
    assert_eq!(calls, 2);
    let attests: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| r.target == "/kbs/v0/attest")
        .map(Req::json)
        .collect();
    assert_eq!(attests.len(), 2);
    assert_ne!(
        attests[0]["runtime-data"]["tee-pubkey"],
        attests[1]["runtime-data"]["tee-pubkey"]
    );
    assert_ne!(
        attests[0]["runtime-data"]["nonce"],
        attests[1]["runtime-data"]["nonce"]
    );
    let gets: Vec<Req> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets[1].header("cookie"), Some("kbs-session-id=sess2"));
}

#[test]
fn resource_401_three_times_gives_up() {
    let mut script = Script::new(b"never");
    let fake = Fake::serve(move |r| {
        if r.method == "GET" {
            return kbs_error(401, "TokenInvalid", "bad token");
        }
        script.answer(r)
    });
    let e = client(&fake, fast_options())
        .get_secret("snp", "a/b/c", None, &mut evidence)
        .unwrap_err();
    assert!(matches!(
        e,
        ClientError::Broker {
            step: Step::Resource,
            status: 401,
            ..
        }
    ));
    assert_eq!(e.kind(), Some("TokenInvalid"));
    assert_eq!(fake.count("/kbs/v0/resource/"), 3);
    assert_eq!(fake.count("/kbs/v0/auth"), 3);
}

#[test]
fn policy_deny_and_not_found_give_up_at_once() {
    for (status, name) in [
        (403, "PolicyDeny"),
        (404, "ResourceNotFound"),
        (500, "InternalError"),
    ] {
        let mut script = Script::new(b"x");
        let fake = Fake::serve(move |r| {
            if r.method == "GET" {
                return kbs_error(status, name, "denied by the resource policy");
            }
            script.answer(r)
        });
        let e = client(&fake, fast_options())
            .get_secret("snp", "a/b/c", None, &mut evidence)
            .unwrap_err();
        assert_eq!((e.status(), e.kind()), (Some(status), Some(name)));
        assert!(
            e.to_string().contains("denied by the resource policy"),
            "{e}"
        );
        assert_eq!(fake.count("/kbs/v0/resource/"), 1);
        assert_eq!(fake.count("/kbs/v0/auth"), 1);
    }
}

#[test]
fn malformed_answers_are_named() {
    // No session cookie.
    let fake = Fake::serve(|_| reply(200, json!({ "nonce": "abc", "extra-params": "" })));
    let e = client(&fake, fast_options()).auth("snp").unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::MalformedResponse {
                step: Step::Auth,
                field: "set-cookie kbs-session-id missing"
            }
        ),
        "{e:?}"
    );
    assert_eq!(fake.requests().len(), 1, "malformed answers are final");

    // An oversized challenge.
    let fake = Fake::serve(|_| reply(200, json!({ "nonce": "a".repeat(MAX_AUTH_RESPONSE) })));
    let e = client(&fake, fast_options()).auth("snp").unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::ResponseTooLarge {
                step: Step::Auth,
                limit: MAX_AUTH_RESPONSE
            }
        ),
        "{e:?}"
    );

    // A redirect is not followed.
    let fake = Fake::serve(|_| Reply {
        status: 302,
        headers: vec![("location".into(), "http://127.0.0.1:1/".into())],
        body: vec![],
        unsent: 0,
    });
    let e = client(&fake, fast_options()).auth("snp").unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Status {
                step: Step::Auth,
                status: 302
            }
        ),
        "{e:?}"
    );

    // A resource answer that is not a JWE.
    let mut script = Script::new(b"x");
    let fake = Fake::serve(move |r| {
        if r.method == "GET" {
            return reply(200, json!({ "protected": "e30" }));
        }
        script.answer(r)
    });
    let e = client(&fake, fast_options())
        .get_secret("snp", "a/b/c", None, &mut evidence)
        .unwrap_err();
    assert!(matches!(e, ClientError::Jwe { .. }), "{e:?}");
    assert_eq!(fake.count("/kbs/v0/resource/"), 1);
}

/// `make(pad)` as JSON, with `pad` a run of `a` that makes it exactly `len` bytes.
fn json_of_len(len: usize, make: impl Fn(&str) -> Value) -> Vec<u8> {
    let overhead = serde_json::to_vec(&make("")).unwrap().len();
    let body = serde_json::to_vec(&make(&"a".repeat(len - overhead))).unwrap();
    assert_eq!(body.len(), len);
    body
}

/// How many bytes more than it sends an answer's `content-length` promises, to see that the
/// client stops at its cap instead of reading on.
const PROMISED: usize = 1 << 20;

/// A fake that answers requests whose target starts with `target` with `status` and `body`
/// (promising `unsent` more bytes), and everything else as the happy-path script.
fn fake_answering(target: &'static str, status: u16, body: Vec<u8>, unsent: usize) -> Fake {
    let mut script = Script::new(b"x");
    Fake::serve(move |r| {
        if r.target.starts_with(target) {
            return Reply {
                status,
                headers: vec![],
                body: body.clone(),
                unsent,
            };
        }
        script.answer(r)
    })
}

/// The attest answer is read under `MAX_ATTEST_RESPONSE`: a token answer of exactly the cap is
/// taken; one byte more is refused as too large, the flow ends there (no retry, no resource
/// GET), and the client decides on that byte without waiting for the rest `content-length`
/// promises, so it reads no more than cap + 1 bytes.
#[test]
fn an_attest_answer_over_its_cap_is_refused() {
    let cap = MAX_ATTEST_RESPONSE;
    let token = |pad: &str| json!({ "token": format!("eyJ.e30.{pad}") });

    let fake = fake_answering("/kbs/v0/attest", 200, json_of_len(cap, token), 0);
    let c = client(&fake, fast_options());
    let challenge = c.auth("snp").unwrap();
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    let t = c.attest(&challenge, &key, None, json!({})).unwrap();
    assert_eq!(t.as_str().len(), cap - r#"{"token":""}"#.len());

    for unsent in [0, PROMISED] {
        let fake = fake_answering("/kbs/v0/attest", 200, json_of_len(cap + 1, token), unsent);
        let e = client(&fake, fast_options())
            .get_secret("snp", "a/b/c", None, &mut evidence)
            .unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::ResponseTooLarge {
                    step: Step::Attest,
                    limit: MAX_ATTEST_RESPONSE
                }
            ),
            "{unsent}: {e:?}"
        );
        assert_eq!(fake.count("/kbs/v0/attest"), 1);
        assert_eq!(fake.count("/kbs/v0/resource/"), 0, "no token was taken");
        let waited = if unsent > 0 { vec![true] } else { vec![] };
        assert_eq!(fake.hang_ups(), waited, "the client hung up at cap + 1");
    }
}

/// The resource answer is read under `MAX_RESOURCE_RESPONSE`: one of exactly the cap reaches
/// the JWE parser; one byte more is refused as too large, once, and the client hangs up on
/// that byte without waiting for the rest `content-length` promises.
#[test]
fn a_resource_answer_over_its_cap_is_refused() {
    let cap = MAX_RESOURCE_RESPONSE;
    let jwe = |pad: &str| json!({ "protected": pad });
    let bearer = Token::from_string("eyJ.e30.c2ln").unwrap();
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();

    let fake = fake_answering("/kbs/v0/resource/", 200, json_of_len(cap, jwe), 0);
    let e = client(&fake, fast_options())
        .resource(Credential::Bearer(&bearer), &key, "a/b/c")
        .unwrap_err();
    assert!(matches!(e, ClientError::Jwe { .. }), "{e:?}");

    for unsent in [0, PROMISED] {
        let fake = fake_answering("/kbs/v0/resource/", 200, json_of_len(cap + 1, jwe), unsent);
        let e = client(&fake, fast_options())
            .get_secret("snp", "a/b/c", None, &mut evidence)
            .unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::ResponseTooLarge {
                    step: Step::Resource,
                    limit: MAX_RESOURCE_RESPONSE
                }
            ),
            "{unsent}: {e:?}"
        );
        assert_eq!(fake.count("/kbs/v0/resource/"), 1);
        assert_eq!(fake.count("/kbs/v0/auth"), 1);
        let waited = if unsent > 0 { vec![true] } else { vec![] };
        assert_eq!(fake.hang_ups(), waited, "the client hung up at cap + 1");
    }
}

/// An error answer's body is read under `MAX_ERROR_RESPONSE` whatever the step's own cap: a
/// 403 KBS error body of exactly 16 KiB is parsed (`PolicyDeny`); one byte more is not read
/// as a KBS error but ends the flow as a bare status, and the client hangs up on that byte
/// without waiting for the rest `content-length` promises.
#[test]
fn an_error_body_over_its_cap_is_only_a_status() {
    let cap = MAX_ERROR_RESPONSE;
    let deny =
        |pad: &str| json!({ "type": format!("{ERROR_TYPE_PREFIX}PolicyDeny"), "detail": pad });

    let fake = fake_answering("/kbs/v0/resource/", 403, json_of_len(cap, deny), 0);
    let e = client(&fake, fast_options())
        .get_secret("snp", "a/b/c", None, &mut evidence)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Broker {
                step: Step::Resource,
                status: 403,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), Some("PolicyDeny"));

    for unsent in [0, PROMISED] {
        let fake = fake_answering("/kbs/v0/resource/", 403, json_of_len(cap + 1, deny), unsent);
        let e = client(&fake, fast_options())
            .get_secret("snp", "a/b/c", None, &mut evidence)
            .unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Status {
                    step: Step::Resource,
                    status: 403
                }
            ),
            "{unsent}: {e:?}"
        );
        assert_eq!(e.kind(), None, "the body was not parsed");
        assert_eq!(fake.count("/kbs/v0/resource/"), 1);
        assert_eq!(fake.count("/kbs/v0/auth"), 1);
        let waited = if unsent > 0 { vec![true] } else { vec![] };
        assert_eq!(fake.hang_ups(), waited, "the client hung up at cap + 1");
    }
}

#[test]
fn low_level_steps_can_replay_and_mix() {
    let mut script = Script::new(b"x");
    let fake = Fake::serve(move |r| script.answer(r));
    let c = client(&fake, fast_options());
    let a = c.auth("snp").unwrap();
    let b = c.auth("snp").unwrap();
    assert_ne!(a.nonce, b.nonce);
    let key = TeeKey::generate(TeeKeyAlg::P256).unwrap();
    // Session a with b's nonce: the scripted server (like a broker) refuses it.
    let mixed = Challenge {
        session: a.session.clone(),
        nonce: b.nonce.clone(),
        hash: b.hash,
    };
    let rd = report_data(mixed.hash, &mixed.nonce, key.jwk()).unwrap();
    let e = c
        .attest(&mixed, &key, None, evidence(&rd).unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), Some("UnAuthenticated"));
    // The right pair works, and the token can be presented as a bearer credential.
    let rd = report_data(b.hash, &b.nonce, key.jwk()).unwrap();
    let token = c.attest(&b, &key, None, evidence(&rd).unwrap()).unwrap();
    let secret = c
        .resource(Credential::Bearer(&token), &key, "a/b/c")
        .unwrap();
    assert_eq!(&secret[..], b"x");
    // A foreign token is refused.
    let foreign = Token::from_string("eyJ.e30.Zm9yZWlnbg").unwrap();
    let e = c
        .resource(Credential::Bearer(&foreign), &key, "a/b/c")
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
    // The resource path is checked before anything is sent.
    let before = fake.requests().len();
    let e = c
        .resource(Credential::Bearer(&token), &key, "a/../b")
        .unwrap_err();
    assert!(matches!(e, ClientError::InvalidResourcePath { .. }));
    assert!(matches!(
        c.get_secret("snp", "a/b", None, &mut evidence),
        Err(ClientError::InvalidResourcePath { .. })
    ));
    assert!(matches!(
        c.get_secret("s n p", "a/b/c", None, &mut evidence),
        Err(ClientError::InvalidTee)
    ));
    assert_eq!(fake.requests().len(), before);
}

#[test]
fn transport_failures_and_timeouts() {
    // Nothing listens: connection refused, retried, then a transport error.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::new(&format!("http://127.0.0.1:{port}"), fast_options()).unwrap();
    let mut calls = 0;
    let e = c
        .get_secret("snp", "a/b/c", None, &mut |rd| {
            calls += 1;
            evidence(rd)
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Transport {
                step: Step::Auth,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(calls, 0);

    // A server that accepts and never answers: the timeout ends each request.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(2).collect();
        std::thread::sleep(Duration::from_millis(800));
        drop(held);
    });
    let mut opts = fast_options();
    opts.timeout = Duration::from_millis(200);
    opts.retry.handshake_attempts = 2;
    let c = Client::new(&format!("http://127.0.0.1:{port}"), opts).unwrap();
    let e = c
        .get_secret("snp", "a/b/c", None, &mut evidence)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Transport {
                step: Step::Auth,
                ..
            }
        ),
        "{e:?}"
    );
    hold.join().unwrap();
}

#[test]
fn construction_checks() {
    let ok = |u: &str| Client::new(u, ClientOptions::default()).map(|c| c.base_url().to_owned());
    assert_eq!(
        ok("https://kbs.example:8080/").unwrap(),
        "https://kbs.example:8080"
    );
    assert_eq!(
        ok("https://kbs.example/prefix/").unwrap(),
        "https://kbs.example/prefix"
    );
    assert_eq!(ok("http://localhost:1").unwrap(), "http://localhost:1");
    assert_eq!(ok("http://[::1]:8080").unwrap(), "http://[::1]:8080");
    assert_eq!(ok("http://127.1.2.3").unwrap(), "http://127.1.2.3");
    assert!(matches!(
        ok("http://kbs.example"),
        Err(ClientError::PlainHttpRefused)
    ));
    assert!(matches!(
        ok("http://10.0.0.1"),
        Err(ClientError::PlainHttpRefused)
    ));
    let dangerous = ClientOptions {
        dangerous_plain_http: true,
        ..ClientOptions::default()
    };
    assert!(Client::new("http://kbs.example", dangerous).is_ok());
    for bad in [
        "kbs.example",
        "ftp://kbs.example",
        "https://u:p@kbs.example",
        "https://kbs.example/?a=1",
        "https://kbs.example/#f",
        "",
    ] {
        assert!(
            matches!(ok(bad), Err(ClientError::InvalidBaseUrl { .. })),
            "{bad}"
        );
    }
    for (pem, reason) in [
        (&b""[..], "no certificate"),
        (
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            "malformed PEM",
        ),
    ] {
        let opts = ClientOptions {
            ca_pem: Some(pem.to_vec()),
            ..ClientOptions::default()
        };
        match Client::new("https://kbs.example", opts) {
            Err(ClientError::InvalidCaPem { reason: r }) => assert_eq!(r, reason),
            other => panic!("{other:?}"),
        }
    }
}

/// A pinned CA file must hold certificates only: the CA followed by a private key is refused,
/// though the CA alone is taken.
#[test]
fn a_ca_pem_holding_a_private_key_is_refused() {
    let new = |pem: Vec<u8>| {
        let opts = ClientOptions {
            ca_pem: Some(pem),
            ..ClientOptions::default()
        };
        Client::new("https://kbs.example", opts)
    };
    new(TLS_CA_PEM.to_vec()).unwrap();
    match new([TLS_CA_PEM, TLS_SERVER_KEY].concat()) {
        Err(ClientError::InvalidCaPem { reason }) => {
            assert_eq!(reason, "holds something other than certificates");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fuzz_harness_smoke() {
    fuzz_response(b"");
    for sel in 0u8..6 {
        fuzz_response(&[sel]);
        fuzz_response(&[&[sel][..], b"{\"nonce\":\"a\"}"].concat());
        fuzz_response(&[&[sel][..], b"{\"protected\":\"e30\",\"encrypted_key\":\"\",\"iv\":\"\",\"ciphertext\":\"\",\"tag\":\"\"}"].concat());
    }
}

#[test]
fn tls_with_the_pinned_ca_and_refusals_without_it() {
    let mut script = Script::new(b"over tls");
    let fake = Fake::serve_tls(move |r| script.answer(r));
    let pinned = ClientOptions {
        ca_pem: Some(TLS_CA_PEM.to_vec()),
        ..fast_options()
    };
    let secret = client(&fake, pinned)
        .get_secret("snp", "a/b/c", None, &mut evidence)
        .unwrap();
    assert_eq!(&secret[..], b"over tls");
    assert_eq!(fake.requests().len(), 3);

    for ca in [Some(TLS_OTHER_CA_PEM.to_vec()), None] {
        let opts = ClientOptions {
            ca_pem: ca,
            ..fast_options()
        };
        let e = client(&fake, opts).auth("snp").unwrap_err();
        assert!(
            matches!(
                e,
                ClientError::Transport {
                    step: Step::Auth,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    assert_eq!(
        fake.requests().len(),
        3,
        "no request got through an untrusted channel"
    );
}

#[test]
fn ip_literals_skip_the_resolver_and_names_still_resolve() {
    let addr = |u: &str| super::literal_addr(&u.parse::<Uri>().unwrap());
    assert_eq!(
        addr("http://127.0.0.1:8080/kbs"),
        Some("127.0.0.1:8080".parse().unwrap())
    );
    assert_eq!(
        addr("http://127.0.0.1/"),
        Some("127.0.0.1:80".parse().unwrap())
    );
    assert_eq!(
        addr("https://10.1.2.3"),
        Some("10.1.2.3:443".parse().unwrap())
    );
    assert_eq!(addr("http://[::1]:9/"), Some("[::1]:9".parse().unwrap()));
    assert_eq!(
        addr("https://[fe80::1]/x"),
        Some("[fe80::1]:443".parse().unwrap())
    );
    assert_eq!(addr("http://localhost:8080/"), None);
    // `localhost` is answered as loopback without a lookup.
    let local = |u: &str| super::localhost_port(&u.parse::<Uri>().unwrap());
    assert_eq!(local("http://localhost:8080/"), Some(8080));
    assert_eq!(local("http://LocalHost./x"), Some(80));
    assert_eq!(local("https://localhost"), Some(443));
    assert_eq!(local("http://localhost.example:8080/"), None);
    assert_eq!(local("http://127.0.0.1:8080/"), None);
    assert_eq!(addr("http://127.0.0.1.example:8080/"), None);
    assert_eq!(addr("ftp://127.0.0.1/"), None);

    // `localhost` by name (answered as loopback without a lookup, as above): the whole flow
    // works against it too.
    let mut script = Script::new(b"by name");
    let fake = Fake::serve(move |r| script.answer(r));
    let by_name = fake.url().replace("127.0.0.1", "localhost");
    assert!(by_name.contains("localhost"), "{by_name}");
    let c = Client::new(&by_name, fast_options()).unwrap();
    let secret = c
        .get_secret("snp", "default/key/one", None, &mut evidence)
        .unwrap();
    assert_eq!(&secret[..], b"by name");
}
