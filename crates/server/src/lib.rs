//! The Tessera key broker over HTTP: the KBS 0.4.0 endpoints that Confidential Containers guests
//! speak, the admin API, `/healthz`, `/readyz` and `/metrics`, served with axum on tokio, over
//! rustls or (on loopback only, unless told otherwise) plain HTTP.
//!
//! Everything that decides anything lives in [`tessera_broker`]; this crate turns requests into
//! calls on its [`Broker`](tessera_broker::engine::Broker) and its answers and errors into HTTP.
#![forbid(unsafe_code)]

pub mod admin_auth;
pub mod config;
pub mod error;
pub mod metrics;
mod routes;
pub use routes::ATTEST_BUFFER_BUDGET;
pub mod startup;
mod threads;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tessera_broker::engine::Broker;
use tokio::net::TcpListener;

pub use admin_auth::AdminAuth;
pub use config::ServerConfig;
pub use metrics::Metrics;
pub use startup::{StartError, StartInfo, start};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Plain HTTP was asked for on an address other than loopback.
    #[error(
        "refusing plain HTTP on {0}: give TLS certificate and key, or --insecure-http to allow it"
    )]
    PlainHttpNotLoopback(SocketAddr),
    /// The listening socket could not be opened.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// Accepting connections failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// The state every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The broker.
    pub broker: Broker,
    /// Admin credentials.
    pub admin: Arc<AdminAuth>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Whether the session cookie carries `Secure` (TLS).
    pub secure_cookies: bool,
    /// Time allowed for one request's handling.
    pub request_timeout: Duration,
}

/// The router of every endpoint, for tests and embedding.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state, true)
}

/// Connections the `metrics_listen` address serves at once (scrapers and probes).
pub const MAX_OPS_CONNECTIONS: usize = 64;

/// Of those, from one client address (an IPv6 client's /64): one peer cannot take every slot
/// and starve the scraper.
pub const MAX_OPS_CONNECTIONS_PER_ADDRESS: usize = 8;

/// A server bound to its socket, ready to run.
pub struct Server {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    broker: Broker,
    purge_every: Duration,
    max_connections: usize,
    per_address: Option<usize>,
    idle_timeout: Duration,
    /// Threads that serve connections (none: tasks of the runtime that runs the server).
    connection_threads: usize,
    /// How long requests in flight may take to finish once shutdown began: twice the request
    /// timeout (the body's reading, then the handling).
    drain: Duration,
    /// The `metrics_listen` socket and its router (`/metrics`, `/healthz`, `/readyz`).
    ops: Option<(TcpListener, axum::Router)>,
    /// A fetching collateral cache and how often what is due in it is fetched again.
    collateral_refresh: Option<(Arc<tessera_collateral::Cache>, Duration)>,
    /// The TLS certificate's resolver and how often its files are read again.
    tls_reload: Option<(Arc<tls::Reloading>, Duration)>,
}

