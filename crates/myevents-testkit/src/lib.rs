//! # myevents-testkit
//!
//! Helpers shared by the MyEvents integration tests (dev-dependency only):
//!
//! - [`amqp_url`]: the real RabbitMQ the tests use (`MYEVENTS_TEST_AMQP_URL`).
//! - [`mongo_url`]: the real MongoDB-wire server the tests use (`MYEVENTS_TEST_MONGO_URL`).
//! - [`unique`], [`unique_database`]: names no other test uses (exchanges, queues, databases).
//! - [`Recorder`]: a message handler that hands every message to the test.
//! - [`Answer`]: an HTTP answer read whole, with a check for problem bodies.
//! - [`eventually`]: polls a condition until it holds or a deadline passes — never a fixed sleep.
//! - [`ServiceProcess`]: a service binary started as a child process, its address read from its log.
//! - [`TlsRabbitMq`]: a RabbitMQ node of the test's own with a TLS listener (`amqps://`).
//! - feature `rabbitmq`: [`rabbitmq_broker`], an adapter on a fresh exchange.
//!
//! ```no_run
//! # async fn demo() {
//! let queue = myevents_testkit::unique("booking");
//! let ok = myevents_testkit::eventually(std::time::Duration::from_secs(5), || async { true }).await;
//! assert!(ok);
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use myevents_broker::{HandlingError, Message, MessageHandler};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The RabbitMQ the tests talk to: `MYEVENTS_TEST_AMQP_URL`, default
/// `amqp://guest:guest@127.0.0.1:5672/%2f`.
pub fn amqp_url() -> String {
    std::env::var("MYEVENTS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The MongoDB-wire server the tests talk to: `MYEVENTS_TEST_MONGO_URL`, default
/// `mongodb://127.0.0.1:27017`.
pub fn mongo_url() -> String {
    std::env::var("MYEVENTS_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017".to_owned())
}

/// The Kafka-protocol broker the tests use: `MYEVENTS_TEST_KAFKA_BROKERS` (comma-separated), default
/// `127.0.0.1:9092`.
pub fn kafka_brokers() -> String {
    std::env::var("MYEVENTS_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A database name no other test uses (`myevents_test_<uuid>`).
pub fn unique_database() -> String {
    format!("myevents_test_{}", uuid::Uuid::now_v7().simple())
}

/// Idle test queues are deleted by RabbitMQ after this long.
pub const QUEUE_EXPIRES: Duration = Duration::from_secs(600);

/// `prefix-test-<uuid>`: a name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-test-{}", uuid::Uuid::now_v7().simple())
}

/// An environment of service binaries (variable, value).
pub type Env = Vec<(&'static str, String)>;

/// The variables that put both service binaries on the real RabbitMQ, on `exchange` and queues no
/// other test uses (deleted by RabbitMQ once idle for [`QUEUE_EXPIRES`]).
pub fn rabbitmq_env_on(exchange: &str) -> Env {
    vec![
        ("BROKER_KIND", "rabbitmq".to_owned()),
        ("AMQP_BROKER_URL", amqp_url()),
        ("AMQP_EXCHANGE", exchange.to_owned()),
        ("BOOKING_QUEUE", unique("booking")),
        ("EVENTS_QUEUE", unique("events-service")),
        ("AMQP_QUEUE_EXPIRES", QUEUE_EXPIRES.as_secs().to_string()),
    ]
}

/// [`rabbitmq_env_on`] a fresh exchange.
pub fn rabbitmq_env() -> Env {
    rabbitmq_env_on(&unique("events"))
}

/// The variables that put both service binaries on the Kafka-protocol test broker, on a topic and
/// consumer groups no other test uses.
pub fn kafka_env() -> Env {
    vec![
        ("BROKER_KIND", "kafka".to_owned()),
        ("KAFKA_BROKER_URLS", kafka_brokers()),
        ("KAFKA_TOPIC", unique("events")),
        ("BOOKING_QUEUE", unique("booking")),
        ("EVENTS_QUEUE", unique("events-service")),
    ]
}

/// The variables that put a service binary on the MongoDB-wire test server, in a fresh database.
pub fn mongo_env() -> Env {
    vec![
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", unique_database()),
    ]
}

/// `GET url`, its body as JSON (whatever the status).
///
/// # Panics
/// When there is no answer or its body is not JSON.
pub async fn get_json(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> serde_json::Value {
    let response = client.get(url).send().await.expect("request");
    response.json().await.expect("json")
}

/// `POST url` with the JSON `body`, the answer's body as JSON (whatever the status).
///
/// # Panics
/// When there is no answer or its body is not JSON.
pub async fn post_json(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: &serde_json::Value,
) -> serde_json::Value {
    let response = client.post(url).json(body).send().await.expect("request");
    response.json().await.expect("json")
}

/// The seats of the bookings a listing (`GET url`, a JSON array of bookings) shows, summed.
///
/// # Panics
/// When the listing cannot be read or is not an array of bookings with `Seats`.
pub async fn listed_seats(client: &reqwest::Client, url: &str) -> i64 {
    get_json(client, url)
        .await
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["Seats"].as_i64().expect("Seats"))
        .sum()
}

/// A RabbitMQ adapter on its own fresh exchange, with quick retries.
#[cfg(feature = "rabbitmq")]
pub fn rabbitmq_broker() -> myevents_broker::rabbitmq::RabbitMqBroker {
    rabbitmq_broker_on(&unique("events"))
}

/// A RabbitMQ adapter on `exchange` (e.g. the one a service process under test uses), with quick
/// retries and expiring queues.
#[cfg(feature = "rabbitmq")]
pub fn rabbitmq_broker_on(exchange: &str) -> myevents_broker::rabbitmq::RabbitMqBroker {
    use myevents_broker::rabbitmq::{RabbitMqBroker, RabbitMqConfig};
    let mut config = RabbitMqConfig::new(amqp_url());
    config.exchange = exchange.to_owned();
    config.queue_expires = Some(QUEUE_EXPIRES);
    config.retry = myevents_broker::RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    RabbitMqBroker::new(config)
}

/// A handler that sends every message it gets to [`Recorder::next`].
pub struct Recorder {
    sender: mpsc::UnboundedSender<Message>,
}

/// The receiving end of a [`Recorder`].
pub struct Recorded {
    receiver: mpsc::UnboundedReceiver<Message>,
}

impl Recorder {
    /// A recorder and its receiving end.
    pub fn new() -> (Arc<Self>, Recorded) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Arc::new(Self { sender }), Recorded { receiver })
    }
}

#[async_trait]
impl MessageHandler for Recorder {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let _ = self.sender.send(message.clone());
        Ok(())
    }
}

impl Recorded {
    /// The next message, waiting at most `wait`.
    ///
    /// # Panics
    /// When nothing arrives in time.
    pub async fn next(&mut self, wait: Duration) -> Message {
        match tokio::time::timeout(wait, self.receiver.recv()).await {
            Ok(Some(message)) => message,
            _ => panic!("no message within {wait:?}"),
        }
    }
}

/// Polls `GET url` every 25 ms until it answers `status` (then `true`) or `deadline` passes (then
/// `false`); a connection refused counts as not yet.
pub async fn eventually_answers(
    url: &str,
    status: reqwest::StatusCode,
    deadline: Duration,
) -> bool {
    let client = reqwest::Client::new();
    eventually(deadline, || async {
        client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status() == status)
    })
    .await
}

