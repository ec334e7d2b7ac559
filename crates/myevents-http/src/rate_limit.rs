//! Limits per client: each caller gets [`RateLimit::per_second`] API requests per second with
//! bursts of up to [`RateLimit::burst`] (the generic cell rate algorithm of the `governor` crate);
//! beyond that it gets **429** with `Retry-After` (RFC 6585 section 4, RFC 9110 section 10.2.3) and a
//! problem body, while other callers go on.
//!
//! The caller is the token's subject when the request carries a verified bearer token, else the
//! client's address: the peer of the connection, or — behind [`RateLimit::trusted_proxy_hops`]
//! proxies (an Ingress controller, a load balancer) — the address those proxies appended to
//! `X-Forwarded-For`. With authentication off, `X-User-Id` is never the key (anyone can send any).
//! A request whose credentials are refused counts by the client's address too (see
//! [`limit_refused_credentials`]): bad tokens are no way around the limit.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use http::{HeaderValue, StatusCode, header};
use prometheus::IntCounter;

use crate::auth::{CredentialsRefused, TokenSubject, USER_HEADER};
use crate::problem::Problem;

/// How many requests a caller may make (`RATE_LIMIT_PER_SECOND`, `RATE_LIMIT_BURST`,
/// `TRUSTED_PROXY_HOPS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second a caller may sustain.
    pub per_second: NonZeroU32,
    /// Requests a caller may make at once after being idle (at least `per_second`).
    pub burst: NonZeroU32,
    /// Proxies in front of the service that append the client's address to `X-Forwarded-For`
    /// (0: the connection's peer is the client).
    pub trusted_proxy_hops: usize,
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CallerKey {
    Subject(String),
    Address(IpAddr),
    Unknown,
}

/// The rate limiter of one service's API: a [`RateLimit`] and the state of every caller seen
/// recently. Cheap to clone; callers idle for longer than a full burst are forgotten every minute.
#[derive(Clone)]
pub struct Limiter {
    refused: IntCounter,
    limit: RateLimit,
    callers: Arc<DefaultKeyedRateLimiter<CallerKey>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter of a service's callers to `limit`, counting its 429 answers in `refused` (the
    /// service's series of [`crate::metrics::HttpMetrics::rate_limited`]). Inside a Tokio runtime it
    /// starts the task that forgets idle callers (it ends when the last clone is dropped).
    pub fn new(limit: RateLimit, refused: IntCounter) -> Self {
        let quota =
            Quota::per_second(limit.per_second).allow_burst(limit.burst.max(limit.per_second));
        let callers = Arc::new(DefaultKeyedRateLimiter::keyed(quota));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(forget_idle_callers(Arc::downgrade(&callers)));
        }
        Self {
            refused,
            limit,
            callers,
        }
    }

    fn key(&self, request: &Request) -> CallerKey {
        if let Some(TokenSubject(subject)) = request.extensions().get::<TokenSubject>() {
            return CallerKey::Subject(subject.clone());
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let hops = self.limit.trusted_proxy_hops;
        if hops == 0 {
            return peer.map_or(CallerKey::Unknown, CallerKey::Address);
        }
        // Each trusted proxy appended the address it received the request from; the client is the
        // entry `hops` from the end. Fewer entries than that: the peer is the best guess.
        let forwarded: Vec<IpAddr> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse().ok())
            .collect();
        forwarded
            .len()
            .checked_sub(hops)
            .map(|i| forwarded[i])
            .or(peer)
            .map_or(CallerKey::Unknown, CallerKey::Address)
    }
}

async fn forget_idle_callers(callers: Weak<DefaultKeyedRateLimiter<CallerKey>>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let Some(callers) = callers.upgrade() else {
            return;
        };
        callers.retain_recent();
        callers.shrink_to_fit();
    }
}

impl Limiter {
    /// Counts a request against `key`: the 429 answer when `key` is over its limit, else `None`.
    fn refusal(&self, key: &CallerKey) -> Option<Response> {
        self.callers
            .check_key(key)
            .err()
            .map(|not_until| self.too_many(&not_until))
    }

