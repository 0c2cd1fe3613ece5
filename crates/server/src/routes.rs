//! The endpoints: each reads its body within a bound, calls the broker under a deadline, and turns
//! the answer into JSON or a public error, counting it in the metrics.

use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tessera_broker::engine::{Actor, BrokerError, Credential};
use tessera_broker::protocol::{MAX_ATTEST_BODY, MAX_SMALL_BODY, PublicError};
use tessera_pki::UnixTime;

use crate::AppState;
use crate::admin_auth::AdminAuthError;
use crate::error::ApiError;

/// Largest admin upload body (a secret of at most 1 MiB in base64, and its policy).
const MAX_ADMIN_BODY: usize = 4 * 1024 * 1024;

/// The session cookie's name.
const SESSION_COOKIE: &str = "kbs-session-id";

/// Most bytes of guest request bodies (`/attest`, and the small `/auth` ones) this process
/// holds at once, counted as they arrive and kept until their answer (handling one needs a
/// few times its body in working memory). A body
/// takes its bytes from this budget in steps of [`BUDGET_STEP`] as they are received, never
/// waiting: when the budget is spent the request gets 503 `Unavailable` at once, which guests
/// retry. So whoever wants to hold the budget must really send at least half that much (its
/// buffer's capacity at most doubles what arrived; announcing a large `Content-Length` and
/// trickling takes nothing, and one byte holds one 256-byte step: the 65,536 streams the
/// default connection limits allow hold 16 MiB that way), and a request never queues behind
/// another.
/// Real evidence is tens of KiB: the budget admits hundreds of guests at once.
pub const ATTEST_BUFFER_BUDGET: usize = 32 * 1024 * 1024;

/// The budget's unit (a permit), so that it fits a semaphore's count.
const BUDGET_UNIT: usize = 256;

/// The least a body takes of the budget at a time: its buffer's capacity (which doubles as
/// the body grows, up to what arrived) is what it holds, rounded up to a step.
const BUDGET_STEP: usize = 256;

/// The process's [`ATTEST_BUFFER_BUDGET`], in units of [`BUDGET_UNIT`].
static ATTEST_BUDGET: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(ATTEST_BUFFER_BUDGET / BUDGET_UNIT);

/// What a body of `len` bytes holds of the budget: `len` rounded up to a step, in units.
fn budget_units(len: usize) -> u32 {
    let stepped = len.max(1).div_ceil(BUDGET_STEP).saturating_mul(BUDGET_STEP);
    u32::try_from(stepped / BUDGET_UNIT).unwrap_or(u32::MAX)
}

/// A guest's body (`/attest`, `/auth`), at most `max` bytes, received within the request
/// deadline, with its share of [`ATTEST_BUFFER_BUDGET`] (held until the returned permit is
/// dropped): the guest endpoints are the ones anybody may call, so together they hold at most
/// the budget, whatever the number of connections and streams.
async fn read_guest_body(
    request_timeout: Duration,
    headers: &HeaderMap,
    mut body: Body,
    max: usize,
) -> Result<(Bytes, tokio::sync::SemaphorePermit<'static>), ApiError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > max) {
        return Err(ApiError::public(PublicError::PayloadTooLarge));
    }
    let busy = || {
        tracing::warn!("the guests' body budget is spent; answered 503");
        ApiError::public(PublicError::Unavailable)
    };
    // Nothing is held (or allocated) before the first bytes arrive: a request that sends no
    // body holds no budget. Then the buffer's capacity is what the budget counts.
    let mut held = ATTEST_BUDGET.try_acquire_many(0).map_err(|_| busy())?;
    let mut units = 0;
    let read = async {
        let mut buf: Vec<u8> = Vec::new();
        while let Some(data) = next_data(&mut body).await? {
            let len = buf.len().saturating_add(data.len());
            if len > max {
                return Err(ApiError::public(PublicError::PayloadTooLarge));
            }
            if len > buf.capacity() {
                let capacity = len
                    .max(buf.capacity().saturating_mul(2))
                    .clamp(BUDGET_STEP.min(max), max);
                let needed = budget_units(capacity);
                if needed > units {
                    let more = ATTEST_BUDGET
                        .try_acquire_many(needed - units)
                        .map_err(|_| busy())?;
                    held.merge(more);
                    units = needed;
                }
                buf.reserve_exact(capacity.saturating_sub(buf.len()));
            }
            buf.extend_from_slice(&data);
        }
        Ok(Bytes::from(buf))
    };
    match tokio::time::timeout(request_timeout, read).await {
        Ok(Ok(bytes)) => Ok((bytes, held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::public(PublicError::RequestTimeout)),
    }
}

