//! Limits per client and secrets kept out of sight, against the real binaries: a caller over its rate
//! limit gets 429 with `Retry-After` while another caller goes on, and refused tokens count against
//! the client's address; a run with an HS256 secret, a
//! broker password and bearer tokens writes none of them into a log line, an answer body or a
//! metric.

use std::process::Stdio;
use std::time::Duration;

use myevents_testkit::{Answer, ServiceProcess, binary_path, eventually, unique};
use reqwest::{Client, StatusCode};

const ISSUER: &str = "local";
const AUDIENCE: &str = "myevents";

fn jwt_env(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BROKER_KIND", "memory".to_owned()),
        ("STORE_KIND", "memory".to_owned()),
        ("AUTH_MODE", "jwt".to_owned()),
        ("AUTH_HS256_SECRET", secret.to_owned()),
        ("AUTH_ISSUER", ISSUER.to_owned()),
        ("AUTH_AUDIENCE", AUDIENCE.to_owned()),
    ]
}

/// [`jwt_env`] with a limit of 2 requests per second, bursts of 5.
fn limited_env(secret: &str) -> Vec<(&'static str, String)> {
    let mut env = jwt_env(secret);
    env.extend([
        ("RATE_LIMIT_PER_SECOND", "2".to_owned()),
        ("RATE_LIMIT_BURST", "5".to_owned()),
    ]);
    env
}