/// Connections open per client address (an IPv6 client's /64), for
/// `max_connections_per_address`.
#[derive(Default)]
struct PerAddress(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

/// One connection counted against its address; uncounted when dropped.
struct AddressSlot {
    counts: Arc<PerAddress>,
    key: std::net::IpAddr,
}

impl PerAddress {
    /// The key a client address is counted under: an IPv4 address (or an IPv4-mapped IPv6
    /// one) as it is, an IPv6 address by its /64 (one subscriber's usual allocation).
    fn key(addr: std::net::IpAddr) -> std::net::IpAddr {
        match addr {
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => std::net::IpAddr::V4(v4),
                None => std::net::IpAddr::V6(std::net::Ipv6Addr::from(
                    u128::from(v6) & !((1u128 << 64) - 1),
                )),
            },
            v4 => v4,
        }
    }

    /// A slot for a connection from `addr`, or `None` when it already has `cap`.
    fn take(self: &Arc<Self>, addr: std::net::IpAddr, cap: usize) -> Option<AddressSlot> {
        let key = Self::key(addr);
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(key).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: Arc::clone(self),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self
            .counts
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Most HTTP/2 streams one connection may have open at once.
const MAX_H2_STREAMS: u32 = 64;

/// Largest HTTP/1 read buffer of a connection (hyper's default is about 400 KiB): request
/// headers must fit in it (larger ones are answered 431), bodies stream through it.
const MAX_H1_BUFFER: usize = 64 * 1024;

/// A connection's requests in flight and when it last had one, for the idle timeout.
struct Activity {
    started: tokio::time::Instant,
    in_flight: std::sync::atomic::AtomicUsize,
    /// Milliseconds from `started` to the end of the last request (or the connection's start).
    last_ms: std::sync::atomic::AtomicU64,
    /// Whether a request has begun on the connection.
    used: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: tokio::time::Instant::now(),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            last_ms: std::sync::atomic::AtomicU64::new(0),
            used: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long the connection has been idle, or `None` while a request is in flight.
    fn idle_for(&self) -> Option<Duration> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.in_flight.load(SeqCst) > 0 {
            return None;
        }
        let last = self.last_ms.load(SeqCst);
        Some(Duration::from_millis(self.now_ms().saturating_sub(last)))
    }
}

/// One request in flight on a connection (counted until dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        activity
            .used
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.0.last_ms.store(self.0.now_ms(), SeqCst);
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

/// Completes once the connection has had no request in flight for `timeout`, or, before its
/// first request, for `first` if that is shorter: a connection that never sends a request
/// (nothing at all, or part of the HTTP/2 preface, which hyper reads to tell the protocols
/// apart with no timeout of its own) holds its slot for `first`, not the idle timeout.
async fn idle(activity: &Activity, timeout: Duration, first: Duration) {
    let limit = || {
        if activity.used.load(std::sync::atomic::Ordering::SeqCst) {
            timeout
        } else {
            timeout.min(first)
        }
    };
    let mut wait = limit();
    loop {
        tokio::time::sleep(wait).await;
        let limit = limit();
        wait = match activity.idle_for() {
            Some(idle) if idle >= limit => return,
            Some(idle) => limit.saturating_sub(idle),
            None => limit,
        };
    }
}

/// The server's shutdown as a connection sees it.
#[derive(Clone)]
struct Stop {
    /// Becomes `true` (or its sender is dropped) when the server stops.
    signal: tokio::sync::watch::Receiver<bool>,
    /// How long a request in flight then has to finish.
    drain: Duration,
}

impl Stop {
    /// Completes when the server stops.
    async fn stopped(&mut self) {
        let _ = self.signal.wait_for(|stop| *stop).await;
    }
}

/// Serves one connection until it ends, or until it has been idle for `idle_timeout` (for
/// `HEADER_READ_TIMEOUT` if that is shorter, before its first request), or until the server
/// stops: then it is shut down gracefully (HTTP/1: closed once the request in flight is
/// answered; HTTP/2: GOAWAY, open streams finish) and dropped if it has not closed within the
/// idle timeout (at most `HEADER_READ_TIMEOUT`) more, or on a stop within `stop.drain`. HTTP/1
/// has its own header-read timeout; HTTP/2 has none, so without this a client could hold a
/// connection (and its slot) by never completing a request.
async fn serve_with_idle_timeout<S>(
    stream: S,
    app: axum::Router,
    idle_timeout: Duration,
    mut stop: Stop,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let tracked = Arc::clone(&activity);
    let inner = TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |req| {
        let guard = InFlight::enter(&tracked);
        let call = hyper::service::Service::call(&inner, req);
        async move {
            let response = call.await;
            drop(guard);
            response
        }
    });
    let builder = connection_builder();
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let drain = stop.drain;
    let grace = tokio::select! {
        served = conn.as_mut() => return served,
        () = idle(&activity, idle_timeout, HEADER_READ_TIMEOUT) => idle_timeout.min(HEADER_READ_TIMEOUT),
        // The server is stopping: the request in flight finishes, an idle connection closes
        // now.
        () = stop.stopped() => drain,
    };
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(grace, conn).await {
        Ok(served) => served,
        Err(_) => Ok(()),
    }
}

/// Aborts the task it holds when dropped, however [`Server::run`] returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How every connection is served: HTTP/1 with its header-read timeout and buffer limit,
/// HTTP/2 with its stream limit.
fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_H1_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS);
    builder
}

