//! Shutting the server down, over real HTTP on loopback: once the shutdown future completes,
//! no new connection is accepted, an idle keep-alive connection is closed at once, and a
//! request in flight still finishes and is answered before `Server::run` returns, even when
//! it takes longer than the idle timeout.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tessera_server::ServerConfig;

/// Reads from `s` until the end of the first answer's head and returns it.
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "closed in the head: {head:?}"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// The `Content-Length` of an answer's head.
fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn shutdown_finishes_requests_in_flight_and_closes_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::with_data_dir(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.request_timeout_secs = 60;
    // Shorter than the request in flight below takes after the stop, longer than the idle
    // connection takes to be closed by the stop.
    config.idle_timeout_secs = 3;
    config.connection_threads = Some(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, _) = rt.block_on(tessera_server::start(&config)).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = rt.spawn(server.run(async {
        let _ = stopped.await;
    }));

    // A request in flight: its head sent with `Expect: 100-continue`, which hyper answers
    // only once the handler reads the body, so the request is certainly being handled; then
    // part of its body.
    let auth = br#"{"version":"0.4.0","tee":"snp","extra-params":""}"#;
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        busy,
        "POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        auth.len()
    )
    .unwrap();
    let head = read_head(&mut busy);
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    busy.write_all(&auth[..10]).unwrap();
    busy.flush().unwrap();

    // An idle keep-alive connection: one request answered, then nothing.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = read_head(&mut idle);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut body = vec![0u8; content_length(&head)];
    idle.read_exact(&mut body).unwrap();

    let began = Instant::now();
    stop.send(()).unwrap();
    // The idle connection is closed at once (idle, it would be closed after 3 s)...
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0, "{rest:?}");
    assert!(
        began.elapsed() < Duration::from_millis(1500),
        "{:?}",
        began.elapsed()
    );
    // ... no new connection is served...
    std::thread::sleep(Duration::from_millis(200));
    match TcpStream::connect(addr) {
        Err(_) => {}
        Ok(mut s) => {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            assert!(got.is_empty(), "served after shutdown: {got:?}");
        }
    }
    // ... while the request in flight keeps the server running, longer than the idle
    // timeout, and is answered.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!serving.is_finished(), "returned with a request in flight");
    busy.write_all(&auth[10..]).unwrap();
    let head = read_head(&mut busy);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut answer = Vec::new();
    busy.read_to_end(&mut answer).unwrap();
    assert!(
        String::from_utf8_lossy(&answer).contains("nonce"),
        "{answer:?}"
    );

    // Then `run` returns, long before the request timeout.
    let served = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), serving).await })
        .expect("run returned")
        .unwrap();
    served.unwrap();
    assert!(began.elapsed() < Duration::from_secs(30));
}