/// The operations endpoints alone (`/healthz`, `/readyz`, `/metrics`), for a separate
/// `metrics_listen` address.
pub(crate) fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Every endpoint; `/metrics` only with `with_metrics` (else it is served by [`ops_router`] on
/// its own address).
pub(crate) fn router(state: AppState, with_metrics: bool) -> Router {
    let router = Router::new()
        .route("/kbs/v0/auth", post(auth))
        .route("/kbs/v0/attest", post(attest))
        .route(
            "/kbs/v0/resource/{repo}/{kind}/{tag}",
            // HEAD would run a release (audited as one) whose body is then dropped: refused.
            get(resource)
                .head(resource_method_not_allowed)
                .post(admin_put)
                .delete(admin_delete)
                .fallback(resource_method_not_allowed),
        )
        .route("/kbs/v0/admin/resources", get(admin_list))
        .route("/kbs/v0/admin/kek/rotate", post(admin_rotate_kek))
        .route("/kbs/v0/admin/audit", get(admin_audit))
        .route(
            "/kbs/v0/admin/policy/{repo}",
            axum::routing::put(admin_set_policy),
        )
        .route("/kbs/v0/sealing-key", get(sealing_key))
        .route("/kbs/v0/admin/sealed", post(admin_put_sealed))
        .route(
            "/kbs/v0/admin/sealing-key/rotate",
            post(admin_rotate_sealing_key),
        )
        .route(
            "/kbs/v0/admin/coco-sealed/{repo}/{kind}/{tag}",
            post(admin_coco_sealed),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let router = if with_metrics {
        router.route("/metrics", get(metrics))
    } else {
        router
    };
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The body's next data frame (trailers skipped); none at its end. A body that breaks off or
/// is malformed (a reset stream, bad chunked encoding): 400.
async fn next_data(body: &mut Body) -> Result<Option<Bytes>, ApiError> {
    use axum::body::HttpBody as _;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
        let frame = frame.map_err(|_| ApiError::public(PublicError::InvalidRequest))?;
        if let Ok(data) = frame.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// The body, at most `max` bytes, received within the request deadline (so a client cannot
/// hold a connection and its buffer by sending slowly). Over `max`: 413; a body that breaks
/// off or is malformed (a reset stream, bad chunked encoding): 400.
async fn read_body(
    request_timeout: Duration,
    mut body: Body,
    max: usize,
) -> Result<Bytes, ApiError> {
    // An admin body can carry a secret: no copy of it is left behind unwiped, neither a
    // frame (when this is its only holder) nor a buffer outgrown (the caller wipes the last).
    let wipe = |data: Bytes| {
        if let Ok(mut owned) = data.try_into_mut() {
            zeroize::Zeroize::zeroize(owned.as_mut());
        }
    };
    let read = async {
        let mut buf = zeroize::Zeroizing::new(Vec::<u8>::new());
        while let Some(data) = next_data(&mut body).await? {
            let len = buf.len().saturating_add(data.len());
            if len > max {
                wipe(data);
                return Err(ApiError::public(PublicError::PayloadTooLarge));
            }
            if len > buf.capacity() {
                let capacity = len.max(buf.capacity().saturating_mul(2)).min(max);
                let mut grown = zeroize::Zeroizing::new(Vec::with_capacity(capacity));
                grown.extend_from_slice(&buf);
                // The old buffer is wiped as it is dropped.
                buf = grown;
            }
            buf.extend_from_slice(&data);
            wipe(data);
        }
        Ok(Bytes::from(std::mem::take(&mut *buf)))
    };
    match tokio::time::timeout(request_timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::public(PublicError::RequestTimeout)),
    }
}

/// Runs a broker call under the request deadline.
async fn deadline<T>(
    state: &AppState,
    call: impl std::future::Future<Output = Result<T, BrokerError>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(state.request_timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(BrokerError::Timeout),
    }
}

/// Counts and logs the answer of `endpoint`.
fn finish(
    state: &AppState,
    endpoint: &'static str,
    started: Instant,
    result: Result<Response, ApiError>,
) -> Response {
    let response = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let status = response.status().as_u16();
    state.metrics.request(endpoint, status);
    tracing::debug!(
        endpoint,
        status,
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "answered"
    );
    response
}

fn broker_error(endpoint: &'static str, e: &BrokerError) -> ApiError {
    ApiError::logged(e.public(), endpoint, e)
}

fn json(value: &serde_json::Value) -> Response {
    let mut r = (StatusCode::OK, value.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The value of the session cookie, if the request carries it once (two would leave it to
/// their order which session counts).
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    let mut sessions = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == SESSION_COOKIE);
    match (sessions.next(), sessions.next()) {
        (Some((_, value)), None) => Some(value.trim().to_owned()),
        _ => None,
    }
}

/// The request's `Authorization` header, if any; refused when there are two or more, which
/// would leave it to the order of headers (and to whatever proxy added one) which credential
/// counts.
fn authorization(headers: &HeaderMap) -> Result<Option<&str>, AdminAuthError> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    match (all.next(), all.next()) {
        (_, Some(_)) => Err(AdminAuthError::Duplicated),
        (one, None) => Ok(one.and_then(|v| v.to_str().ok())),
    }
}

/// The bearer token of a guest's request (none when two `Authorization` headers came).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    authorization(headers)
        .ok()
        .flatten()
        .and_then(crate::admin_auth::bearer_token)
        .map(str::trim)
}

async fn auth(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    const EP: &str = "/kbs/v0/auth";
    let started = Instant::now();
    let result = async {
        let (body, _budget) =
            read_guest_body(state.request_timeout, &headers, body, MAX_SMALL_BODY).await?;
        let challenge = deadline(&state, state.broker.auth(&body))
            .await
            .map_err(|e| broker_error(EP, &e))?;
        let mut response = json(&challenge.response);
        let cookie = format!(
            "{SESSION_COOKIE}={}; Path=/kbs/v0; Max-Age={}; HttpOnly; SameSite=Strict{}",
            challenge.session_id,
            challenge.max_age_secs,
            if state.secure_cookies { "; Secure" } else { "" }
        );
        let value =
            HeaderValue::from_str(&cookie).map_err(|_| ApiError::public(PublicError::Internal))?;
        response.headers_mut().insert(header::SET_COOKIE, value);
        Ok(response)
    }
    .await;
    finish(&state, EP, started, result)
}

async fn attest(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    const EP: &str = "/kbs/v0/attest";
    let started = Instant::now();
    let result = async {
        let (body, _reserved) =
            read_guest_body(state.request_timeout, &headers, body, MAX_ATTEST_BODY).await?;
        let session = session_cookie(&headers);
        let outcome = deadline(&state, state.broker.attest(session.as_deref(), &body)).await;
        state.metrics.verification.observe(started.elapsed());
        match outcome {
            Ok(attested) => {
                state.metrics.verdict(attested.tee.as_str(), "pass");
                Ok(json(&serde_json::json!({ "token": attested.token })))
            }
            Err(e) => {
                if let Some(tee) = e.tee() {
                    state.metrics.verdict(tee.as_str(), "fail");
                }
                Err(broker_error(EP, &e))
            }
        }
    }
    .await;
    finish(&state, EP, started, result)
}

async fn resource(
    State(state): State<AppState>,
    segments: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    const EP: &str = "/kbs/v0/resource";
    let started = Instant::now();
    let result = async {
        let Path((repo, kind, tag)) = segments.map_err(|e| unreadable(EP, &e))?;
        let session = session_cookie(&headers);
        let credential = match (bearer(&headers), session.as_deref()) {
            (Some(token), _) => Credential::Bearer(token),
            (None, Some(id)) => Credential::Session(id),
            (None, None) => return Err(ApiError::public(PublicError::UnAuthenticated)),
        };
        let path = format!("{repo}/{kind}/{tag}");
        let released = deadline(
            &state,
            state.broker.resource(credential, &path, query.as_deref()),
        )
        .await
        .map_err(|e| broker_error(EP, &e))?;
        state.metrics.release.observe(started.elapsed());
        Ok(json(&released))
    }
    .await;
    finish(&state, EP, started, result)
}

/// The admin actor of a request, or a refusal.
fn admin_actor(
    state: &AppState,
    headers: &HeaderMap,
    endpoint: &'static str,
) -> Result<Actor, ApiError> {
    authorization(headers)
        .and_then(|header| state.admin.authenticate(header, UnixTime::now()))
        .map_err(|e| ApiError::logged(PublicError::AdminUnauthorized, endpoint, &e))
}

async fn admin_put(
    State(state): State<AppState>,
    segments: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    const EP: &str = "/kbs/v0/resource (admin put)";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        let Path((repo, kind, tag)) = segments.map_err(|e| unreadable(EP, &e))?;
        // Out of scope: refused (and audited) before the body is read.
        let what = format!("put {repo}/{kind}/{tag}");
        deadline(&state, state.broker.admin_scope(&actor, &repo, &what))
            .await
            .map_err(|e| broker_error(EP, &e))?;
        let body = read_body(state.request_timeout, body, MAX_ADMIN_BODY).await?;
        let path = format!("{repo}/{kind}/{tag}");
        let answer = deadline(&state, state.broker.admin_put(&actor, &path, &body)).await;
        // The body holds the secret (in base64): overwritten once handled, when this is the
        // only handle on its buffer (it is, unless hyper still holds part of it).
        if let Ok(mut owned) = body.try_into_mut() {
            zeroize::Zeroize::zeroize(owned.as_mut());
        }
        let answer = answer.map_err(|e| broker_error(EP, &e))?;
        Ok(json(&answer))
    }
    .await;
    finish(&state, EP, started, result)
}

async fn admin_delete(
    State(state): State<AppState>,
    segments: Result<Path<(String, String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    const EP: &str = "/kbs/v0/resource (admin delete)";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        let Path((repo, kind, tag)) = segments.map_err(|e| unreadable(EP, &e))?;
        let path = format!("{repo}/{kind}/{tag}");
        let answer = deadline(
            &state,
            state.broker.admin_delete(&actor, &path, query.as_deref()),
        )
        .await
        .map_err(|e| broker_error(EP, &e))?;
        Ok(json(&answer))
    }
    .await;
    finish(&state, EP, started, result)
}

/// A page's `limit` as the broker takes it (which clamps it to its range): one past what a
/// `u32` holds is still "more than the most".
fn page_limit(limit: Option<u64>) -> Option<u32> {
    limit.map(|l| u32::try_from(l).unwrap_or(u32::MAX))
}

/// Unknown parameters are refused (400): a misspelt `repo` would otherwise widen a page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    repo: Option<String>,
    /// With `after_version`: the page starts after this resource's version.
    after: Option<String>,
    after_version: Option<u64>,
    /// Any number: outside 1 to 1000 it is taken as the nearest of them.
    limit: Option<u64>,
}

