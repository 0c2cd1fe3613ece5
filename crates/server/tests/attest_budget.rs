//! The guests' body budget (`/attest` and `/auth`), over real HTTP on loopback: clients that announce the largest
//! bodies and trickle them take nothing from other guests; clients that really send them hold
//! at most `ATTEST_BUFFER_BUDGET` bytes of the broker's memory, and the next `/attest` gets 503
//! `Unavailable` at once instead of more memory, and is served again once they are gone. Its own
//! test binary: the budget is the process's.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tessera_broker::protocol::MAX_ATTEST_BODY;
use tessera_server::{ATTEST_BUFFER_BUDGET, ServerConfig};

/// Sends the head of an `/attest` request announcing `len` body bytes, and `sent` of them.
fn open_attest(addr: SocketAddr, len: usize, sent: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /kbs/v0/attest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    s.write_all(sent).unwrap();
    s.flush().unwrap();
    s
}

/// The status line and body of the answer on `s`.
fn answer(mut s: TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

/// A whole small `/attest` request (malformed JSON: refused after reading, not for the budget).
fn small_attest(addr: SocketAddr) -> (u16, String) {
    let body = b"{}";
    answer(open_attest(addr, body.len(), body))
}

#[test]
fn large_announced_bodies_cannot_take_more_than_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::with_data_dir(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.request_timeout_secs = 20;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, _) = rt.block_on(tessera_server::start(&config)).unwrap();
    let addr = server.local_addr().unwrap();
    rt.spawn(server.run(std::future::pending()));

    // Served while the budget is free: refused for its body, not with 503.
    let (status, text) = small_attest(addr);
    assert_eq!(status, 400, "{text}");

    // More than the largest body is refused before anything is reserved or read.
    let s = open_attest(addr, MAX_ATTEST_BODY + 1, b"");
    let (status, text) = answer(s);
    assert_eq!(status, 413, "{text}");

    // Clients that really send the largest body, all but its last byte, fill the budget (no
    // other request holds any of it now: each answered one gave its share back first)...
    let filler = vec![b' '; MAX_ATTEST_BODY - 1];
    let holders: Vec<TcpStream> = (0..ATTEST_BUFFER_BUDGET / MAX_ATTEST_BODY)
        .map(|_| open_attest(addr, MAX_ATTEST_BODY, &filler))
        .collect();
    // ... so, once the broker has read them, the next one is told to retry at once.
    let (status, text, waited) = until(503, || {
        let started = Instant::now();
        let (status, text) = small_attest(addr);
        (status, text, started.elapsed())
    });
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("errors/Unavailable"), "{text}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    // /auth bodies come out of the same budget: told to retry too.
    let auth = br#"{"version":"0.4.0","tee":"snp","extra-params":""}"#;
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n",
        auth.len()
    )
    .unwrap();
    s.write_all(auth).unwrap();
    let (status, text) = answer(s);
    assert_eq!(status, 503, "{text}");

    // Gone, they give the budget back.
    drop(holders);
    let (status, text, _) = until(400, || {
        let (status, text) = small_attest(addr);
        (status, text, Duration::ZERO)
    });
    assert_eq!(status, 400, "{text}");

    // Announcing the largest body and trickling it takes (almost) nothing of the budget.
    let tricklers: Vec<TcpStream> = (0..8)
        .map(|_| open_attest(addr, MAX_ATTEST_BODY, b"{\"runtime-data\":"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, text) = small_attest(addr);
    assert_eq!(status, 400, "{text}");
    drop(tricklers);
}

/// Calls `f` until it answers `status`, at most 150 times 100 ms apart: the broker reads the
/// holders' heads, and notices them gone, in its own time. The last answer.
fn until(status: u16, mut f: impl FnMut() -> (u16, String, Duration)) -> (u16, String, Duration) {
    let mut last = f();
    for _ in 0..150 {
        if last.0 == status {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        last = f();
    }
    last
}
