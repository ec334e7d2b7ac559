//! A process that dies holding idempotency keys holds them only for its short lease: after a SIGKILL
//! with keyed requests in flight, retries with the same keys get their final answers within 10 s of
//! the restart, and each key keeps one answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use myevents_testkit::{ServiceProcess, mongo_url, unique_database};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_a_sigkill_get_their_final_answers_within_ten_seconds() {
    let env = [
        ("BROKER_KIND", "memory".to_owned()),
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", unique_database()),
    ];
    let service = ServiceProcess::start("event-service", &env).await;
    let client = reqwest::Client::new();
    let post = |base: String, key: String| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/locations"))
                .header("idempotency-key", key)
                .json(&json!({"Name": "Hall", "Halls": [{"name": "A", "capacity": 10}]}))
                .send()
                .await
        }
    };
    let keys: Vec<String> = (0..50).map(|i| format!("crash-{i}")).collect();
    let in_flight: Vec<_> = keys
        .iter()
        .map(|key| tokio::spawn(post(service.url(), key.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    service.kill().await;
    let mut unanswered = 0;
    for request in in_flight {
        if request.await.expect("task").is_err() {
            unanswered += 1;
        }
    }
    assert!(
        unanswered > 0,
        "the SIGKILL came after every answer; nothing was in flight"
    );

    let restarted = ServiceProcess::start("event-service", &env).await;
    let since_restart = Instant::now();
    let mut answers = HashMap::new();
    for key in &keys {
        let answer = loop {
            let response = post(restarted.url(), key.clone()).await.expect("answer");
            if response.status() != StatusCode::CONFLICT {
                break response;
            }
            assert!(
                since_restart.elapsed() < Duration::from_secs(10),
                "{key} still held 10 s after the restart"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(answer.status(), StatusCode::CREATED, "{key}");
        let body: Value = answer.json().await.expect("json");
        answers.insert(key.clone(), body["ID"].clone());
    }
    // Each key keeps the one answer it got.
    for (key, id) in &answers {
        let again: Value = post(restarted.url(), key.clone())
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert_eq!(&again["ID"], id, "{key}");
    }
    restarted.kill().await;
}