/// A token minted by the binary's own `token` subcommand.
async fn mint(env: &[(&str, String)], user: &str) -> String {
    let output = tokio::process::Command::new(binary_path("event-service"))
        .args([
            "token",
            "--sub",
            user,
            "--roles",
            "organiser",
            "--ttl",
            "600",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("run token");
    assert!(output.status.success(), "token failed");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn a_caller_over_its_limit_gets_429_with_retry_after_and_others_go_on() {
    let env = limited_env(&unique("secret-of-at-least-32-bytes-"));
    let service = ServiceProcess::start("event-service", &env).await;
    let alice = mint(&env, "alice").await;
    let bob = mint(&env, "bob").await;
    let client = Client::new();
    let url = format!("{}/events", service.url());
    let get = |token: Option<&str>| {
        let mut request = client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { Answer::read(request.send().await.expect("request")).await }
    };
    let mut limited = None;
    for _ in 0..20 {
        let answer = get(Some(&alice)).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, StatusCode::OK);
    }
    let limited = limited.expect("alice is limited within 20 requests");
    limited.assert_problem(StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=5).contains(&retry), "Retry-After: {retry}");
    // Bob counts apart from alice; requests without a token count by address, apart from both.
    assert_eq!(get(Some(&bob)).await.status, StatusCode::OK);
    assert_eq!(get(None).await.status, StatusCode::OK);
    // Probes are not limited.
    for _ in 0..20 {
        let ready = client
            .get(format!("{}/readyz", service.url()))
            .send()
            .await
            .expect("request");
        assert_eq!(ready.status(), StatusCode::OK);
    }
    // Alice may go on once her wait is over.
    assert!(
        eventually(Duration::from_secs(10), || async {
            get(Some(&alice)).await.status == StatusCode::OK
        })
        .await
    );
    let metrics = service.metrics().await;
    assert!(
        metrics.contains("myevents_http_rate_limited_total{service=\"event-service\"}"),
        "no rate-limited series"
    );
}

#[tokio::test]
async fn refused_tokens_count_against_the_address_and_get_429_past_the_limit() {
    let env = limited_env(&unique("secret-of-at-least-32-bytes-"));
    let service = ServiceProcess::start("event-service", &env).await;
    let alice = mint(&env, "alice").await;
    // Signed with another secret: it does not verify.
    let forged = mint(&jwt_env(&unique("another-secret-of-32-bytes-")), "mallory").await;
    let client = Client::new();
    let url = format!("{}/events", service.url());
    let get = |authorization: &str| {
        let request = client.get(&url).header("authorization", authorization);
        async move { Answer::read(request.send().await.expect("request")).await }
    };
    let mut refused = 0;
    let mut limited = None;
    for i in 0..20 {
        // Forged tokens and malformed credentials alike.
        let credential = if i % 2 == 0 {
            format!("Bearer {forged}")
        } else {
            "Bearer not a token".to_owned()
        };
        let answer = get(&credential).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
        assert!(
            answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::BAD_REQUEST,
            "{}",
            answer.status
        );
        refused += 1;
    }
    let limited = limited.expect("refused credentials are limited within 20 requests");
    assert!(refused >= 5, "the burst of 5 was refused first: {refused}");
    limited.assert_problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));
    // The address is spent: an anonymous request from it waits too, a verified caller does not.
    assert_eq!(
        get("Bearer still-not-a-token").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let anonymous = Answer::read(client.get(&url).send().await.expect("request")).await;
    assert_eq!(anonymous.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get(&format!("Bearer {alice}")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn no_secret_shows_in_a_log_line_an_answer_or_a_metric() {
    let secret = unique("secret-of-at-least-32-bytes-");
    let password = unique("broker-password-");
    let mut env = jwt_env(&secret);
    // A broker that refuses the password: the failures are logged and shown on /readyz.
    env.retain(|(k, _)| *k != "BROKER_KIND");
    env.extend([
        ("BROKER_KIND", "rabbitmq".to_owned()),
        (
            "AMQP_BROKER_URL",
            format!("amqp://guest:{password}@127.0.0.1:5672/%2f"),
        ),
        ("RUST_LOG", "debug".to_owned()),
    ]);
    let service = ServiceProcess::start("booking-service", &env).await;
    let token = mint(&env, "alice").await;
    let client = Client::new();
    let mut bodies = Vec::new();
    for (path, credential) in [
        ("/readyz", None),
        ("/users/alice/bookings", Some(format!("Bearer {token}"))),
        ("/users/alice/bookings", Some(format!("Bearer {token}x"))),
        ("/users/alice/bookings", Some(format!("Bearer {secret}"))),
        ("/users/alice/bookings", Some(format!("Basic {password}"))),
        (
            "/events/6b026ab2686c822a56b0fe36/bookings",
            Some(format!("Bearer {token}")),
        ),
    ] {
        let mut request = client.get(format!("{}{path}", service.url()));
        if let Some(credential) = credential {
            request = request.header("authorization", credential);
        }
        let response = request.send().await.expect("request");
        bodies.push(format!(
            "{:?} {}",
            response.headers().clone(),
            response.text().await.expect("body")
        ));
    }
    // The consumer fails against the broker, and says so (the broker refuses the login).
    assert!(
        eventually(Duration::from_secs(20), || async {
            service.logged("ACCESS_REFUSED")
        })
        .await,
        "the broker failures were logged"
    );
    let metrics = service.metrics().await;
    let output = format!("{}\n{}\n{metrics}", service.log_text(), bodies.join("\n"));
    let signature = token.rsplit('.').next().expect("signature");
    for (what, secret) in [
        ("the HS256 secret", secret.as_str()),
        ("the broker password", password.as_str()),
        ("a token's signature", signature),
    ] {
        assert!(!output.contains(secret), "{what} was written out");
    }
}

/// Credentials from files (`<NAME>_FILE`, as a mounted Secret gives them): the secret and the
/// MongoDB URL are read from files, and neither shows in the process's environment.
#[tokio::test]
async fn credentials_are_read_from_the_files_their_file_variables_name() {
    let secret = format!("{}-{}", unique("file-secret"), unique("long-enough"));
    let directory = std::env::temp_dir().join(unique("credentials"));
    std::fs::create_dir_all(&directory).expect("directory");
    let secret_file = directory.join("AUTH_HS256_SECRET");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("secret file");
    let mongo_file = directory.join("MONGO_URL");
    std::fs::write(&mongo_file, myevents_testkit::mongo_url()).expect("mongo file");
    let env = vec![
        ("BROKER_KIND", "memory".to_owned()),
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_DATABASE", myevents_testkit::unique_database()),
        ("MONGO_URL_FILE", mongo_file.to_string_lossy().into_owned()),
        ("AUTH_MODE", "jwt".to_owned()),
        (
            "AUTH_HS256_SECRET_FILE",
            secret_file.to_string_lossy().into_owned(),
        ),
        ("AUTH_ISSUER", ISSUER.to_owned()),
        ("AUTH_AUDIENCE", AUDIENCE.to_owned()),
    ];
    let events = ServiceProcess::start("event-service", &env).await;
    assert!(
        myevents_testkit::eventually_answers(
            &format!("{}/readyz", events.url()),
            StatusCode::OK,
            Duration::from_secs(30)
        )
        .await,
        "not ready with MONGO_URL from its file:\n{}",
        events.log_text()
    );
    // A token signed with the secret from the file (minted with the secret itself) is accepted.
    let token = mint(&jwt_env(&secret), "olga").await;
    let created = Answer::read(
        Client::new()
            .post(format!("{}/locations", events.url()))
            .bearer_auth(&token)
            .body(r#"{"Name":"Hall","Halls":[{"name":"A","capacity":3}]}"#)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let _ = std::fs::remove_dir_all(directory);
}
