//! Contention end to end, over each real broker and the MongoDB-wire server, and over SNS + SQS with
//! DynamoDB (both of the AWS-API test server): 1,000 concurrent booking requests (1-4 seats each, 100
//! users) for an event of 300 seats, through HTTP against the two service binaries. The seats
//! confirmed by 201s equal exactly what the inventory lost, never more than 300; the stored bookings
//! agree; and the event service's `SeatsAvailable` converges to the booking service's remaining
//! seats. And keyed bookings that outnumber the booking service's database connections are all
//! answered.

use std::time::Duration;

use myevents_domain::id::EventId;
use myevents_store::BookingRepository;
use myevents_store::dynamo::{DynamoBookingRepository, DynamoConfig, DynamoStore};
use myevents_store::mongo::{MongoBookingRepository, MongoConfig, MongoStore};
use myevents_testkit::{Env, mongo_env, post_json, unique};
use myevents_testkit::{
    ServiceProcess, aws_endpoint, eventually, eventually_answers, mongo_url, unique_database,
};
use myevents_testkit::{create_event_across, get_json};
use myevents_testkit::{kafka_env, rabbitmq_env, sqs_env};
use rand::Rng;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const CAPACITY: i64 = 300;
const REQUESTS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_a_thousand_concurrent_bookings_never_oversell_and_availability_converges() {
    contend(rabbitmq_env(), Store::MongoDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_kafka_a_thousand_concurrent_bookings_never_oversell_and_availability_converges() {
    contend(kafka_env(), Store::MongoDb).await;
}

/// Over SNS + SQS of the AWS-API test server (moto), the store still the MongoDB-wire one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sqs_a_thousand_concurrent_bookings_never_oversell_and_availability_converges() {
    contend(sqs_env(), Store::MongoDb).await;
}

/// All on the AWS-API test server: SNS + SQS, and each service on a DynamoDB table of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sqs_on_dynamodb_a_thousand_concurrent_bookings_never_oversell_and_availability_converges()
 {
    contend(sqs_env(), Store::DynamoDb).await;
}

/// Keyed bookings outnumbering the booking service's MongoDB connections (one), each longer than a
/// third of its key's lease (1 s; the lease is renewed every third of itself), since their store
/// calls take turns on the connection: every request is answered 201. A renewal once waited for a connection while its request's own store call, which
/// held one, was not polled: with every connection held so, nothing went on until the request
/// time-out answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_bookings_outnumbering_the_database_connections_are_all_answered() {
    const KEYS: usize = 60;
    let broker = rabbitmq_env();
    let mut env = broker.clone();
    env.extend(mongo_env());
    env.extend([
        ("MONGO_MAX_POOL_SIZE", "1".to_owned()),
        ("IDEMPOTENCY_LEASE", "1".to_owned()),
        // Far beyond what the bookings take on a busy test server (their 300 store calls queue on
        // the one connection): only a deadlock runs into it.
        ("HTTP_REQUEST_TIMEOUT", "90".to_owned()),
    ]);
    let bookings = ServiceProcess::start("booking-service", &env).await;
    let mut env = broker;
    env.push(("STORE_KIND", "memory".to_owned()));
    let events = ServiceProcess::start("event-service", &env).await;
    let client = Client::new();
    let event_id = create_event_across(
        &client,
        &events,
        &bookings,
        &json!({"Name":"recital","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
            "Location":{"Name":"Small Hall","Halls":[{"name":"A","capacity":CAPACITY}]}}),
        WAIT,
    )
    .await;
    let url = format!("{}/events/{event_id}/bookings", bookings.url());
    let requests: Vec<_> = (0..KEYS)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("x-user-id", format!("fan{i}"))
                    .header("idempotency-key", format!("key-{i}"))
                    .json(&json!({"seats": 1}))
                    .send()
                    .await
                    .expect("request");
                let status = response.status();
                (status, response.text().await.unwrap_or_default())
            })
        })
        .collect();
    for request in requests {
        let (status, body) = request.await.expect("task");
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    events.kill().await;
    bookings.kill().await;
}

/// Where the services keep their data.
#[derive(Clone, Copy)]
enum Store {
    /// A database of its own per service on the MongoDB-wire test server.
    MongoDb,
    /// A table of its own per service on the AWS-API test server.
    DynamoDb,
}

impl Store {
    /// The variables that put one service on a database or table no other test uses, and its name.
    fn env(self) -> (Env, String) {
        match self {
            Store::MongoDb => {
                let database = unique_database();
                let env = vec![
                    ("STORE_KIND", "mongodb".to_owned()),
                    ("MONGO_URL", mongo_url()),
                    ("MONGO_DATABASE", database.clone()),
                ];
                (env, database)
            }
            Store::DynamoDb => {
                let table = unique("myevents");
                let env = vec![
                    ("STORE_KIND", "dynamodb".to_owned()),
                    ("DYNAMODB_TABLE", table.clone()),
                    // The test server serves DynamoDB requests one at a time: under this burst a
                    // request waits its turn for longer than DynamoDB's 10 s default allows.
                    ("DYNAMODB_OPERATION_TIMEOUT", "120".to_owned()),
                ];
                (env, table)
            }
        }
    }

