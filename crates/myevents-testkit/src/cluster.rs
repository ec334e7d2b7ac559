//! A RabbitMQ cluster of a test's own, formed on this machine from the installed `rabbitmq-server`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

use crate::env::free_port;

/// Where Debian's package keeps the scripts that run as the calling user (`/usr/sbin`'s wrappers
/// switch to the `rabbitmq` user, whose Erlang cookie is not the cluster's).
const SCRIPTS: &str = "/usr/lib/rabbitmq/bin";

/// One node of a [`RabbitMqCluster`].
#[derive(Debug, Clone)]
pub struct ClusterNode {
    /// Its Erlang node name, e.g. `myevents-1a2b3c4d-2@localhost`.
    pub name: String,
    /// The port it takes AMQP connections on (127.0.0.1).
    pub amqp_port: u16,
    dir: PathBuf,
}

impl ClusterNode {
    /// Its AMQP URI (guest/guest, the default virtual host).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }
}

/// A cluster of RabbitMQ nodes of the test's own: each with its own node name, AMQP and Erlang
/// distribution ports, data directory and configuration file (no plugins), sharing an Erlang
/// cookie, joined to the first node with `rabbitmqctl join_cluster`. Dropping it kills every node
/// and removes their data, also when the test fails.
pub struct RabbitMqCluster {
    dir: PathBuf,
    /// The nodes, the first one the others joined.
    pub nodes: Vec<ClusterNode>,
}

impl RabbitMqCluster {
    /// Starts `count` nodes and clusters them (about 25 s for three on two cores).
    ///
    /// # Panics
    /// When `rabbitmq-server` is not installed (the test command installs it), or a node does not
    /// start or join within 90 s.
    pub async fn start(count: usize) -> Self {
        let server = Path::new(SCRIPTS).join("rabbitmq-server");
        assert!(
            server.exists(),
            "{} is missing: the cluster test needs Debian's rabbitmq-server (the test command \
             installs it)",
            server.display()
        );
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let tag = unique.get(24..).unwrap_or(&unique).to_owned();
        let dir = std::env::temp_dir().join(format!("myevents-rabbitmq-cluster-{tag}"));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        write_private(
            &dir.join(".erlang.cookie"),
            &format!("myevents-cluster-{unique}"),
        );
        let nodes: Vec<ClusterNode> = (1..=count)
            .map(|i| ClusterNode {
                name: format!("myevents-{tag}-{i}@localhost"),
                amqp_port: free_port(),
                dir: dir.join(format!("node-{i}")),
            })
            .collect();
        let cluster = Self { dir, nodes };
        for node in &cluster.nodes {
            cluster.start_node(node).await;
        }
        for node in &cluster.nodes {
            cluster.await_running(node).await;
        }
        let first = cluster
            .nodes
            .first()
            .expect("at least one node")
            .name
            .clone();
        for node in cluster.nodes.iter().skip(1) {
            cluster.ctl_ok(&node.name, &["stop_app"]).await;
            cluster.ctl_ok(&node.name, &["join_cluster", &first]).await;
            cluster.ctl_ok(&node.name, &["start_app"]).await;
        }
        for node in &cluster.nodes {
            cluster.await_running(node).await;
        }
        cluster.await_members(count).await;
        cluster
    }