/// Serves the operations endpoints on their own socket (plain HTTP/1 and HTTP/2), at most
/// [`MAX_OPS_CONNECTIONS`] connections at once and [`MAX_OPS_CONNECTIONS_PER_ADDRESS`] from one
/// address (more are closed at once), until aborted.
async fn serve_ops(listener: TcpListener, app: axum::Router, idle_timeout: Duration, stop: Stop) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_OPS_CONNECTIONS));
    let addresses = Arc::new(PerAddress::default());
    // Dropped, aborting every connection, when this is aborted.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, peer)) => {
                match addresses.take(peer.ip(), MAX_OPS_CONNECTIONS_PER_ADDRESS) {
                    Some(address_slot) => (stream, address_slot),
                    None => continue,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed (metrics_listen)");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (stream, address_slot) = stream;
        let app = app.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let _slot = (slot, address_slot);
            if let Err(e) = serve_with_idle_timeout(stream, app, idle_timeout, stop).await {
                tracing::debug!(error = %e, "connection ended with an error (metrics_listen)");
            }
        });
    }
}

/// Read the TLS files again every `every` (the first time one period after start): a
/// renewed pair serves the next handshakes; one that does not load is logged, and the pair
/// before stays.
async fn tls_reload_loop(resolver: Arc<tls::Reloading>, every: Duration) {
    // `every` is at most a day (the caller caps it), so the first tick's time cannot overflow.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The last failure said, so that a pair that stays wrong is said once, not every tick.
    let mut said: Option<String> = None;
    loop {
        ticks.tick().await;
        let reader = Arc::clone(&resolver);
        match tokio::task::spawn_blocking(move || reader.reload()).await {
            Ok(Ok(true)) => {
                said = None;
                let not_after = resolver.not_after().map(|t| t.to_string());
                tracing::info!(
                    not_after = not_after.as_deref().unwrap_or("?"),
                    "TLS certificate and key reloaded"
                );
            }
            Ok(Ok(false)) => said = None,
            Ok(Err(e)) => {
                let text = e.to_string();
                if said.as_deref() != Some(text.as_str()) {
                    tracing::warn!(
                        error = %text,
                        "TLS certificate and key not reloaded; serving the ones loaded before"
                    );
                    said = Some(text);
                }
            }
            Err(e) => tracing::warn!(error = %e, "one reload of the TLS files failed"),
        }
    }
}

/// Fetches again, now and then every `every`, the items of `cache` that are due (a day before
/// they expire): held collateral is renewed while the old copy is still valid, so a vendor
/// service that is down when it expires refuses nobody. A failure is logged (the cache keeps
/// the stored copy while it is valid) and tried again at the next tick.
async fn collateral_refresh_loop(cache: Arc<tessera_collateral::Cache>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = tessera_pki::UnixTime::now();
        let lister = Arc::clone(&cache);
        // The fetcher blocks (ureq): off the runtime's workers, one item per blocking task,
        // so that the loop, aborted when the server stops, stops between items.
        let due = match tokio::task::spawn_blocking(move || lister.due(now)).await {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "listing the collateral cache failed");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing the collateral cache stopped");
                continue;
            }
        };
        for item in due {
            let key = item.key();
            let fetcher = Arc::clone(&cache);
            match tokio::task::spawn_blocking(move || fetcher.get(&item, now)).await {
                Ok(Ok(_)) => tracing::debug!(item = %key, "collateral refreshed"),
                Ok(Err(e)) => {
                    tracing::warn!(item = %key, error = %e, "collateral refresh failed");
                }
                Err(e) => tracing::warn!(item = %key, error = %e, "collateral refresh stopped"),
            }
        }
    }
}

/// Deletes expired challenges and sessions now and then every `every`; a failure is logged and
/// tried again at the next tick.
async fn purge_loop(broker: Broker, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match broker.purge_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired challenges and sessions"),
            Err(e) => tracing::warn!(error = %e, "purging expired challenges and sessions failed"),
        }
    }
}