async fn admin_list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    const EP: &str = "/kbs/v0/admin/resources";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        let Query(q) = q.map_err(|e| unreadable(EP, &e))?;
        let after = match (q.after.as_deref(), q.after_version) {
            (Some(resource), Some(version)) => Some((resource, version)),
            (None, None) => None,
            _ => {
                return Err(unreadable(EP, &"after and after_version go together"));
            }
        };
        let answer = deadline(
            &state,
            state
                .broker
                .admin_list(&actor, q.repo.as_deref(), after, page_limit(q.limit)),
        )
        .await
        .map_err(|e| broker_error(EP, &e))?;
        Ok(json(&answer))
    }
    .await;
    finish(&state, EP, started, result)
}

async fn admin_rotate_kek(State(state): State<AppState>, headers: HeaderMap) -> Response {
    const EP: &str = "/kbs/v0/admin/kek/rotate";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        // The rotation is a task of its own, so that the request's deadline does not cut it
        // off midway (it re-wraps every version, one durable write each): past the deadline
        // the admin is answered 202, and the rotation goes on to its end, which the audit log
        // records. Should it still be cut off (the broker stopping), the next rotation takes
        // it up where it stopped.
        let broker = state.broker.clone();
        let mut rotation = tokio::spawn(async move {
            let result = broker.admin_rotate_kek(&actor).await;
            // Also in the server log: once the admin was answered 202, nobody else sees it
            // (a rotation whose start could not be recorded has no audit entry at all).
            match &result {
                Ok(_) => tracing::info!(endpoint = EP, "KEK rotation done"),
                Err(e) => tracing::warn!(endpoint = EP, error = %e, "KEK rotation failed"),
            }
            result
        });
        match tokio::time::timeout(state.request_timeout, &mut rotation).await {
            Ok(Ok(answer)) => Ok(json(&answer.map_err(|e| broker_error(EP, &e))?)),
            Ok(Err(_)) => Err(broker_error(
                EP,
                &BrokerError::Release("the KEK rotation task ended without an answer".into()),
            )),
            Err(_) => {
                tracing::info!(
                    endpoint = EP,
                    "KEK rotation goes on past the request deadline"
                );
                let mut r = json(&serde_json::json!({
                    "status": "rotating",
                    "detail": "the KEK rotation goes on; the audit log records its end",
                }));
                *r.status_mut() = StatusCode::ACCEPTED;
                Ok(r)
            }
        }
    }
    .await;
    finish(&state, EP, started, result)
}

