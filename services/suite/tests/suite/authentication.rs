//! `AUTH_MODE=jwt` against the real binaries: both services over the real RabbitMQ, verifying
//! bearer tokens against a JWK set served by a local HTTP server of the test (the identity
//! provider), with keys generated at test time. No token, a bad token, a user's token where an
//! organiser's or the owner's is needed: each answered as RFC 6750 and RFC 9457 say; a rotated key
//! is picked up without a restart; 1,000 hostile credentials get 4xx only; no token shows in any
//! log line or metric.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use myevents_testkit::{
    Answer, ServiceProcess, eventually, eventually_answers, rabbitmq_env, unique,
};
use rand::Rng;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const ISSUER: &str = "https://id.myevents.test/realms/tickets";
const AUDIENCE: &str = "myevents";

/// A signing key of the identity provider: an ES256 key pair generated now.
struct SigningKey {
    kid: String,
    key: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn generate(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate().expect("P-256 key pair");
        let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("PEM key");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            key,
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("signed")
    }
}

/// The test's identity provider: a JWK set served over HTTP, replaceable while the services run.
struct IdentityProvider {
    url: String,
    keys: Arc<RwLock<JwkSet>>,
}

impl IdentityProvider {
    async fn start(keys: &[&SigningKey]) -> Self {
        let set = Arc::new(RwLock::new(JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        }));
        let served = Arc::clone(&set);
        let app = axum::Router::new().route(
            "/certs",
            axum::routing::get(move || {
                let set = served.read().expect("lock").clone();
                async move { axum::Json(set) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/certs", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, keys: set }
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.write().expect("lock") = JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        };
    }
}

fn claims(sub: &str, roles: &[&str]) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "roles": roles,
           "iat": now, "nbf": now, "exp": now + 600})
}

struct Stack {
    events: ServiceProcess,
    bookings: ServiceProcess,
    client: Client,
}

impl Stack {
    async fn start(provider: &IdentityProvider) -> Self {
        Self::start_with(provider, &[]).await
    }