impl Server {
    /// Binds the listening socket and loads TLS.
    ///
    /// # Errors
    /// [`ServerError`]: plain HTTP off loopback without `insecure_http`, a socket that cannot be
    /// bound, unreadable TLS files.
    pub async fn bind(config: &ServerConfig, state: AppState) -> Result<Self, ServerError> {
        let mut tls_reload = None;
        let tls = match &config.tls {
            Some(files) => {
                let (acceptor, resolver) = tls::acceptor(&files.cert, &files.key)?;
                if files.reload_secs > 0 {
                    // (At most a day, as the configuration allows: a library caller's larger
                    // value would overflow the timer.)
                    let every = Duration::from_secs(files.reload_secs.min(86_400));
                    tls_reload = Some((resolver, every));
                }
                Some(acceptor)
            }
            None => {
                if !config.listen.ip().is_loopback() && !config.insecure_http {
                    return Err(ServerError::PlainHttpNotLoopback(config.listen));
                }
                None
            }
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let ops = match config.metrics_listen {
            Some(addr) => Some((
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
                routes::ops_router(state.clone()),
            )),
            None => None,
        };
        Ok(Self {
            listener,
            tls,
            broker: state.broker.clone(),
            purge_every: Duration::from_secs(config.purge_interval_secs.max(1)),
            max_connections: config.max_connections.max(1),
            per_address: config.max_connections_per_address.map(|n| n.max(1)),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
            connection_threads: config.connection_threads(startup::database_url(config).is_some()),
            // Reading a request's body and handling it have `request_timeout_secs` each.
            drain: Duration::from_secs(config.request_timeout_secs.max(1)).saturating_mul(2),
            app: routes::router(state, config.metrics_listen.is_none()),
            ops,
            collateral_refresh: None,
            tls_reload,
        })
    }

    /// While it serves, fetch again every `every` what is due in `cache` (a cache without a
    /// fetcher has nothing to do; [`crate::start`] sets this for `[collateral] fetch = true`).
    #[must_use]
    pub fn with_collateral_refresh(
        mut self,
        cache: Arc<tessera_collateral::Cache>,
        every: Duration,
    ) -> Self {
        self.collateral_refresh = Some((cache, every.max(Duration::from_secs(1))));
        self
    }

    /// The address `/metrics` is served at when `metrics_listen` is set (as bound: useful
    /// with port 0).
    ///
    /// # Errors
    /// The OS could not say.
    pub fn metrics_addr(&self) -> std::io::Result<Option<SocketAddr>> {
        self.ops
            .as_ref()
            .map(|(listener, _)| listener.local_addr())
            .transpose()
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// The OS could not say.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether connections are served over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the requests in flight
    /// finish (for as long as one request may take: reading its body and handling it have
    /// `request_timeout_secs` each) while idle connections close, and returns; connections
    /// still open then are dropped (HTTP/2 streams of a connection served on the caller's
    /// runtime are tasks of their own there, which end with their request). Each connection
    /// is served on one of `connection_threads` threads, start to end, or with none as a task
    /// of the runtime that runs this (see `threads`). At most `max_connections` connections
    /// are served at once: the next one is accepted when one ends (until then it waits in the
    /// kernel's backlog). With
    /// `max_connections_per_address`, a connection from an address (an IPv6 client's /64)
    /// that already has that many is closed as soon as it is accepted. While it serves,
    /// expired challenges and sessions are purged from the store at start and then every
    /// `purge_interval_secs` ([`Broker::purge_expired`]).
    ///
    /// # Errors
    /// The connection threads could not be started.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let Self {
            listener,
            tls,
            app,
            broker,
            purge_every,
            max_connections,
            per_address,
            idle_timeout,
            connection_threads,
            drain,
            ops,
            collateral_refresh,
            tls_reload,
        } = self;
        // Dropped last (after the connections were told to stop and had their time): stops
        // the threads, dropping what they still serve.
        let mut threads = threads::ConnectionThreads::start(connection_threads)?;
        tracing::debug!(threads = threads.len(), "connection threads started");
        let (stop, signal) = tokio::sync::watch::channel(false);
        let stopping = Stop { signal, drain };
        let addresses = Arc::new(PerAddress::default());
        let purger = AbortOnDrop(tokio::spawn(purge_loop(broker, purge_every)));
        let refresher = collateral_refresh
            .map(|(cache, every)| AbortOnDrop(tokio::spawn(collateral_refresh_loop(cache, every))));
        let tls_reloader = tls_reload
            .map(|(resolver, every)| AbortOnDrop(tokio::spawn(tls_reload_loop(resolver, every))));
        let ops = ops.map(|(listener, app)| {
            AbortOnDrop(tokio::spawn(serve_ops(
                listener,
                app,
                idle_timeout,
                stopping.clone(),
            )))
        });
        let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
        tokio::pin!(shutdown);
        loop {
            let slot = tokio::select! {
                () = &mut shutdown => break,
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    // The semaphore is never closed.
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Over its address's cap: closed at once (its slot freed with it).
            let address_slot = match per_address {
                Some(cap) => match addresses.take(peer.ip(), cap) {
                    Some(s) => Some(s),
                    None => {
                        tracing::debug!(peer = %PerAddress::key(peer.ip()), "connection refused: max_connections_per_address");
                        continue;
                    }
                },
                None => None,
            };
            let _ = stream.set_nodelay(true);
            // Taken off this runtime's reactor, to be registered with the serving thread's.
            let stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepted connection lost");
                    continue;
                }
            };
            let app = app.clone();
            let tls = tls.clone();
            let mut stopping = stopping.clone();
            threads.spawn(async move {
                // Held until the connection ends.
                let _slot = (slot, address_slot);
                let stream = match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepted connection lost");
                        return;
                    }
                };
                let served = match tls {
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream));
                        let stream = tokio::select! {
                            done = handshake => match done {
                                Ok(Ok(stream)) => stream,
                                _ => return,
                            },
                            // No request in flight yet: nothing to wait for.
                            () = stopping.stopped() => return,
                        };
                        serve_with_idle_timeout(stream, app, idle_timeout, stopping).await
                    }
                    None => serve_with_idle_timeout(stream, app, idle_timeout, stopping).await,
                };
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop((listener, purger, refresher, tls_reloader));
        let _ = stop.send(true);
        // Every slot back: every connection ended.
        let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(drain, slots.acquire_many(all)).await;
        // The operations endpoints' connections (told to stop with the others) last as long.
        drop(ops);
        threads.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before its first request a connection is idle after `HEADER_READ_TIMEOUT` (when shorter
    /// than the idle timeout); once it has served one, after the idle timeout; never while a
    /// request is in flight. Paused time: nothing really waits.
    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_is_idle_after_the_header_timeout() {
        let idle_timeout = Duration::from_secs(60);
        let unused = Arc::new(Activity::new());
        let start = tokio::time::Instant::now();
        idle(&unused, idle_timeout, HEADER_READ_TIMEOUT).await;
        assert_eq!(start.elapsed(), HEADER_READ_TIMEOUT);
        // A shorter idle timeout still applies first.
        let start = tokio::time::Instant::now();
        idle(
            &Activity::new(),
            Duration::from_secs(1),
            HEADER_READ_TIMEOUT,
        )
        .await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // Used: the idle timeout counts from the end of the last request.
        let used = Arc::new(Activity::new());
        let request = InFlight::enter(&used);
        let waiting = {
            let used = Arc::clone(&used);
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                idle(&used, idle_timeout, HEADER_READ_TIMEOUT).await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(request);
        let waited = waiting.await.unwrap();
        assert!(
            waited >= Duration::from_secs(65) && waited < Duration::from_secs(66),
            "{waited:?}"
        );
    }

    /// IPv4 addresses are counted one by one, IPv6 ones by their /64 (a mapped IPv4 address as
    /// IPv4), and a slot is given back when its connection ends.
    #[test]
    fn connections_are_counted_per_address_and_given_back() {
        use std::net::IpAddr;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(PerAddress::key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            PerAddress::key(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(PerAddress::key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        let counts = Arc::new(PerAddress::default());
        let a = counts.take(ip("2001:db8:1:2::1"), 2).unwrap();
        let b = counts.take(ip("2001:db8:1:2::ffff"), 2).unwrap();
        assert!(
            counts.take(ip("2001:db8:1:2:1::1"), 2).is_none(),
            "same /64"
        );
        assert!(
            counts.take(ip("2001:db8:1:3::1"), 2).is_some(),
            "another /64"
        );
        drop(a);
        let c = counts.take(ip("2001:db8:1:2::1"), 2);
        assert!(c.is_some());
        drop((b, c));
        assert!(counts.0.lock().unwrap().is_empty(), "no count left behind");
    }
}