/// Unknown parameters are refused (400): a misspelt `repo` would otherwise widen a page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    after: Option<u64>,
    /// Any number: outside 1 to 1000 it is taken as the nearest of them.
    limit: Option<u64>,
}

async fn admin_audit(
    State(state): State<AppState>,
    q: Result<Query<AuditQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    const EP: &str = "/kbs/v0/admin/audit";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        let Query(q) = q.map_err(|e| unreadable(EP, &e))?;
        let answer = deadline(
            &state,
            state
                .broker
                .admin_audit(&actor, q.after, page_limit(q.limit)),
        )
        .await
        .map_err(|e| broker_error(EP, &e))?;
        Ok(json(&answer))
    }
    .await;
    finish(&state, EP, started, result)
}

async fn admin_set_policy(
    State(state): State<AppState>,
    segments: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    const EP: &str = "/kbs/v0/admin/policy";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        let Path(repo) = segments.map_err(|e| unreadable(EP, &e))?;
        // Out of scope: refused (and audited) before the body is read.
        let what = format!("set the policy of {repo}");
        deadline(&state, state.broker.admin_scope(&actor, &repo, &what))
            .await
            .map_err(|e| broker_error(EP, &e))?;
        let body = read_body(state.request_timeout, body, MAX_ADMIN_BODY).await?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::public(PublicError::InvalidRequest))?;
        let answer = deadline(
            &state,
            state.broker.admin_set_repo_policy(&actor, &repo, text),
        )
        .await
        .map_err(|e| broker_error(EP, &e))?;
        Ok(json(&answer))
    }
    .await;
    finish(&state, EP, started, result)
}