    /// [`Stack::start`] with more variables for both services.
    async fn start_with(provider: &IdentityProvider, more: &[(&'static str, &str)]) -> Self {
        let mut env = rabbitmq_env();
        env.extend(
            more.iter()
                .map(|(name, value)| (*name, (*value).to_owned())),
        );
        env.extend([
            ("STORE_KIND", "memory".to_owned()),
            ("AUTH_MODE", "jwt".to_owned()),
            ("AUTH_JWKS_URL", provider.url.clone()),
            ("AUTH_ISSUER", ISSUER.to_owned()),
            ("AUTH_AUDIENCE", AUDIENCE.to_owned()),
        ]);
        let bookings = ServiceProcess::start("booking-service", &env).await;
        let events = ServiceProcess::start("event-service", &env).await;
        for service in [&bookings, &events] {
            assert!(
                eventually_answers(&format!("{}/readyz", service.url()), StatusCode::OK, WAIT)
                    .await,
                "{}",
                service.log_text()
            );
        }
        Self {
            events,
            bookings,
            client: Client::new(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Answer::read(request.send().await.expect("request")).await
    }

    /// Creates a location and an event with 10 seats as `organiser`; returns the event's id once
    /// the booking service knows it.
    async fn event(&self, organiser: &str) -> String {
        let location = self
            .send(
                reqwest::Method::POST,
                format!("{}/locations", self.events.url()),
                Some(organiser),
                Some(json!({"Name":"West Hall","Halls":[{"name":"A","capacity":10}]})),
            )
            .await;
        assert_eq!(location.status, StatusCode::CREATED, "{}", location.body);
        let event = self
            .send(
                reqwest::Method::POST,
                format!("{}/events", self.events.url()),
                Some(organiser),
                Some(json!({"Name":"opera aida","StartDate":1_768_000_000_i64,
                    "EndDate":1_768_007_200_i64,"Hall":"A","Location":{"ID":location.body["ID"]}})),
            )
            .await;
        assert_eq!(event.status, StatusCode::CREATED, "{}", event.body);
        let id = event.body["ID"].as_str().expect("ID").to_owned();
        let url = format!("{}/events/{id}/bookings", self.bookings.url());
        assert!(
            eventually(WAIT, || async {
                self.send(reqwest::Method::GET, url.clone(), Some(organiser), None)
                    .await
                    .status
                    == StatusCode::OK
            })
            .await,
            "the booking service learnt of the event"
        );
        id
    }
}

fn assert_unauthorized(answer: &Answer, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        answer.body
    );
    answer.assert_problem(StatusCode::UNAUTHORIZED);
    let challenge = answer
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer realm=\"myevents\""),
        "{what}: {challenge}"
    );
}

#[tokio::test]
async fn tokens_are_verified_against_the_providers_keys_and_roles_and_owners_are_enforced() {
    let key = SigningKey::generate("key-1");
    let provider = IdentityProvider::start(&[&key]).await;
    let stack = Stack::start(&provider).await;
    let (events, bookings) = (stack.events.url(), stack.bookings.url());
    let organiser = key.sign(&claims("olga", &["organiser"]));
    let alice = key.sign(&claims("alice", &[]));
    let bob = key.sign(&claims("bob", &[]));
    let admin = key.sign(&claims("root", &["admin"]));
    use reqwest::Method;

    // Reading events is public; /readyz says how callers are authenticated.
    let listed = stack
        .send(Method::GET, format!("{events}/events"), None, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    for service in [&events, &bookings] {
        let ready = stack
            .send(Method::GET, format!("{service}/readyz"), None, None)
            .await;
        assert_eq!(ready.body["authentication"], "jwt");
    }

    // Without a token every mutating route (and every bookings read) is 401.
    let some_event = "6b026ab2686c822a56b0fe36";
    for (method, url) in [
        (Method::POST, format!("{events}/locations")),
        (Method::POST, format!("{events}/events")),
        (
            Method::POST,
            format!("{bookings}/events/{some_event}/bookings"),
        ),
        (Method::DELETE, format!("{bookings}/bookings/{some_event}")),
        (Method::GET, format!("{bookings}/bookings/{some_event}")),
        (
            Method::GET,
            format!("{bookings}/events/{some_event}/bookings"),
        ),
        (Method::GET, format!("{bookings}/users/alice/bookings")),
    ] {
        let what = format!("{method} {url}");
        let answer = stack
            .send(method, url, None, Some(json!({"seats": 1})))
            .await;
        assert_unauthorized(&answer, &what);
    }
    // X-User-Id is no identity in jwt mode.
    let spoofed = stack
        .client
        .post(format!("{events}/events"))
        .header("x-user-id", "olga")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_unauthorized(&Answer::read(spoofed).await, "X-User-Id alone");

    // A user may not organise; an organiser may.
    let refused = stack
        .send(
            Method::POST,
            format!("{events}/locations"),
            Some(&alice),
            Some(json!({"Name":"Hall","Halls":[{"name":"A","capacity":1}]})),
        )
        .await;
    refused.assert_problem(StatusCode::FORBIDDEN);
    let event = stack.event(&organiser).await;

    // Alice books; her booking is hers and an administrator's, nobody else's.
    let booked = stack
        .send(
            Method::POST,
            format!("{bookings}/events/{event}/bookings"),
            Some(&alice),
            Some(json!({"seats": 2})),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    assert_eq!(booked.body["UserID"], "alice");
    let id = booked.body["ID"].as_str().expect("ID").to_owned();
    let booking = format!("{bookings}/bookings/{id}");
    for (token, status) in [
        (&alice, StatusCode::OK),
        (&bob, StatusCode::NOT_FOUND),
        (&admin, StatusCode::OK),
    ] {
        let read = stack
            .send(Method::GET, booking.clone(), Some(token), None)
            .await;
        assert_eq!(read.status, status, "{}", read.body);
    }
    let bobs_cancel = stack
        .send(Method::DELETE, booking.clone(), Some(&bob), None)
        .await;
    bobs_cancel.assert_problem(StatusCode::NOT_FOUND);
    let list = format!("{bookings}/users/alice/bookings");
    stack
        .send(Method::GET, list.clone(), Some(&bob), None)
        .await
        .assert_problem(StatusCode::FORBIDDEN);
    let own = stack
        .send(Method::GET, list.clone(), Some(&alice), None)
        .await;
    assert_eq!(own.body.as_array().map(Vec::len), Some(1), "{}", own.body);
    // An event's bookings are its organiser's (and an administrator's), not another organiser's.
    let of_event = format!("{bookings}/events/{event}/bookings");
    let other_organiser = key.sign(&claims("oscar", &["organiser"]));
    for token in [&alice, &other_organiser] {
        stack
            .send(Method::GET, of_event.clone(), Some(token), None)
            .await
            .assert_problem(StatusCode::FORBIDDEN);
    }
    for token in [&organiser, &admin] {
        let seen = stack
            .send(Method::GET, of_event.clone(), Some(token), None)
            .await;
        assert_eq!(seen.body.as_array().map(Vec::len), Some(1), "{}", seen.body);
    }
    let cancelled = stack
        .send(Method::DELETE, booking.clone(), Some(&alice), None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);

    // Tokens the services must not accept.
    let other_key = SigningKey::generate("key-1");
    let now = chrono::Utc::now().timestamp();
    let mut expired = claims("alice", &[]);
    expired["exp"] = json!(now - 3600);
    let mut early = claims("alice", &[]);
    early["nbf"] = json!(now + 3600);
    let mut wrong_audience = claims("alice", &[]);
    wrong_audience["aud"] = json!("billing");
    let mut wrong_issuer = claims("alice", &[]);
    wrong_issuer["iss"] = json!("https://evil.example");
    let mut no_subject = claims("alice", &[]);
    no_subject.as_object_mut().expect("object").remove("sub");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims("alice", &["admin"]).to_string())
    );
    let hmac_with_public_key = {
        let public = serde_json::to_vec(&key.jwk).expect("jwk");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-1".to_owned());
        jsonwebtoken::encode(
            &header,
            &claims("alice", &["admin"]),
            &EncodingKey::from_secret(&public).expect("hmac key"),
        )
        .expect("signed")
    };
    let tampered = {
        let parts: Vec<&str> = alice.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(claims("alice", &["admin"]).to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    for (what, token) in [
        ("another key", other_key.sign(&claims("alice", &[]))),
        ("expired", key.sign(&expired)),
        ("not yet valid", key.sign(&early)),
        ("wrong audience", key.sign(&wrong_audience)),
        ("wrong issuer", key.sign(&wrong_issuer)),
        ("no subject", key.sign(&no_subject)),
        ("alg none", unsigned),
        ("HS256 with the public key", hmac_with_public_key),
        ("tampered payload", tampered),
    ] {
        let answer = stack
            .send(Method::GET, booking.clone(), Some(&token), None)
            .await;
        assert_unauthorized(&answer, what);
        let challenge = answer.headers["www-authenticate"].to_str().expect("ascii");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }

    // The provider rotates its keys: a token of the new key is accepted without a restart.
    let rotated = SigningKey::generate("key-2");
    provider.publish(&[&rotated]);
    let newcomer = rotated.sign(&claims("alice", &[]));
    assert!(
        eventually(WAIT, || async {
            stack
                .send(Method::GET, list.clone(), Some(&newcomer), None)
                .await
                .status
                == StatusCode::OK
        })
        .await,
        "a token of the rotated key is accepted"
    );

    // No token shows in a log line or a metric.
    let metrics = [stack.events.metrics().await, stack.bookings.metrics().await];
    let output = format!(
        "{}\n{}\n{}",
        stack.events.log_text(),
        stack.bookings.log_text(),
        metrics.join("\n")
    );
    for token in [&organiser, &alice, &bob, &admin, &newcomer] {
        let signature = token.rsplit('.').next().expect("signature");
        assert!(
            !output.contains(signature),
            "a token's signature was written out"
        );
    }
    assert!(
        !output.contains("Bearer ey"),
        "a bearer credential was written out"
    );
}

/// Algorithm names a hostile token may claim.
const ALGORITHMS: [&str; 7] = ["none", "HS256", "RS256", "ES512", "PS256", "EdDSA", "XX"];

/// A thousand hostile or malformed credentials: every answer is 400 (malformed, RFC 6750
/// `invalid_request`) or 401, none 5xx, and the service still answers a good token afterwards.
#[tokio::test]
async fn a_thousand_hostile_credentials_get_4xx_and_never_a_server_error() {
    let key = SigningKey::generate("key-1");
    let provider = IdentityProvider::start(&[&key]).await;
    // Refused credentials count against the client's address (429 past the limit, see
    // limits_and_secrets.rs); here every one of the thousand must reach authentication.
    let stack = Stack::start_with(&provider, &[("RATE_LIMIT_PER_SECOND", "off")]).await;
    let url = format!("{}/users/alice/bookings", stack.bookings.url());
    let valid = key.sign(&claims("alice", &[]));
    let mut rng = rand::rng();
    let header_b64 = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..1000 {
        let random_bytes: Vec<u8> = (0..rng.random_range(0..300))
            .map(|_| rng.random())
            .collect();
        let segment = URL_SAFE_NO_PAD.encode(&random_bytes);
        let credential = match i % 12 {
            0 => format!("Bearer {segment}"),
            1 => format!("Bearer {segment}.{segment}.{segment}"),
            2 => format!("Bearer {}", &valid[..rng.random_range(0..valid.len())]),
            3 => format!(
                "Bearer {}.{}.{segment}",
                header_b64(json!({"alg": ALGORITHMS[i % ALGORITHMS.len()], "kid": unique("k")})),
                header_b64(claims("mallory", &["admin"]))
            ),
            4 => format!(
                "Bearer {}.{}.",
                header_b64(json!({"alg": "ES256", "kid": "key-1", "crit": ["exp"]})),
                segment
            ),
            5 => format!("Basic {segment}"),
            6 => "Bearer ".to_owned() + &"a".repeat(rng.random_range(8_000..9_000)),
            7 => format!(
                "Bearer {}.{}.{}",
                header_b64(json!({"alg": "ES256", "kid": "key-1"})),
                header_b64(json!({"sub": 1, "exp": "soon", "aud": [1, 2]})),
                segment
            ),
            8 => format!("bearer  {segment} {segment}"),
            9 => format!(
                "Bearer {}",
                header_b64(json!({"alg": "ES256", "kid": "../../etc/passwd"}))
            ),
            10 => format!(
                "Bearer {}.{}.{}",
                header_b64(json!({"alg": "ES256", "kid": "x".repeat(2000)})),
                segment,
                segment
            ),
            _ => String::from_utf8_lossy(&random_bytes)
                .chars()
                .filter(|c| !c.is_control())
                .collect(),
        };
        // What is not a valid header value as text goes as raw bytes (obs-text included).
        let value = reqwest::header::HeaderValue::from_str(&credential)
            .or_else(|_| reqwest::header::HeaderValue::from_bytes(&random_bytes))
            .unwrap_or(reqwest::header::HeaderValue::from_static("Bearer"));
        let mut request = stack.client.get(&url).header("authorization", value);
        if i % 5 == 0 {
            request = request.header("authorization", "Bearer second-header");
        }
        let response = request.send().await.expect("answered");
        let status = response.status();
        *statuses.entry(status.as_u16()).or_default() += 1;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST,
            "credential #{i} ({credential:.80}) answered {status}"
        );
    }
    // Two Authorization headers (every fifth request) or a malformed bearer header are 400
    // (`invalid_request`); the rest, tokens that do not verify and other schemes, 401.
    let count = |status: u16| statuses.get(&status).copied().unwrap_or(0);
    assert!(count(400) >= 200 && count(401) >= 600, "{statuses:?}");
    let good = stack
        .client
        .get(&url)
        .bearer_auth(&valid)
        .send()
        .await
        .expect("answered");
    assert_eq!(good.status(), StatusCode::OK);
    assert!(
        !stack.bookings.logged("\"level\":\"ERROR\""),
        "{}",
        stack.bookings.log_text()
    );
}