/// Polls `check` every 25 ms until it returns true (then `true`) or `deadline` passes (then `false`).
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[derive(Debug)]
/// An HTTP answer, read whole: status, headers, and the body as JSON (or as a JSON string when it
/// is not JSON).
pub struct Answer {
    /// The status.
    pub status: reqwest::StatusCode,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: serde_json::Value,
}

impl Answer {
    /// Sends `request` to `router` in process (`tower::ServiceExt::oneshot`: the whole middleware
    /// stack, no socket), as from the client address 127.0.0.1:40000, and reads the answer whole.
    ///
    /// # Panics
    /// When the router fails (it never does: axum routers are infallible) or the body cannot be
    /// read.
    pub async fn from_router(
        router: &axum::Router,
        mut request: http::Request<axum::body::Body>,
    ) -> Self {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        let response = router.clone().oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Reads a response whole.
    ///
    /// # Panics
    /// When the body cannot be read.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    /// Asserts an RFC 9457 problem answer with `status`.
    ///
    /// # Panics
    /// When the answer is anything else.
    pub fn assert_problem(&self, status: reqwest::StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "problem body expected"
        );
        assert_eq!(self.body["status"], status.as_u16());
        assert!(self.body["title"].is_string() && self.body["type"].is_string());
    }
}

/// Where cargo put the workspace's binaries: the directory of the running test executable's parent
/// (`target/<profile>`).
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Starts a MongoDB-wire server of a test's own on `127.0.0.1:port` with persistent storage at
/// `storage` (a killed server started again on the same path comes back with its data): the
/// SecantusDB server command in `MYEVENTS_TEST_SECANTUSD` (the test script installs it), else
/// `secantusd-py` on the path. Killed when the handle is dropped.
///
/// # Panics
/// When the command cannot be started.
pub fn start_mongo_wire_server(port: u16, storage: &std::path::Path) -> Child {
    start_mongo_wire_server_with(port, storage, &[])
}