async fn sealing_key(State(state): State<AppState>) -> Response {
    const EP: &str = "/kbs/v0/sealing-key";
    let started = Instant::now();
    let result = match state.broker.sealing_public_keys() {
        Some(keys) => Ok(json(&keys)),
        None => Err(ApiError::public(PublicError::ResourceNotFound)),
    };
    finish(&state, EP, started, result)
}

/// Unknown parameters are refused (400): a misspelt `repo` would otherwise widen a page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedQuery {
    resource: Option<String>,
}

async fn admin_put_sealed(
    State(state): State<AppState>,
    q: Result<Query<SealedQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    const EP: &str = "/kbs/v0/admin/sealed";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        let Query(q) = q.map_err(|e| unreadable(EP, &e))?;
        let body = read_body(state.request_timeout, body, MAX_ADMIN_BODY).await?;
        let answer = deadline(
            &state,
            state
                .broker
                .admin_put_sealed(&actor, q.resource.as_deref(), &body),
        )
        .await
        .map_err(|e| broker_error(EP, &e))?;
        Ok(json(&answer))
    }
    .await;
    finish(&state, EP, started, result)
}

async fn admin_rotate_sealing_key(State(state): State<AppState>, headers: HeaderMap) -> Response {
    const EP: &str = "/kbs/v0/admin/sealing-key/rotate";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        let answer = deadline(&state, state.broker.admin_rotate_sealing_key(&actor))
            .await
            .map_err(|e| broker_error(EP, &e))?;
        Ok(json(&answer))
    }
    .await;
    finish(&state, EP, started, result)
}

