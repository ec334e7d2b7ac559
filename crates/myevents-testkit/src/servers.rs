//! Servers of a test's own: a MongoDB-wire server (SecantusDB), a Kafka-protocol broker (Tansu) and
//! a RabbitMQ node with a TLS listener ([`TlsRabbitMq`]).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::{eventually, free_port, unique};

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