    /// The booking service's repository on `name` (the database or table of [`Store::env`]).
    async fn bookings(self, name: String) -> Box<dyn BookingRepository> {
        match self {
            Store::MongoDb => {
                let store = MongoStore::start(&MongoConfig::new(mongo_url(), name), Vec::new())
                    .await
                    .expect("store");
                Box::new(MongoBookingRepository::new(&store))
            }
            Store::DynamoDb => {
                let mut config = DynamoConfig::new(name);
                config.endpoint = Some(aws_endpoint());
                config.region = Some("eu-west-1".to_owned());
                let store = DynamoStore::start(&config).await.expect("store");
                Box::new(DynamoBookingRepository::new(&store))
            }
        }
    }
}

async fn contend(broker_env: Env, store: Store) {
    let (booking_store, booking_store_name) = store.env();
    let mut env = broker_env.clone();
    env.extend(booking_store);
    env.push(("MAX_SEATS_PER_BOOKING", "4".to_owned()));
    let bookings = ServiceProcess::start("booking-service", &env).await;
    let mut env = broker_env;
    env.extend(store.env().0);
    let client = Client::new();
    let ready = format!("{}/readyz", bookings.url());
    assert!(
        eventually_answers(&ready, StatusCode::OK, WAIT).await,
        "the booking service became ready"
    );
    let events = ServiceProcess::start("event-service", &env).await;

    let location: Value = post_json(
        &client,
        format!("{}/locations", events.url()),
        &json!({"Name":"Arena","Halls":[{"name":"Main","capacity":CAPACITY}]}),
    )
    .await;
    let event_id = create_event_across(
        &client,
        &events,
        &bookings,
        &json!({"Name":"cup final","StartDate":1_768_000_000_i64,
            "EndDate":1_768_007_200_i64,"Hall":"Main","Location":{"ID":location["ID"]}}),
        WAIT,
    )
    .await;
    let bookings_url = format!("{}/events/{event_id}/bookings", bookings.url());

    // 1,000 requests at once: random 1-4 seats, 100 users.
    let requests: Vec<_> = {
        let mut rng = rand::rng();
        (0..REQUESTS)
            .map(|i| {
                let seats: i64 = rng.random_range(1..=4);
                let client = client.clone();
                let url = bookings_url.clone();
                tokio::spawn(async move {
                    let response = client
                        .post(url)
                        .header("x-user-id", format!("fan{}", i % 100))
                        .json(&json!({ "seats": seats }))
                        .send()
                        .await
                        .expect("request");
                    (seats, response.status())
                })
            })
            .collect()
    };
    let mut confirmed = 0;
    let mut created = 0;
    let mut refused = 0;
    for request in requests {
        match request.await.expect("task") {
            (seats, StatusCode::CREATED) => {
                confirmed += seats;
                created += 1;
            }
            (_, StatusCode::CONFLICT) => refused += 1,
            (_, other) => panic!("unexpected status {other}"),
        }
    }
    assert!(
        confirmed <= CAPACITY,
        "{confirmed} seats sold of {CAPACITY}"
    );
    assert_eq!(created + refused, REQUESTS);
    // Demand (about 2,500 seats) exceeds supply: what remains is less than the smallest refused wish.
    assert!(confirmed > CAPACITY - 4, "only {confirmed} seats sold");

    // The inventory lost exactly the confirmed seats, and the stored bookings say the same.
    let repository = store.bookings(booking_store_name).await;
    let id = EventId::parse(&event_id).expect("id");
    let remaining = i64::from(
        repository
            .inventory(id)
            .await
            .expect("read")
            .expect("known")
            .remaining
            .get(),
    );
    assert_eq!(remaining, CAPACITY - confirmed);
    let stored = repository
        .bookings_for_event(id, myevents_store::PageRequest::first(1000))
        .await
        .expect("list");
    assert_eq!(stored.len(), created);
    let stored_seats: i64 = stored.iter().map(|b| i64::from(b.seats.get())).sum();
    assert_eq!(stored_seats, confirmed);

    // The event service converges to the booking service's number.
    let event_url = format!("{}/events/{event_id}", events.url());
    let available = || async {
        let shown: Value = get_json(&client, &event_url).await;
        shown["SeatsAvailable"].clone()
    };
    let converged = eventually(WAIT, || async { available().await == remaining }).await;
    assert!(
        converged,
        "SeatsAvailable {} never reached {remaining}",
        available().await
    );
    events.kill().await;
    bookings.kill().await;
}
