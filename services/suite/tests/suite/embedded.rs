//! The embedded mode: the `myevents` binary (what `cargo run --release` starts) runs both services in
//! one process; a user creates a location and an event and books until sold out.

use std::process::Stdio;
use std::time::Duration;

use myevents_testkit::post_json;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(20);

/// Reads the two `http://…` addresses the binary prints at start-up.
async fn start_suite() -> (tokio::process::Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_myevents"))
        .env("EVENT_LISTEN_URL", "127.0.0.1:0")
        .env("BOOKING_LISTEN_URL", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start myevents");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut urls = Vec::new();
    let read = async {
        while urls.len() < 2 {
            let line = lines.next_line().await.expect("read").expect("a line");
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                urls.push(url.to_owned());
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("addresses printed");
    // Keep reading what it prints (logs), as a terminal would.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let booking = urls.pop().expect("booking url");
    let event = urls.pop().expect("event url");
    (child, event, booking)
}

#[tokio::test]
async fn the_embedded_suite_books_until_sold_out_without_any_server() {
    let (mut child, events, bookings) = start_suite().await;
    let client = Client::new();
    let location: Value = post_json(
        &client,
        format!("{events}/locations"),
        &json!({"Name":"West Hall","Halls":[{"name":"A","capacity":3}]}),
    )
    .await;
    let event = client
        .post(format!("{events}/events"))
        .json(&json!({"Name":"opera aida","StartDate":1,"EndDate":2,"Location":{"ID":location["ID"]}}))
        .send()
        .await
        .expect("request");
    assert_eq!(event.status(), StatusCode::CREATED);
    let event: Value = event.json().await.expect("json");
    let id = event["ID"].as_str().expect("ID");
    let book = || async {
        client
            .post(format!("{bookings}/events/{id}/bookings"))
            .body(r#"{"seats":1}"#)
            .send()
            .await
            .expect("request")
            .status()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match book().await {
            StatusCode::CREATED => break,
            StatusCode::NOT_FOUND if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("first booking answered {other}"),
        }
    }
    assert_eq!(book().await, StatusCode::CREATED);
    assert_eq!(book().await, StatusCode::CREATED);
    assert_eq!(book().await, StatusCode::CONFLICT);
    child.kill().await.expect("kill");
}

#[tokio::test]
async fn a_port_in_use_ends_the_embedded_suite_with_status_1_and_the_error_alone() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = tokio::time::timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_myevents"))
            .env("EVENT_LISTEN_URL", &addr)
            .env("BOOKING_LISTEN_URL", "127.0.0.1:0")
            .env("METRICS_LISTEN_URL", "off")
            .env("RUST_LOG", "warn")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("run myevents");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "error: starting the event service (EVENT_LISTEN_URL, METRICS_LISTEN_URL): cannot \
             listen on {addr} (LISTEN_URL): Address already in use (os error 98)"
        )
    );
}

/// Runs the embedded suite with its standard output on a pseudo-terminal when `terminal` (through
/// util-linux's `script`, as a shell in a terminal window would start it), else on a pipe, with
/// `LOG_FORMAT` unset; returns the first log line after its banner.
async fn first_log_line(terminal: bool) -> String {
    let binary = env!("CARGO_BIN_EXE_myevents");
    let mut command = if terminal {
        let mut script = Command::new("script");
        script.args([
            "--quiet",
            "--flush",
            "--return",
            "--command",
            binary,
            "/dev/null",
        ]);
        script
    } else {
        Command::new(binary)
    };
    let mut child = command
        .env("EVENT_LISTEN_URL", "127.0.0.1:0")
        .env("BOOKING_LISTEN_URL", "127.0.0.1:0")
        .env("METRICS_LISTEN_URL", "off")
        .env_remove("LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start myevents");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(WAIT, async {
        loop {
            let line = lines.next_line().await.expect("read").expect("a line");
            if line.contains("http server listening") {
                return line;
            }
        }
    })
    .await
    .expect("a log line");
    let _ = child.kill().await;
    line
}

#[tokio::test]
async fn logs_are_text_on_a_terminal_and_json_otherwise() {
    let on_terminal = first_log_line(true).await;
    assert!(
        !on_terminal.trim_start().starts_with('{') && on_terminal.contains("INFO"),
        "on a terminal: {on_terminal:?}"
    );
    let piped = first_log_line(false).await;
    let json: Value = serde_json::from_str(&piped).expect("a JSON line when piped");
    assert_eq!(json["level"], "INFO", "{piped}");
}
