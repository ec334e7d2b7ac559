//! Service binaries under test: where cargo put them, and [`ServiceProcess`], one running as a child
//! process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

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

    /// Waits up to `deadline` for a log line that contains one of `texts`.
    ///
    /// # Panics
    /// When none comes, with the log so far.
    pub async fn await_logged(&self, deadline: Duration, texts: &[&str]) {
        let seen = crate::eventually(deadline, || async {
            texts.iter().any(|text| self.logged(text))
        })
        .await;
        assert!(
            seen,
            "no log line with any of {texts:?}:\n{}",
            self.log_text()
        );
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