/// [`start_mongo_wire_server`] with more of SecantusDB's flags (e.g. `--tls-cert-file`); storage
/// `:memory:` is a fresh one, deleted when the server stops.
///
/// # Panics
/// When the command cannot be started.
pub fn start_mongo_wire_server_with(
    port: u16,
    storage: &std::path::Path,
    args: &[std::ffi::OsString],
) -> Child {
    let command =
        std::env::var("MYEVENTS_TEST_SECANTUSD").unwrap_or_else(|_| "secantusd-py".to_owned());
    Command::new(&command)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--log-level", "ERROR"])
        .arg("--storage-path")
        .arg(storage)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command} (set MYEVENTS_TEST_SECANTUSD): {e}"))
}

/// Starts a Kafka-protocol broker of a test's own on `127.0.0.1:port`, advertising `advertised`
/// (`host:port`) to clients, with more of its flags in `args` (e.g. `--schema-registry`): the Tansu
/// binary in `MYEVENTS_TEST_TANSU` (the test script installs it), else `tansu` on the path, with
/// in-memory storage. Waits up to 10 s for its port; killed when the handle is dropped.
///
/// # Panics
/// When the binary cannot be started or does not listen in time.
pub async fn start_kafka_wire_server(
    port: u16,
    advertised: &str,
    args: &[std::ffi::OsString],
) -> Child {
    let tansu = std::env::var("MYEVENTS_TEST_TANSU").unwrap_or_else(|_| "tansu".to_owned());
    // Tansu 0.6 reads the path of a `file://` schema registry URL relative to its working
    // directory (the leading slash is dropped), hence `/` as the working directory.
    let child = Command::new(&tansu)
        .current_dir("/")
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
        ])
        .args(["--advertised-listener-url", &format!("tcp://{advertised}")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {tansu} (set MYEVENTS_TEST_TANSU): {e}"));
    let listening = eventually(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(listening, "{tansu} did not listen on {port}");
    child
}

/// Waits (up to 30 s each) until `bookings` and `events` answer ready, creates an event of 5 seats on
/// `events`, books 2 of them on `bookings` as soon as it learnt of the event, and waits until
/// `events` counts them (`SeatsAvailable` 3): the two services exchanged messages `over` (named in
/// the failure messages) both ways.
///
/// # Panics
/// When a step does not happen within 30 s.
pub async fn an_event_is_booked_across(
    events: &ServiceProcess,
    bookings: &ServiceProcess,
    over: &str,
) {
    const WAIT: Duration = Duration::from_secs(30);
    for service in [bookings, events] {
        assert!(
            eventually_answers(
                &format!("{}/readyz", service.url()),
                reqwest::StatusCode::OK,
                WAIT
            )
            .await,
            "{}",
            service.log_text()
        );
    }
    let client = reqwest::Client::new();
    let event = post_json(
        &client,
        format!("{}/events", events.url()),
        &serde_json::json!({"Name":"opera aida","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
                "Location":{"Name":"West Hall","Halls":[{"name":"A","capacity":5}]}}),
    )
    .await;
    let id = event["ID"].as_str().expect("ID").to_owned();
    let url = format!("{}/events/{id}/bookings", bookings.url());
    assert!(
        eventually(WAIT, || async {
            client
                .post(&url)
                .body(r#"{"seats":2}"#)
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED)
        })
        .await,
        "the booking service learnt of the event over {over}"
    );
    let event_url = format!("{}/events/{id}", events.url());
    assert!(
        eventually(WAIT, || async {
            get_json(&client, &event_url).await["SeatsAvailable"] == 3
        })
        .await,
        "the event service counted the booking announced over {over}"
    );
}

/// A service binary running as a child process; killed when dropped.
pub struct ServiceProcess {
    child: Child,
    /// The address its HTTP server listens on.
    pub addr: SocketAddr,
    /// Every log line it wrote so far (JSON), shared with the reader task.
    pub logs: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts `binary` with `env` (plus `LOG_FORMAT=json`, `LISTEN_URL=127.0.0.1:0`,
    /// `METRICS_LISTEN_URL=127.0.0.1:0`, `AUTH_MODE=off` and `RATE_LIMIT_PER_SECOND=off` unless
    /// given) and
    /// waits up to 30 s for its `http server listening` log line.
    ///
    /// # Panics
    /// When the process cannot start or never listens.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(binary_path(binary));
        command
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("LISTEN_URL", "127.0.0.1:0")
            .env("METRICS_LISTEN_URL", "127.0.0.1:0")
            .env("AUTH_MODE", "off")
            .env("RATE_LIMIT_PER_SECOND", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start service process");
        let stdout = child.stdout.take().expect("stdout");
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (addr_tx, mut addr_rx) = mpsc::unbounded_channel();
        let sink = Arc::clone(&logs);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                    && json["message"] == "http server listening"
                    && let Some(addr) = json["addr"].as_str().and_then(|a| a.parse().ok())
                {
                    let _ = addr_tx.send(addr);
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(30), addr_rx.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{binary} did not start listening within 30 s"));
        Self { child, addr, logs }
    }

    /// Starts `binary` on its in-memory broker and store (`BROKER_KIND=memory`, `STORE_KIND=memory`),
    /// as [`ServiceProcess::start`] does.
    pub async fn start_in_memory(binary: &str) -> Self {
        Self::start(
            binary,
            &[
                ("BROKER_KIND", "memory".to_owned()),
                ("STORE_KIND", "memory".to_owned()),
            ],
        )
        .await
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address of its metrics server (from its `metrics listening` log line).
    ///
    /// # Panics
    /// When it logged none.
    pub fn metrics_url(&self) -> String {
        let logs = self.logs.lock().expect("log lock");
        let addr = logs
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|json| json["message"] == "metrics listening")
            .and_then(|json| json["addr"].as_str().map(str::to_owned))
            .expect("a metrics listening log line");
        format!("http://{addr}")
    }

    /// The text of its `GET /metrics` (Prometheus exposition format).
    ///
    /// # Panics
    /// When it logged no metrics address or the page cannot be read.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.metrics_url() + "/metrics")
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Sends SIGTERM and waits (at most `wait`) for the process to exit; returns its exit status.
    ///
    /// # Panics
    /// When the signal cannot be sent or the process does not exit in time.
    pub async fn terminate(mut self, wait: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "kill -TERM {pid} failed");
        tokio::time::timeout(wait, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the process did not exit within {wait:?} of SIGTERM"))
            .expect("wait")
    }

    /// Sends SIGKILL and waits for the process to end.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Its exit status once it has exited, `None` while it runs.
    ///
    /// # Panics
    /// When the status cannot be read.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Every log line so far, one per line (for failure messages).
    pub fn log_text(&self) -> String {
        self.logs.lock().expect("log lock").join("\n")
    }

    /// Whether some log line contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logs
            .lock()
            .expect("log lock")
            .iter()
            .any(|line| line.contains(text))
    }
}

/// A RabbitMQ node of a test's own with a TLS listener only (`amqps://`), on free ports of
/// 127.0.0.1, beside the shared node (which it leaves alone: its own node name, distribution port,
/// database and configuration under a fresh directory). Started with Debian's `rabbitmq-server`
/// (the test script installs it); shut down with `rabbitmqctl` when dropped.
pub struct TlsRabbitMq {
    node: String,
    directory: PathBuf,
    /// The TLS listener's port.
    pub port: u16,
}

/// A TCP port on 127.0.0.1 that nothing listens on now, below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 and up by default). Another process may still
/// take it before the caller binds it, but never as the source port of an outgoing connection,
/// which a port from the ephemeral range can become while its server is down or not started yet:
/// a client reconnecting to it can then be connected to itself (TCP simultaneous open), and the
/// server cannot bind it.
///
/// # Panics
/// When no port from 10000 to the start of the ephemeral range can be bound.
pub fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000, ephemeral_start.max(10_001));
    // Start at a point of the range that differs per call and per process, then walk it.
    let span = u32::from(high - low);
    let random = uuid::Uuid::now_v7().as_u128() & u128::from(u64::MAX);
    let start = u32::try_from(random % u128::from(span)).unwrap_or(0);
    (0..span)
        .map(|offset| low + u16::try_from((start + offset) % span).unwrap_or(0))
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below the ephemeral range")
}

impl TlsRabbitMq {
    /// Starts a node whose TLS listener presents `cert_pem` with `key_pem` (PEM), and waits up to
    /// 60 s for the listener.
    ///
    /// # Panics
    /// When the node cannot be started or does not listen in time.
    pub async fn start(cert_pem: &str, key_pem: &str) -> Self {
        let name = unique("tls");
        let directory = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&directory).expect("node directory");
        let (port, dist_port) = (free_port(), free_port());
        let file = |name: &str, text: &str| {
            let path = directory.join(name);
            std::fs::write(&path, text).expect("write node file");
            path
        };
        let cert = file("cert.pem", cert_pem);
        let key = file("key.pem", key_pem);
        let config = file(
            "rabbitmq.conf",
            &format!(
                "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {cert}\nssl_options.certfile = {cert}\n\
                 ssl_options.keyfile = {key}\nssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                cert = cert.display(),
                key = key.display()
            ),
        );
        let plugins = file("enabled_plugins", "[].\n");
        // Debian's wrapper runs the node as the `rabbitmq` user when started by root.
        let _ = std::process::Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&directory)
            .status();
        let node = format!("{name}@localhost");
        let started = std::process::Command::new("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", &config)
            .env("RABBITMQ_MNESIA_BASE", directory.join("mnesia"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_PID_FILE", directory.join("pid"))
            .env("RABBITMQ_LOGS", directory.join("node.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        assert!(started.is_ok(), "cannot start rabbitmq-server: {started:?}");
        let node = Self {
            node,
            directory,
            port,
        };
        let listening = eventually(Duration::from_secs(60), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(
            listening,
            "the TLS node did not listen on {port} within 60 s"
        );
        node
    }

    /// `amqps://guest:guest@localhost:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqps://guest:guest@localhost:{}/%2f", self.port)
    }
}

impl Drop for TlsRabbitMq {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["-n", &self.node, "shutdown"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}
