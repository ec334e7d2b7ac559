//! What only the real servers can show: the service over the MongoDB-wire server and RabbitMQ — the
//! seats of an event under contention in MongoDB's atomic writes, and the reconciliation of a
//! cancellation a crash interrupted between its two MongoDB writes (the in-memory store makes it one
//! write, so it has no such state).

use std::time::Duration;

use mongodb::bson::doc;
use myevents_messaging::broker::Broker;
use myevents_store::config::MongoConfig;
use myevents_testkit::{eventually, mongo_url, rabbitmq_broker, unique_database};
use reqwest::StatusCode;

use crate::support::{TestApp, WAIT, two_hundred_one_seat_bookings_of_fifty_seats_sell_fifty};

/// The service over a fresh MongoDB database and RabbitMQ; and that database's settings.
async fn on_real_servers() -> (TestApp, MongoConfig) {
    let mongo = MongoConfig::new(mongo_url(), unique_database());
    let store =
        myevents_store::factory::open(&myevents_store::config::StoreConfig::MongoDb(mongo.clone()))
            .await
            .expect("store");
    let app = TestApp::on(Broker::new(rabbitmq_broker()), store).await;
    (app, mongo)
}

#[tokio::test]
async fn two_hundred_concurrent_one_seat_bookings_of_fifty_seats_sell_exactly_fifty_in_mongodb() {
    let (app, _) = on_real_servers().await;
    two_hundred_one_seat_bookings_of_fifty_seats_sell_fifty(app).await;
}

#[tokio::test]
async fn the_reconciliation_finishes_a_seat_return_a_crash_interrupted() {
    let (app, mongo) = on_real_servers().await;
    let event = app.announce_event(4).await;
    let booked = app
        .book(&event.to_string(), r#"{"seats":3}"#, Some("alice"))
        .await;
    assert_eq!(booked.status, StatusCode::CREATED);
    let id = booked.body["ID"].as_str().expect("ID");

    // What a crash right after marking the booking cancelled leaves: the seats not yet back.
    let store = myevents_store::mongo::MongoStore::start(&mongo, Vec::new())
        .await
        .expect("store");
    let an_hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    store
        .database()
        .collection::<mongodb::bson::Document>("bookings")
        .update_one(
            doc! {"_id": mongodb::bson::oid::ObjectId::parse_str(id).expect("oid")},
            doc! {"$set": {
                "cancelled_at": mongodb::bson::DateTime::from_millis(an_hour_ago.timestamp_millis()),
                "returning": true,
            }},
        )
        .await
        .expect("simulate the interrupted cancellation");
    assert!(
        eventually(WAIT, || async { app.remaining_seats(event).await == 4 }).await,
        "the reconciliation gave the seats back"
    );
    // Once: later runs leave it at 4 while a new booking takes seats again.
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":4}"#, Some("bob"))
            .await
            .status,
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.remaining_seats(event).await, 0);
}