async fn admin_coco_sealed(
    State(state): State<AppState>,
    segments: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    const EP: &str = "/kbs/v0/admin/coco-sealed";
    let started = Instant::now();
    let result = async {
        let actor = admin_actor(&state, &headers, EP)?;
        let Path((repo, kind, tag)) = segments.map_err(|e| unreadable(EP, &e))?;
        let path = format!("{repo}/{kind}/{tag}");
        let answer = deadline(&state, state.broker.admin_coco_sealed(&actor, &path))
            .await
            .map_err(|e| broker_error(EP, &e))?;
        Ok(json(&answer))
    }
    .await;
    finish(&state, EP, started, result)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.broker.ready().await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        ApiError::public(PublicError::Unavailable).into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = (StatusCode::OK, state.metrics.render()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

async fn not_found(State(state): State<AppState>) -> Response {
    state.metrics.request("other", 404);
    ApiError::public(PublicError::ResourceNotFound).into_response()
}

/// A known path with a method it does not take: 405, with the `InvalidRequest` body.
async fn method_not_allowed(State(state): State<AppState>) -> Response {
    state.metrics.request("other", 405);
    let mut r = ApiError::public(PublicError::InvalidRequest).into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// A resource path with a method it does not take, HEAD included (refused there): 405 naming
/// the methods it takes. (axum's own `Allow` would list HEAD with GET; it keeps one the answer
/// has, and RFC 9110 wants one on every 405.)
async fn resource_method_not_allowed(state: State<AppState>) -> Response {
    let mut r = method_not_allowed(state).await;
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET,POST,DELETE"));
    r
}

/// A path segment or query string the endpoint cannot read (not UTF-8, a number that is not
/// one): `InvalidRequest`, in the public vocabulary like every refusal.
fn unreadable(endpoint: &'static str, e: &dyn std::fmt::Display) -> ApiError {
    ApiError::logged(PublicError::InvalidRequest, endpoint, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that sends its bytes when told to, and otherwise nothing.
    struct Fed(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

    impl axum::body::HttpBody for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|b| b.map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    /// A body that breaks off is malformed (400), one over the limit too large (413).
    #[tokio::test]
    async fn broken_bodies_are_malformed_not_too_large() {
        struct Broken;
        impl axum::body::HttpBody for Broken {
            type Data = Bytes;
            type Error = std::io::Error;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>>
            {
                std::task::Poll::Ready(Some(Err(std::io::ErrorKind::ConnectionReset.into())))
            }
        }
        let status = |r: Result<Bytes, ApiError>| r.unwrap_err().into_response().status();
        let t = Duration::from_secs(5);
        assert_eq!(
            status(read_body(t, Body::new(Broken), 64).await),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(read_body(t, Body::from(vec![b'x'; 65]), 64).await),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            read_body(t, Body::from(vec![b'x'; 64]), 64)
                .await
                .unwrap()
                .len(),
            64
        );
    }

    /// `/attest` bodies that have sent nothing hold none of the budget, however many there
    /// are and whatever length they announce; one that has sent a byte holds one step, and
    /// one that has sent more holds its buffer's capacity, rounded up to steps.
    #[tokio::test]
    async fn silent_attest_bodies_hold_none_of_the_budget() {
        let all = ATTEST_BUFFER_BUDGET / BUDGET_UNIT;
        assert_eq!(ATTEST_BUDGET.available_permits(), all);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, MAX_ATTEST_BODY.into());
        let mut feeds = Vec::new();
        let mut readers = Vec::new();
        // More than the budget's worth of the old 64 KiB first step.
        for _ in 0..(ATTEST_BUFFER_BUDGET / (64 * 1024) + 8) {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let headers = headers.clone();
            readers.push(tokio::spawn(async move {
                read_guest_body(
                    Duration::from_secs(30),
                    &headers,
                    Body::new(Fed(rx)),
                    MAX_ATTEST_BODY,
                )
                .await
                .map(|(bytes, permit)| (bytes.len(), permit.num_permits()))
            }));
            feeds.push(tx);
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(ATTEST_BUDGET.available_permits(), all);
        // One byte: one step held.
        feeds[0].send(Bytes::from_static(b"{")).unwrap();
        let steps = BUDGET_STEP / BUDGET_UNIT;
        for _ in 0..100 {
            if ATTEST_BUDGET.available_permits() < all {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(ATTEST_BUDGET.available_permits(), all - steps);
        // 10,000 bytes more: the buffer grows to the larger of twice its capacity and what
        // arrived (10,001 bytes), which it holds rounded up to steps: 10 KiB.
        feeds[0].send(Bytes::from(vec![b' '; 10_000])).unwrap();
        drop(feeds.swap_remove(0));
        let (len, held) = readers.swap_remove(0).await.unwrap().unwrap();
        assert_eq!(len, 10_001);
        assert_eq!(held, 10 * 1024 / BUDGET_UNIT);
        // Answered (its permit dropped): everything is free again.
        assert_eq!(ATTEST_BUDGET.available_permits(), all);
        for r in &readers {
            r.abort();
        }
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; kbs-session-id=abc ; b=2"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("kbs-session-idx=abc"),
        );
        assert_eq!(session_cookie(&h), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t.o.k"),
        );
        assert_eq!(bearer(&h), Some("t.o.k"));
    }

    /// The guest's cookie and resource-path encoders against the server's readers.
    mod guest_agreement {
        use super::*;
        use proptest::prelude::*;
        use tessera_guest::client::{ResourcePath as GuestPath, Session};

        fn cookies(values: &[&str]) -> HeaderMap {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::COOKIE, v.parse().unwrap());
            }
            headers
        }

        /// A segment of the resource-path alphabet, sometimes with a character outside it.
        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                8 => "[A-Za-z0-9_.-]{0,6}",
                1 => "[A-Za-z0-9_.?=&/%+ -]{0,6}",
                1 => (1usize..=130).prop_map(|n| "a".repeat(n)),
            ]
        }

        /// The query after `?`: a version the guest may write, or something it may not.
        fn query() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => (1u64..=u64::MAX).prop_map(|v| format!("version={v}")),
                1 => (4_294_967_290u64..4_294_967_300).prop_map(|v| format!("version={v}")),
                1 => "(version|Version|%76ersion)=[0+-]?[0-9]{0,3}",
                1 => "[a-z=&0-9]{0,12}",
            ]
        }

        proptest! {
            /// Any session id the guest takes from `set-cookie` is read back by the server
            /// from the guest's `Cookie` header, unchanged, also beside other cookies; a
            /// second `kbs-session-id` (same or another value, same or another header) makes
            /// the server read none.
            #[test]
            fn the_server_reads_the_session_cookie_the_guest_sends(
                value in "[\\x21-\\x7e]{1,80}",
                other in "[\\x21-\\x7e]{1,20}",
                same in any::<bool>(),
                clean in prop::bool::weighted(0.8),
            ) {
                // Mostly values without the four characters a cookie value may not hold.
                let value = if clean { value.replace(['"', ',', ';', '\\'], "") } else { value };
                let Ok(session) = Session::from_cookie_value(&value) else {
                    prop_assert!(!clean || value.is_empty());
                    return Ok(());
                };
                let header = session.cookie_header();
                prop_assert_eq!(session_cookie(&cookies(&[&header])), Some(value.clone()));
                let beside = format!("theme=dark; {}; lang=en", &*header);
                prop_assert_eq!(session_cookie(&cookies(&[&beside])), Some(value.clone()));
                let second = if same { value.clone() } else { other };
                let twice = format!("{}; {SESSION_COOKIE}={second}", &*header);
                prop_assert_eq!(session_cookie(&cookies(&[&twice])), None);
                let apart = format!("{SESSION_COOKIE}={second}");
                prop_assert_eq!(session_cookie(&cookies(&[&header, &apart])), None);
            }

            /// The guest accepts a resource path exactly when the broker does, and a version
            /// it pins is the version the broker reads (or one the broker refuses, past
            /// `u32`); never another version, never the newest.
            #[test]
            fn guest_and_broker_read_resource_paths_alike(
                segs in prop::collection::vec(segment(), 2..5),
                q in prop::option::of(query()),
            ) {
                let path = segs.join("/");
                let text = match &q {
                    Some(q) => format!("{path}?{q}"),
                    None => path.clone(),
                };
                // What the guest sends: the path, and the query after the first `?`.
                let (gpath, gquery) = match text.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (text.as_str(), None),
                };
                let broker = tessera_broker::resource::ResourcePath::parse(gpath);
                prop_assert_eq!(
                    GuestPath::parse(gpath).is_ok(),
                    broker.is_ok(),
                    "{}: {:?}",
                    gpath,
                    broker
                );
                let Ok(guest) = GuestPath::parse(&text) else {
                    return Ok(());
                };
                prop_assert_eq!(broker.unwrap().to_string(), guest.path());
                let query = gquery;
                let pinned = tessera_broker::protocol::pinned_version(query);
                match guest.version() {
                    None => prop_assert_eq!(pinned, Ok(None)),
                    Some(v) => match u32::try_from(v) {
                        Ok(v) => prop_assert_eq!(pinned, Ok(Some(v))),
                        Err(_) => prop_assert!(pinned.is_err()),
                    },
                }
            }
        }
    }
}