    /// 429 with `Retry-After` (whole seconds, rounded up, at least 1) and a problem body, counted
    /// in the limiter's `refused` series.
    fn too_many(
        &self,
        not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>,
    ) -> Response {
        self.refused.inc();
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let seconds = u32::try_from(whole).unwrap_or(u32::MAX).max(1);
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!(
                "more than {} requests per second (bursts of {}) from one caller; retry after {seconds} s",
                self.limit.per_second, self.limit.burst
            ),
        );
        problem
            .headers
            .push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        problem.into_response()
    }
}

/// Axum middleware: lets the request on if its caller is within the limit of the [`Limiter`] of
/// its state, else answers 429 with `Retry-After` (whole
/// seconds, at least 1) and a problem body. Runs after [`crate::auth::AuthenticateLayer`], whose
/// verified token subject it keys by.
pub async fn limit_rate(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    match limiter.refusal(&limiter.key(&request)) {
        None => next.run(request).await,
        Some(too_many) => too_many,
    }
}

/// Axum middleware, around [`crate::auth::AuthenticateLayer`]: a request whose credentials it refuses
/// (401, or 400 for malformed ones; marked [`CredentialsRefused`]) counts against its client's
/// address, as a request without a token does in [`limit_rate`] (which a refused request never
/// reaches), so that sending bad tokens is no way around the limit. Once the address is over its
/// limit, such refusals are answered 429 with `Retry-After` instead. Requests without an
/// `Authorization` or `X-User-Id` header pass untouched.
pub async fn limit_refused_credentials(
    State(limiter): State<Limiter>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if !(headers.contains_key(header::AUTHORIZATION) || headers.contains_key(USER_HEADER)) {
        return next.run(request).await;
    }
    let key = limiter.key(&request);
    let response = next.run(request).await;
    if response.extensions().get::<CredentialsRefused>().is_none() {
        return response;
    }
    limiter.refusal(&key).unwrap_or(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(hops: usize) -> Limiter {
        Limiter::new(
            RateLimit {
                per_second: NonZeroU32::new(1).expect("1"),
                burst: NonZeroU32::new(2).expect("2"),
                trusted_proxy_hops: hops,
            },
            IntCounter::new("rate_limited", "429 answers").expect("counter"),
        )
    }

    fn request(peer: &str, forwarded: Option<&str>) -> Request {
        let mut request = Request::new(axum::body::Body::empty());
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().expect("addr")));
        if let Some(forwarded) = forwarded {
            request.headers_mut().insert(
                "x-forwarded-for",
                HeaderValue::from_str(forwarded).expect("value"),
            );
        }
        request
    }

    #[test]
    fn the_client_is_the_peer_or_the_address_the_trusted_proxies_saw() {
        let ip = |text: &str| CallerKey::Address(text.parse().expect("ip"));
        assert_eq!(
            limiter(0).key(&request("10.0.0.9:1", Some("6.6.6.6"))),
            ip("10.0.0.9")
        );
        // One proxy: it appended the client's address last; what the client wrote before is ignored.
        assert_eq!(
            limiter(1).key(&request("10.0.0.9:1", Some("6.6.6.6, 203.0.113.7"))),
            ip("203.0.113.7")
        );
        assert_eq!(
            limiter(2).key(&request(
                "10.0.0.9:1",
                Some("6.6.6.6, 203.0.113.7, 10.0.0.2")
            )),
            ip("203.0.113.7")
        );
        assert_eq!(limiter(1).key(&request("10.0.0.9:1", None)), ip("10.0.0.9"));
    }

    #[tokio::test]
    async fn a_caller_over_its_burst_waits_and_others_go_on() {
        let limiter = limiter(0);
        let first = CallerKey::Address("192.0.2.1".parse().expect("ip"));
        let second = CallerKey::Address("192.0.2.2".parse().expect("ip"));
        assert!(limiter.callers.check_key(&first).is_ok());
        assert!(limiter.callers.check_key(&first).is_ok());
        assert!(limiter.callers.check_key(&first).is_err());
        assert!(limiter.callers.check_key(&second).is_ok());
    }
}
