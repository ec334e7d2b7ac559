//! No start order loses a message. Compose and Kubernetes start the two services in any order, and
//! RabbitMQ drops a message that no queue is bound for: every service therefore declares the whole
//! message topology before it publishes, and over Kafka a consumer group that never ran starts at the
//! earliest offset. Each test starts the two service binaries in one order, on fresh queues or topic
//! and groups, and ends with an event bookable and its booking counted by the event service:
//! - the event service first, the event created (and its `eventCreated` published) before the booking
//!   service ever ran;
//! - the booking service first;
//! - over RabbitMQ, the broker stopped and started again between the event service's two events
//!   (ignored in the normal run: it stops the shared broker; `scripts/test.sh` runs it alone);
//! - over Kafka, every connection to a broker of the test's own dropped and refused for a while between
//!   two events (a restart of a broker that keeps its log, as clients see it); and the broker process
//!   itself restarted, which is ignored: the in-memory test broker comes back empty and librdkafka
//!   crashes on its answer (see [`kafka_restarted_between_two_events`]).

use std::process::Command;
use std::time::Duration;

use myevents_testkit::{
    Answer, Env, ServiceProcess, eventually, eventually_answers, free_port, get_json, kafka_env,
    mongo_env, rabbitmq_env, start_kafka_wire_server,
};
use reqwest::{Client, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Which service starts first.
#[derive(Clone, Copy, Debug)]
enum First {
    EventService,
    BookingService,
}

/// How many `eventCreated` messages `events` has published (confirmed by the broker).
async fn created_published(events: &ServiceProcess) -> u64 {
    events
        .metrics()
        .await
        .lines()
        .filter(|line| {
            line.starts_with("myevents_messages_published_total{")
                && line.contains("event_name=\"eventCreated\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Creates an event of 4 seats on `events`, waits until its `eventCreated` is published, and returns
/// its id.
async fn create_event(client: &Client, events: &ServiceProcess, name: &str) -> String {
    let before = created_published(events).await;
    let created = Answer::read(
        client
            .post(format!("{}/events", events.url()))
            .json(
                &json!({"Name": name, "StartDate": 1_768_000_000_i64, "EndDate": 1_768_007_200_i64,
                "Location": {"Name": "West Hall", "Halls": [{"name": "A", "capacity": 4}]}}),
            )
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let published = eventually(WAIT, || async { created_published(events).await > before }).await;
    assert!(
        published,
        "eventCreated not published:\n{}",
        events.log_text()
    );
    created.body["ID"].as_str().expect("ID").to_owned()
}

/// Books 3 seats of `event` on `bookings` (retrying while the booking service has not learnt of the
/// event yet), then waits until `events` lists 1 seat available.
async fn book_and_count(
    client: &Client,
    events: &ServiceProcess,
    bookings: &ServiceProcess,
    event: &str,
) {
    let url = format!("{}/events/{event}/bookings", bookings.url());
    let booked = eventually(WAIT, || async {
        client
            .post(&url)
            .header("x-user-id", "alice")
            .body(r#"{"seats":3}"#)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::CREATED)
    })
    .await;
    assert!(
        booked,
        "event {event} never became bookable:\n{}",
        bookings.log_text()
    );
    let counted = eventually(WAIT, || async {
        get_json(client, format!("{}/events/{event}", events.url())).await["SeatsAvailable"] == 1
    })
    .await;
    assert!(
        counted,
        "the booking of {event} was not counted:\n{}",
        events.log_text()
    );
}

async fn start(binary: &str, env: &Env) -> ServiceProcess {
    let mut env = env.clone();
    env.extend(mongo_env());
    let service = ServiceProcess::start(binary, &env).await;
    assert!(
        eventually_answers(&format!("{}/readyz", service.url()), StatusCode::OK, WAIT).await,
        "{binary} not ready:\n{}",
        service.log_text()
    );
    service
}

/// Starts the services in the order `first` says, the second only once the first has created
/// (event service first) or is ready (booking service first), then books.
async fn book_after_starting(first: First, env: Env) {
    let client = Client::new();
    match first {
        First::EventService => {
            let events = start("event-service", &env).await;
            let event = create_event(&client, &events, "created before any booking service").await;
            let bookings = start("booking-service", &env).await;
            book_and_count(&client, &events, &bookings, &event).await;
        }
        First::BookingService => {
            let bookings = start("booking-service", &env).await;
            let events = start("event-service", &env).await;
            let event = create_event(&client, &events, "created after both started").await;
            book_and_count(&client, &events, &bookings, &event).await;
        }
    }
}

#[tokio::test]
async fn rabbitmq_event_service_first() {
    book_after_starting(First::EventService, rabbitmq_env()).await;
}

#[tokio::test]
async fn rabbitmq_booking_service_first() {
    book_after_starting(First::BookingService, rabbitmq_env()).await;
}

#[tokio::test]
async fn kafka_event_service_first() {
    book_after_starting(First::EventService, kafka_env()).await;
}

#[tokio::test]
async fn kafka_booking_service_first() {
    book_after_starting(First::BookingService, kafka_env()).await;
}

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("rabbitmqctl {args:?}: {e}"));
    assert!(status.success(), "rabbitmqctl {args:?} failed: {status}");
}

/// Starts the RabbitMQ application again when dropped, even when the test fails half-way.
struct Stopped;

impl Drop for Stopped {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup", "--timeout", "60"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops the shared RabbitMQ; scripts/test.sh runs it alone"]
async fn rabbitmq_restarted_between_the_event_services_events() {
    let env = rabbitmq_env();
    let client = Client::new();
    let events = start("event-service", &env).await;
    let before = create_event(&client, &events, "created before the broker restart").await;
    {
        rabbitmqctl(&["stop_app"]);
        let _restart = Stopped;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let after = create_event(&client, &events, "created after the broker restart").await;
    let bookings = start("booking-service", &env).await;
    book_and_count(&client, &events, &bookings, &before).await;
    book_and_count(&client, &events, &bookings, &after).await;
}

/// Over Kafka, on a broker of the test's own, restarted between two events: both services run, an
/// event is booked, the broker is killed and started again, and a second event is created and booked.
/// The Kafka-protocol test broker keeps everything in memory (this build has neither its `postgres`
/// nor its `s3` storage), so it comes back without topics or committed offsets, where a real Kafka
/// keeps both.
///
/// Ignored: against this broker it fails. Within seconds of the restart a service process dies of
/// SIGSEGV inside librdkafka (thread `rdk:main`: `rd_kafka_metadata_update_op` →
/// `rd_kafka_metadata_cache_find` → `strcmp`, found with gdb), so the second event is never booked.
/// Compose and Kubernetes restart the process; whether a real Kafka's answers after a restart can
/// trigger the same crash is not known. Run it with `--run-ignored only` to see the crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "librdkafka crashes (SIGSEGV in its metadata cache) when the in-memory test broker comes back empty"]
async fn kafka_restarted_between_two_events() {
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let mut env = kafka_env();
    env.retain(|(key, _)| *key != "KAFKA_BROKER_URLS");
    env.push(("KAFKA_BROKER_URLS", brokers.clone()));
    let client = Client::new();
    let broker = start_kafka_wire_server(port, &brokers, &[]).await;
    let mut events = start("event-service", &env).await;
    let mut bookings = start("booking-service", &env).await;
    let before = create_event(&client, &events, "created before the broker restart").await;
    book_and_count(&client, &events, &bookings, &before).await;
    drop(broker);
    let _broker = start_kafka_wire_server(port, &brokers, &[]).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    for service in [&mut events, &mut bookings] {
        assert_eq!(
            service.exited(),
            None,
            "a service process died after the broker restart"
        );
    }
    let after = create_event(&client, &events, "created after the broker restart").await;
    book_and_count(&client, &events, &bookings, &after).await;
}

/// A TCP proxy of the test's own in front of a broker: what clients see of a broker restart that
/// keeps its log (every connection dropped, connections refused for a while, then accepted again),
/// with the broker's state intact behind it.
struct RestartingProxy {
    port: u16,
    upstream: u16,
    generation: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl RestartingProxy {
    /// Proxies 127.0.0.1:<a free port> to 127.0.0.1:`upstream`.
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (generation, _) = tokio::sync::watch::channel(0_u64);
        let task = tokio::spawn(Self::serve(listener, upstream, generation.clone()));
        Self {
            port,
            upstream,
            generation,
            task,
        }
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        upstream: u16,
        generation: tokio::sync::watch::Sender<u64>,
    ) {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let mut restarted = generation.subscribe();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = restarted.changed() => {}
                }
            });
        }
    }

    /// Drops every connection and refuses new ones for `down`, as a restarting broker does.
    async fn restart(&mut self, down: Duration) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
        tokio::time::sleep(down).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind again");
        self.task = tokio::spawn(Self::serve(
            listener,
            self.upstream,
            self.generation.clone(),
        ));
    }
}

/// Over Kafka, a restart of a broker that keeps its log, as its clients see it: both services run on a
/// broker of the test's own behind [`RestartingProxy`], an event is booked, every connection is
/// dropped and refused for 3 s, and a second event is created and booked. Both service processes
/// keep running, and both events end booked and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_connections_dropped_between_two_events() {
    let broker_port = free_port();
    let mut proxy = RestartingProxy::start(broker_port).await;
    let advertised = format!("127.0.0.1:{}", proxy.port);
    let _broker = start_kafka_wire_server(broker_port, &advertised, &[]).await;
    let mut env = kafka_env();
    env.retain(|(key, _)| *key != "KAFKA_BROKER_URLS");
    env.push(("KAFKA_BROKER_URLS", advertised.clone()));
    let client = Client::new();
    let mut events = start("event-service", &env).await;
    let mut bookings = start("booking-service", &env).await;
    let before = create_event(&client, &events, "created before the broker restart").await;
    book_and_count(&client, &events, &bookings, &before).await;
    proxy.restart(Duration::from_secs(3)).await;
    let after = create_event(&client, &events, "created after the broker restart").await;
    book_and_count(&client, &events, &bookings, &after).await;
    for service in [&mut events, &mut bookings] {
        assert_eq!(service.exited(), None, "a service process died");
    }
}
