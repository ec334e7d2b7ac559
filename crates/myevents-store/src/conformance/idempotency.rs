//! Checks of [`crate::IdempotencyRepository`] adapters.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::{Begin, IdempotencyRepository, IdempotencyScope, IdempotentRequest, StoredResponse};

const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(24 * 3600);

fn scope(user: &str) -> IdempotencyScope {
    IdempotencyScope {
        user: user.to_owned(),
        key: format!("key-{}", myevents_domain::id::ObjectId::generate()),
    }
}

/// Now, to the millisecond (what every store keeps).
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("a valid time")
}

fn request(fingerprint: &str, resource_id: &str, now: DateTime<Utc>) -> IdempotentRequest {
    IdempotentRequest {
        fingerprint: fingerprint.to_owned(),
        resource_id: resource_id.to_owned(),
        now,
        lease: LEASE,
        ttl: TTL,
    }
}

fn response(body: &str) -> StoredResponse {
    StoredResponse {
        status: 201,
        location: Some("/bookings/1".to_owned()),
        content_type: Some("application/json".to_owned()),
        body: body.as_bytes().to_vec(),
    }
}

async fn start(
    repo: &dyn IdempotencyRepository,
    scope: &IdempotencyScope,
    request: &IdempotentRequest,
) -> (String, String, bool) {
    match repo.begin(scope, request).await.expect("begin") {
        Begin::Started {
            token,
            resource_id,
            resumed,
        } => (token, resource_id, resumed),
        other => panic!("expected Started, got {other:?}"),
    }
}

/// The first use starts the key with the request's resource id; after completion the same
/// request gets the stored response.
pub async fn a_completed_key_replays_its_response(repo: Arc<dyn IdempotencyRepository>) {
    let scope = scope("alice");
    let t0 = now();
    let (token, resource, resumed) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
    assert_eq!((resource.as_str(), resumed), ("r1", false));
    assert!(
        repo.complete(&scope, &token, &response("{\"id\":1}"))
            .await
            .expect("complete")
    );
    let again = repo
        .begin(&scope, &request("f", "r2", t0 + TimeDelta::seconds(5)))
        .await;
    assert_eq!(
        again.expect("begin"),
        Begin::Completed(response("{\"id\":1}"))
    );
    // Completing twice changes nothing.
    assert!(
        !repo
            .complete(&scope, &token, &response("other"))
            .await
            .expect("complete")
    );
    let after = repo
        .begin(&scope, &request("f", "r3", t0))
        .await
        .expect("begin");
    assert_eq!(after, Begin::Completed(response("{\"id\":1}")));
}

/// A key reused with a different request is refused, in flight or completed.
pub async fn a_key_reused_for_another_request_is_a_mismatch(repo: Arc<dyn IdempotencyRepository>) {
    let scope = scope("alice");
    let t0 = now();
    let (token, _, _) = start(repo.as_ref(), &scope, &request("f1", "r1", t0)).await;
    let other = repo
        .begin(&scope, &request("f2", "r2", t0))
        .await
        .expect("begin");
    assert_eq!(other, Begin::Mismatch);
    assert!(
        repo.complete(&scope, &token, &response("x"))
            .await
            .expect("complete")
    );
    let other = repo
        .begin(&scope, &request("f2", "r2", t0))
        .await
        .expect("begin");
    assert_eq!(other, Begin::Mismatch);
}

/// While a request holds the key others are told it is in flight; once its lease ends the next
/// one resumes it with the first resource id, and the first request's token no longer counts.
pub async fn a_key_in_flight_is_refused_then_resumed_after_its_lease(
    repo: Arc<dyn IdempotencyRepository>,
) {
    let scope = scope("alice");
    let t0 = now();
    let (first, _, _) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
    let during = repo
        .begin(&scope, &request("f", "r2", t0 + TimeDelta::seconds(29)))
        .await
        .expect("begin");
    assert_eq!(during, Begin::InFlight);
    let later = request("f", "r3", t0 + TimeDelta::seconds(31));
    let (second, resource, resumed) = start(repo.as_ref(), &scope, &later).await;
    assert_eq!((resource.as_str(), resumed), ("r1", true));
    assert!(
        !repo
            .complete(&scope, &first, &response("late"))
            .await
            .expect("complete")
    );
    assert!(
        repo.complete(&scope, &second, &response("ok"))
            .await
            .expect("complete")
    );
    let replay = repo.begin(&scope, &later).await.expect("begin");
    assert_eq!(replay, Begin::Completed(response("ok")));
}

