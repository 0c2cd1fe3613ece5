//! The PostgreSQL store over TLS, against a real PostgreSQL cluster this test owns, which accepts
//! TCP connections only with TLS (`hostssl`), with a certificate for `localhost` and 127.0.0.1
//! signed by the loopback test CA of crates/guest/testdata/tls. The store connects with
//! `sslmode=verify-full` (name and chain), `verify-ca` and `require` (chain only), and is
//! refused when the chain leads to another CA, when the certificate does not name the host
//! (`verify-full`), and when the server does not offer TLS.
//!
//! Needs PostgreSQL's server binaries (`/usr/lib/postgresql/<version>/bin`, Debian's
//! `postgresql` package, which `.ci/run` installs): skipped with a notice elsewhere, a failure
//! when `CI` is set.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tessera_broker::store::{PostgresStore, Store, StoreError};

#[path = "../../../tests/common/own_postgres.rs"]
mod own_postgres;
use own_postgres::OwnPostgres;

const CERT: &[u8] = include_bytes!("../../guest/testdata/tls/server.pem");
const KEY: &[u8] = include_bytes!("../../guest/testdata/tls/server.key");
const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest/testdata/tls/ca.pem");
const OTHER_CA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../guest/testdata/tls/other-ca.pem"
);

/// Connects and makes one write and one read: the store is usable over this connection.
async fn usable(url: &str) -> Result<(), StoreError> {
    let s = PostgresStore::connect(url).await?;
    let d = s.put_policy("over tls", 1).await?;
    assert_eq!(s.get_policy(&d).await?.as_deref(), Some("over tls"));
    Ok(())
}

/// The connection error's message.
async fn refused(url: &str) -> String {
    match usable(url).await {
        Err(StoreError::Database { message, .. }) => message,
        other => panic!("{url}: connected ({other:?})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_checks_the_servers_certificate() {
    let Some(pg) = OwnPostgres::start_tls(CERT, KEY) else {
        return;
    };
    let port = pg.port();
    let url =
        |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/postgres?{query}");

    // The server takes no plain connection, so every connection that works below is TLS.
    let plain = refused(&url("127.0.0.1", "sslmode=disable")).await;
    assert!(plain.contains("no encryption"), "{plain}");
    let prefer = refused(&url("127.0.0.1", "sslmode=prefer")).await;
    assert!(
        prefer.contains("no encryption"),
        "prefer never tries TLS: {prefer}"
    );

    // verify-full: the certificate chains to the CA and names the host (IP address or name).
    usable(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={CA}"),
    ))
    .await
    .unwrap();
    usable(&url(
        "localhost",
        &format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={CA}"),
    ))
    .await
    .unwrap();
    // Another CA: refused, in every TLS mode.
    for mode in ["verify-full", "verify-ca", "require"] {
        let m = refused(&url(
            "127.0.0.1",
            &format!("sslmode={mode}&sslrootcert={OTHER_CA}"),
        ))
        .await;
        assert!(m.contains("UnknownIssuer"), "{mode}: {m}");
    }
    // A host the certificate does not name: refused by verify-full only.
    let m = refused(&url(
        "127.0.0.2",
        &format!("sslmode=verify-full&sslrootcert={CA}"),
    ))
    .await;
    assert!(m.contains("not valid for name"), "{m}");
    for mode in ["verify-ca", "require"] {
        usable(&url(
            "127.0.0.2",
            &format!("sslmode={mode}&sslrootcert={CA}"),
        ))
        .await
        .unwrap();
    }
    // No trust anchors: refused before connecting.
    let m = refused(&url("127.0.0.1", "sslmode=require")).await;
    assert!(m.contains("sslrootcert"), "{m}");

    // A server without TLS: refused in a TLS mode, never answered in plain text.
    let Some(plain_pg) = OwnPostgres::start() else {
        return;
    };
    let plain_url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={CA}",
        plain_pg.port()
    );
    let m = refused(&plain_url).await;
    assert!(m.to_lowercase().contains("tls"), "{m}");
}