    /// Waits until the first node counts `count` running members: a quorum queue declared
    /// earlier would take fewer members, and lose its majority with one node less.
    async fn await_members(&self, count: usize) {
        let first = self.nodes.first().expect("a node").name.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let output = self
                .ctl(&first, &["-q", "cluster_status", "--formatter", "json"])
                .await;
            let running = serde_json::from_slice::<serde_json::Value>(&output.stdout)
                .ok()
                .and_then(|status| status["running_nodes"].as_array().map(Vec::len));
            if running == Some(count) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cluster did not count {count} running nodes within 90 s: {running:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// How many members quorum queue `queue` has, as node `asked` (a running one) reports it.
    pub async fn members_of(&self, queue: &str, asked: usize) -> Option<usize> {
        self.count_of(queue, "members", asked).await
    }

    /// How many of quorum queue `queue`'s members are online (their Raft member running), as node
    /// `asked` reports it: a member that is configured but not running yet does not count towards
    /// the majority that elects a new leader.
    pub async fn online_members_of(&self, queue: &str, asked: usize) -> Option<usize> {
        self.count_of(queue, "online", asked).await
    }

    /// The length of the list `column` (`members`, `online`) of `list_queues` for `queue`.
    async fn count_of(&self, queue: &str, column: &str, asked: usize) -> Option<usize> {
        let node = self.nodes.get(asked)?;
        let output = self
            .ctl(
                &node.name,
                &["-q", "list_queues", "name", column, "--formatter", "json"],
            )
            .await;
        let queues: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        queues
            .as_array()?
            .iter()
            .find(|q| q["name"] == queue)
            .and_then(|q| q[column].as_array().map(Vec::len))
    }

    /// What node `asked` (a running one) says of every queue: name, type, leader, members, online
    /// members, messages ready and unacknowledged (`rabbitmqctl list_queues`), and its partitions
    /// (`cluster_status`): what a failed test prints to tell a queue without a leader from a lost
    /// message.
    pub async fn report(&self, asked: usize) -> String {
        let Some(node) = self.nodes.get(asked) else {
            return format!("no node {asked}");
        };
        let queues = self
            .ctl(
                &node.name,
                &[
                    "-q",
                    "list_queues",
                    "name",
                    "type",
                    "leader",
                    "members",
                    "online",
                    "messages_ready",
                    "messages_unacknowledged",
                ],
            )
            .await;
        let status = self.ctl(&node.name, &["-q", "cluster_status"]).await;
        format!(
            "{} says:\n{}{}{}",
            node.name,
            String::from_utf8_lossy(&queues.stdout),
            String::from_utf8_lossy(&queues.stderr),
            String::from_utf8_lossy(&status.stdout)
        )
    }

    /// Every node's AMQP URI, comma-separated (an `AMQP_BROKER_URL`).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(ClusterNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The position in [`RabbitMqCluster::nodes`] of the node leading quorum queue `queue`, as
    /// node `asked` (a running one) reports it.
    pub async fn leader_of(&self, queue: &str, asked: usize) -> Option<usize> {
        let node = self.nodes.get(asked)?;
        let output = self
            .ctl(&node.name, &["-q", "list_queues", "name", "leader"])
            .await;
        let text = String::from_utf8_lossy(&output.stdout);
        let leader = text.lines().find_map(|line| {
            let mut columns = line.split_whitespace();
            (columns.next() == Some(queue)).then(|| columns.next().map(str::to_owned))?
        })?;
        self.nodes.iter().position(|n| n.name == leader)
    }

    /// Kills node `index` at once (SIGKILL), as a lost machine would go.
    pub fn kill(&self, index: usize) {
        if let Some(pid) = self.nodes.get(index).and_then(ClusterNode::pid) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }

    async fn start_node(&self, node: &ClusterNode) {
        std::fs::create_dir_all(&node.dir).expect("node directory");
        std::fs::write(node.dir.join("enabled_plugins"), "[].\n").expect("plugins file");
        std::fs::write(
            node.dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.local = 127.0.0.1:{}\nloopback_users = none\n",
                node.amqp_port
            ),
        )
        .expect("configuration file");
        std::fs::write(node.dir.join("env.conf"), "").expect("environment file");
        let status = self
            .command("rabbitmq-server", node)
            .env("RABBITMQ_NODE_PORT", node.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", node.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", node.dir.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                node.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", node.dir.join("pid"))
            .arg("-detached")
            .status()
            .await
            .expect("run rabbitmq-server");
        assert!(status.success(), "{} did not start: {status}", node.name);
    }

    async fn await_running(&self, node: &ClusterNode) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if self
                .ctl(&node.name, &["-q", "await_startup", "--timeout", "5"])
                .await
                .status
                .success()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not start within 90 s (logs in {})",
                node.name,
                node.dir.join("log").display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A RabbitMQ script run against this cluster: the cluster's cookie (`HOME`), no system-wide
    /// environment file (it names the machine's own node).
    fn command(&self, script: &str, node: &ClusterNode) -> Command {
        let mut command = Command::new(Path::new(SCRIPTS).join(script));
        command
            .current_dir(&self.dir)
            .env("HOME", &self.dir)
            .env("RABBITMQ_CONF_ENV_FILE", node.dir.join("env.conf"))
            .env("RABBITMQ_NODENAME", &node.name)
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .kill_on_drop(true);
        command
    }

    async fn ctl(&self, node: &str, args: &[&str]) -> Output {
        let first = self.nodes.first().expect("a node");
        self.command("rabbitmqctl", first)
            .arg("-n")
            .arg(node)
            .args(args)
            .output()
            .await
            .expect("run rabbitmqctl")
    }

    async fn ctl_ok(&self, node: &str, args: &[&str]) {
        let output = self.ctl(node, args).await;
        assert!(
            output.status.success(),
            "rabbitmqctl -n {node} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for RabbitMqCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
        // A failed test leaves the nodes' logs to read.
        if std::thread::panicking() {
            eprintln!("the cluster's logs are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Writes `text` to `path`, readable by its owner only (Erlang refuses a cookie others can read).
fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("cookie");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400)).expect("cookie mode");
}