/// A released key is resumed at once by the next request, with the same resource id.
pub async fn a_released_key_is_resumed_at_once(repo: Arc<dyn IdempotencyRepository>) {
    let scope = scope("alice");
    let t0 = now();
    let (token, _, _) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
    repo.release(&scope, &token).await.expect("release");
    let (_, resource, resumed) = start(repo.as_ref(), &scope, &request("f", "r2", t0)).await;
    assert_eq!((resource.as_str(), resumed), ("r1", true));
}

/// A renewed lease holds the key past its first end; only the holder can renew, and only until
/// the key has its response.
pub async fn a_renewed_lease_holds_the_key_until_it_lapses(repo: Arc<dyn IdempotencyRepository>) {
    let scope = scope("alice");
    let t0 = now();
    let (token, _, _) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
    let renewed_until = t0 + TimeDelta::seconds(60);
    assert!(
        repo.renew(&scope, &token, renewed_until)
            .await
            .expect("renew")
    );
    assert!(
        !repo
            .renew(
                &scope,
                "not-the-token",
                renewed_until + TimeDelta::seconds(60)
            )
            .await
            .expect("renew")
    );
    let during = repo
        .begin(&scope, &request("f", "r2", t0 + TimeDelta::seconds(45)))
        .await
        .expect("begin");
    assert_eq!(during, Begin::InFlight);
    let after = request("f", "r3", t0 + TimeDelta::seconds(61));
    let (second, resource, resumed) = start(repo.as_ref(), &scope, &after).await;
    assert_eq!((resource.as_str(), resumed), ("r1", true));
    assert!(
        !repo
            .renew(&scope, &token, renewed_until)
            .await
            .expect("renew"),
        "the lease was lost"
    );
    assert!(
        repo.complete(&scope, &second, &response("ok"))
            .await
            .expect("complete")
    );
    assert!(
        !repo
            .renew(&scope, &second, renewed_until)
            .await
            .expect("renew"),
        "completed"
    );
}

/// The same key of two users are two keys.
pub async fn keys_are_scoped_per_user(repo: Arc<dyn IdempotencyRepository>) {
    let alice = scope("alice");
    let bob = IdempotencyScope {
        user: "bob".to_owned(),
        key: alice.key.clone(),
    };
    let t0 = now();
    let (token, _, _) = start(repo.as_ref(), &alice, &request("f", "r1", t0)).await;
    assert!(
        repo.complete(&alice, &token, &response("alice"))
            .await
            .expect("complete")
    );
    let (_, resource, resumed) = start(repo.as_ref(), &bob, &request("g", "r2", t0)).await;
    assert_eq!((resource.as_str(), resumed), ("r2", false));
}

/// After its time to live a key counts as never used.
pub async fn an_expired_key_starts_afresh(repo: Arc<dyn IdempotencyRepository>) {
    let scope = scope("alice");
    let t0 = now();
    let (token, _, _) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
    assert!(
        repo.complete(&scope, &token, &response("old"))
            .await
            .expect("complete")
    );
    let later = t0 + TimeDelta::from_std(TTL).expect("ttl") + TimeDelta::seconds(1);
    let (_, resource, resumed) = start(repo.as_ref(), &scope, &request("g", "r2", later)).await;
    assert_eq!((resource.as_str(), resumed), ("r2", false));
}

/// Of 20 concurrent requests with one key exactly one starts; the others see it in flight.
pub async fn concurrent_requests_with_one_key_start_once(repo: Arc<dyn IdempotencyRepository>) {
    let scope = scope("alice");
    let t0 = now();
    let attempts = (0..20).map(|i| {
        let repo = Arc::clone(&repo);
        let scope = scope.clone();
        tokio::spawn(async move {
            repo.begin(&scope, &request("f", &format!("r{i}"), t0))
                .await
        })
    });
    let mut started = 0;
    for attempt in futures_util::future::join_all(attempts).await {
        match attempt.expect("task").expect("begin") {
            Begin::Started { .. } => started += 1,
            Begin::InFlight => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(started, 1);
}

/// Expands to one test per [`idempotency`](crate::conformance::idempotency) check. The argument is
/// an async expression evaluating to a fresh `Arc<dyn IdempotencyRepository>`.
#[macro_export]
macro_rules! idempotency_repository_conformance {
    ($make:expr) => {
        $crate::__idempotency_tests!($make;
            a_completed_key_replays_its_response, a_key_reused_for_another_request_is_a_mismatch,
            a_key_in_flight_is_refused_then_resumed_after_its_lease,
            a_released_key_is_resumed_at_once, a_renewed_lease_holds_the_key_until_it_lapses,
            keys_are_scoped_per_user,
            an_expired_key_starts_afresh, concurrent_requests_with_one_key_start_once);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __idempotency_tests {
    ($make:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let repo = $make.await;
                $crate::conformance::idempotency::$check(repo).await;
            }
        )+
    };
}
