//! The booking service's HTTP API, every route and every error status, and its consumer: the whole
//! application over the in-memory adapters, each request sent to its router in process.

use axum::body::Body;
use myevents_broker::{DEAD_LETTER_REASON_HEADER, Message, Subscription};
use myevents_testkit::{Answer, Recorder, event_created};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, two_hundred_one_seat_bookings_of_fifty_seats_sell_fifty};

fn assert_problem(answer: &myevents_testkit::Answer, status: StatusCode) {
    answer.assert_problem(status);
}

#[tokio::test]
async fn booking_answers_201_stores_the_booking_and_announces_it() {
    let mut app = TestApp::in_memory().await;
    let event = app.announce_event(10).await;
    let answer = app
        .book(&event.to_string(), r#"{"seats":3}"#, Some("alice"))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let id = answer.body["ID"].as_str().expect("ID").to_owned();
    assert_eq!(
        answer.headers["location"],
        format!("/bookings/{id}").as_str()
    );
    assert_eq!(answer.body["EventID"], event.to_string());
    assert_eq!(answer.body["UserID"], "alice");
    assert_eq!(answer.body["Seats"], 3);
    let date = answer.body["Date"].as_i64().expect("Date");
    assert!((chrono::Utc::now().timestamp() - date).abs() < 60);

    assert_eq!(
        app.get_as(&format!("/bookings/{id}"), Some("alice"))
            .await
            .body,
        answer.body
    );
    assert_eq!(
        app.http
            .get(&format!("/events/{event}/bookings"))
            .await
            .body,
        json!([answer.body])
    );
    assert_eq!(
        app.get_as("/users/alice/bookings", Some("alice"))
            .await
            .body,
        json!([answer.body])
    );
    assert_eq!(
        app.get_as("/users/bob/bookings", Some("bob")).await.body,
        json!([])
    );
    // Someone else's booking does not exist for them; another user's list is refused.
    assert_problem(
        &app.get_as(&format!("/bookings/{id}"), Some("bob")).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.get_as("/users/alice/bookings", Some("bob")).await,
        StatusCode::FORBIDDEN,
    );
    // A user id in the path that cannot be one is named as the path parameter it is.
    for path in ["/users/%20alice/bookings", "/users/a%07b/waitlist"] {
        let refused = app.get_as(path, Some("alice")).await;
        assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.body["errors"][0]["field"], "user_id", "{path}");
    }

    let message = app.published.next(WAIT).await;
    assert_eq!(message.name, "eventBooked");
    assert_eq!(message.key, event.to_string());
    let body: Value = serde_json::from_slice(&message.payload).expect("json");
    assert_eq!(body["eventId"], event.to_string());
    assert_eq!(body["userId"], "alice");
    assert_eq!(body["bookingId"], id);
    assert_eq!(body["seats"], 3);
}

#[tokio::test]
async fn a_booking_without_a_user_is_anonymous_and_json_bodies_work_too() {
    let app = TestApp::in_memory().await;
    let event = app.announce_event(10).await;
    let answer = app
        .post_bookings(
            &event,
            &[("content-type", "application/json")],
            json!({"Seats": 1}).to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["UserID"], "anonymous");
}

#[tokio::test]
async fn booking_until_sold_out_then_409_and_never_below_zero() {
    let app = TestApp::in_memory().await;
    let event = app.announce_event(5).await.to_string();
    assert_eq!(
        app.book(&event, r#"{"seats":4}"#, None).await.status,
        StatusCode::CREATED
    );
    let too_many = app.book(&event, r#"{"seats":2}"#, None).await;
    assert_problem(&too_many, StatusCode::CONFLICT);
    assert_eq!(too_many.body["detail"], "2 seats requested, 1 remain");
    assert_eq!(
        app.book(&event, r#"{"seats":1}"#, None).await.status,
        StatusCode::CREATED
    );
    assert_problem(
        &app.book(&event, r#"{"seats":1}"#, None).await,
        StatusCode::CONFLICT,
    );
    let booked: i64 = app
        .http
        .get(&format!("/events/{event}/bookings"))
        .await
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["Seats"].as_i64().expect("seats"))
        .sum();
    assert_eq!(booked, 5);
}

#[tokio::test]
async fn bad_seats_bodies_users_and_ids_get_problems() {
    let app = TestApp::in_memory().await;
    let event = app.announce_event(100).await.to_string();
    for body in [
        r#"{"seats":0}"#,
        r#"{"seats":-1}"#,
        r#"{"seats":5}"#,
        "{}",
        r#"{"seats":"2"}"#,
    ] {
        assert_problem(
            &app.book(&event, body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    assert_problem(
        &app.book(&event, "{seats", None).await,
        StatusCode::BAD_REQUEST,
    );
    assert_problem(
        &app.book(&event, r#"{"seats":1}"#, Some(&"u".repeat(129)))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    app.post_bookings(
        &event,
        &[("content-type", "application/xml")],
        "<seats>1</seats>",
    )
    .await
    .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for path in [
        "/bookings/000000000000000000000000",
        "/bookings/nope",
        "/events/000000000000000000000000/bookings",
        "/events/nope/bookings",
    ] {
        assert_problem(&app.http.get(path).await, StatusCode::NOT_FOUND);
    }
    assert_problem(
        &app.book("000000000000000000000000", r#"{"seats":1}"#, None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.book("nope", r#"{"seats":1}"#, None).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.http.get("/events/{event}/bookings?limit=abc").await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.http
            .get(&format!("/events/{event}/bookings?limit=abc"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
}

#[tokio::test]
async fn the_frontends_exact_booking_request_gets_cors_headers() {
    let app = TestApp::in_memory().await;
    let event = app.announce_event(10).await;
    // What the reference frontend's fetch() sends: no Content-Type set by the script, so the browser
    // sends text/plain, plus the page's Origin.
    let answer = app
        .post_bookings(
            &event,
            &[
                ("origin", "http://localhost"),
                ("content-type", "text/plain;charset=UTF-8"),
            ],
            r#"{"seats":1}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.headers["access-control-allow-origin"], "*");
    let exposed = answer.headers["access-control-expose-headers"]
        .to_str()
        .expect("header")
        .to_owned();
    assert!(exposed.contains("location"), "{exposed}");
}

#[tokio::test]
async fn a_redelivered_event_created_keeps_the_remaining_seats() {
    let app = TestApp::in_memory().await;
    let event = app.announce_event(3).await;
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":2}"#, None)
            .await
            .status,
        StatusCode::CREATED
    );
    // The same announcement again (a redelivery): the event must not get its seats back.
    app.publish(&event_created(event, 3, "anonymous")).await;
    // A second, fresh event published after it proves the redelivery was consumed.
    let marker = app.announce_event(1).await;
    assert_eq!(
        app.book(&marker.to_string(), r#"{"seats":1}"#, None)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_problem(
        &app.book(&event.to_string(), r#"{"seats":2}"#, None).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":1}"#, None)
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_and_consumption_goes_on() {
    let app = TestApp::in_memory().await;
    app.publish_raw(Message::new("eventCreated", "k", b"{not json".to_vec()))
        .await;
    let event = app.announce_event(2).await;
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":1}"#, None)
            .await
            .status,
        StatusCode::CREATED
    );
    let (recorder, mut dead) = Recorder::new();
    let subscription = Subscription::new(&app.queue, myevents_booking_service::consumer::CONSUMES);
    let _dead_letters = app
        .broker
        .subscriber
        .subscribe(&subscription.dead_letters(), recorder)
        .await
        .expect("subscribe to dead letters");
    let letter = dead.next(WAIT).await;
    assert_eq!(letter.payload, b"{not json");
    assert!(letter.headers[DEAD_LETTER_REASON_HEADER].contains("malformed eventCreated"));
}

#[tokio::test]
async fn two_hundred_concurrent_one_seat_bookings_of_fifty_seats_sell_exactly_fifty() {
    two_hundred_one_seat_bookings_of_fifty_seats_sell_fifty(TestApp::in_memory().await).await;
}

#[tokio::test]
async fn the_user_who_booked_cancels_once_and_the_seats_go_back_on_sale() {
    let mut app = TestApp::in_memory().await;
    let event = app.announce_event(4).await.to_string();
    let booked = app.book(&event, r#"{"seats":3}"#, Some("alice")).await;
    assert_eq!(booked.status, StatusCode::CREATED);
    let id = booked.body["ID"].as_str().expect("ID").to_owned();
    let app_ref = &app;
    let cancel = |user: Option<&'static str>, id: String| async move {
        let user = user.map(|user| ("x-user-id", user));
        app_ref
            .http
            .request(
                "DELETE",
                &format!("/bookings/{id}"),
                user.as_slice(),
                Body::empty(),
            )
            .await
    };
    // To anyone else the booking does not exist.
    assert_problem(
        &cancel(Some("bob"), id.clone()).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(&cancel(None, id.clone()).await, StatusCode::NOT_FOUND);
    assert_problem(
        &cancel(Some("alice"), "000000000000000000000000".to_owned()).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &cancel(Some("alice"), "nope".to_owned()).await,
        StatusCode::NOT_FOUND,
    );

    let cancelled = cancel(Some("alice"), id.clone()).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert!(cancelled.body["CancelledAt"].is_i64());
    assert_eq!(cancelled.body["Seats"], 3);
    let again = cancel(Some("alice"), id.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, cancelled.body);
    assert_eq!(
        app.get_as(&format!("/bookings/{id}"), Some("alice"))
            .await
            .body,
        cancelled.body
    );

    // The seats are back: all 4 can be booked now.
    assert_eq!(
        app.book(&event, r#"{"seats":4}"#, Some("bob")).await.status,
        StatusCode::CREATED
    );

    // Announced: the booking, then its cancellation, once.
    let mut names = Vec::new();
    while names.len() < 3 {
        let message = app.published.next(WAIT).await;
        let body: Value = serde_json::from_slice(&message.payload).expect("json");
        if message.name == "bookingCancelled" {
            assert_eq!(body["bookingId"], id);
            assert_eq!(body["seats"], 3);
            assert_eq!(body["userId"], "alice");
        }
        names.push(message.name);
    }
    names.sort();
    assert_eq!(names, ["bookingCancelled", "eventBooked", "eventBooked"]);
}

#[tokio::test]
async fn the_same_request_sent_twenty_times_at_once_with_one_key_books_once_and_announces_once() {
    let mut app = TestApp::in_memory().await;
    let app_ref = &app;
    let event = app.announce_event(10).await.to_string();
    let attempts = (0..20).map(|_| {
        let event = event.clone();
        async move {
            app_ref
                .book_with_key(&event, r#"{"seats":2}"#, Some("alice"), Some("order-42"))
                .await
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut booking_ids = std::collections::BTreeSet::new();
    for answer in &answers {
        match answer.status {
            StatusCode::CREATED => {
                booking_ids.insert(answer.body["ID"].as_str().expect("ID").to_owned());
            }
            // Still in flight: the draft's answer, with a hint when to retry.
            StatusCode::CONFLICT => {
                answer.assert_problem(StatusCode::CONFLICT);
                assert_eq!(answer.headers["retry-after"], "1");
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(
        booking_ids.len(),
        1,
        "one booking id in every 201: {answers:?}"
    );
    let id = booking_ids.pop_first().expect("one");

    // Once the first is done every retry replays it.
    let retry = app
        .book_with_key(&event, r#"{"seats":2}"#, Some("alice"), Some("order-42"))
        .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body["ID"], id);
    assert_eq!(retry.headers["idempotent-replayed"], "true");

    let stored = app.stored_bookings(&event).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), id);
    let inventory = app.http.get(&format!("/events/{event}/bookings")).await;
    assert_eq!(inventory.body.as_array().expect("list").len(), 1);

    // One eventBooked: the next message after it is the one of a later, different booking.
    let first = app.published.next(WAIT).await;
    let body: Value = serde_json::from_slice(&first.payload).expect("json");
    assert_eq!(body["bookingId"], id);
    let marker = app.book(&event, r#"{"seats":1}"#, Some("bob")).await;
    assert_eq!(marker.status, StatusCode::CREATED);
    let next = app.published.next(WAIT).await;
    let body: Value = serde_json::from_slice(&next.payload).expect("json");
    assert_eq!(
        body["bookingId"], marker.body["ID"],
        "a second eventBooked of {id}"
    );
}

#[tokio::test]
async fn a_retried_key_replays_the_first_answer_even_after_a_restart_and_a_changed_body_gets_422() {
    let app = TestApp::in_memory().await;
    let event = app.announce_event(3).await.to_string();
    let first = app
        .book_with_key(&event, r#"{"seats":2}"#, Some("alice"), Some("k1"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());

    // The same document, spelled differently, is the same request.
    let again = app
        .book_with_key(&event, r#"{ "Seats" : 2 }"#, Some("alice"), Some("k1"))
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(again.headers["content-type"], first.headers["content-type"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");

    let changed = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("alice"), Some("k1"))
        .await;
    changed.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        changed.body["detail"]
            .as_str()
            .expect("detail")
            .contains("Idempotency-Key")
    );

    // Keys are per user: bob's k1 is another key.
    let bob = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("bob"), Some("k1"))
        .await;
    assert_eq!(bob.status, StatusCode::CREATED);
    assert_ne!(bob.body["ID"], first.body["ID"]);

    // A refusal is replayed too: sold out stays the answer for that key.
    let sold_out = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("carol"), Some("k2"))
        .await;
    sold_out.assert_problem(StatusCode::CONFLICT);
    let replayed = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("carol"), Some("k2"))
        .await;
    assert_eq!(replayed.status, StatusCode::CONFLICT);
    assert_eq!(replayed.body, sold_out.body);
    assert_eq!(replayed.headers["idempotent-replayed"], "true");

    // A malformed key is refused before anything happens.
    let malformed = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("alice"), Some(""))
        .await;
    malformed.assert_problem(StatusCode::BAD_REQUEST);

    // Another replica (a second instance of the service on the same store) replays it too.
    let replica = app.replica().await;
    let from_replica = Answer::call(
        &replica,
        "POST",
        &format!("/events/{event}/bookings"),
        &[
            ("x-user-id", "alice"),
            ("idempotency-key", "k1"),
            ("content-type", "application/json"),
        ],
        json!({"seats": 2}).to_string(),
    )
    .await;
    assert_eq!(
        from_replica.status,
        StatusCode::CREATED,
        "{}",
        from_replica.body
    );
    assert_eq!(from_replica.body, first.body);
    assert_eq!(app.stored_bookings(&event).await.len(), 2);
}

#[tokio::test]
async fn a_hold_is_201_then_confirmed_into_its_booking_once_or_released_and_strangers_get_404() {
    let app = TestApp::in_memory().await;
    let event = app.announce_event(5).await;
    let post = |path: String, body: &'static str, user: &'static str| {
        let http = app.http.clone();
        async move {
            http.request(
                "POST",
                &path,
                &[("content-type", "application/json"), ("x-user-id", user)],
                body,
            )
            .await
        }
    };
    let held = post(format!("/events/{event}/holds"), r#"{"seats":3}"#, "alice").await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    let id = held.body["ID"].as_str().expect("ID").to_owned();
    assert_eq!(held.headers["location"], format!("/holds/{id}").as_str());
    let (held_at, expires_at) = (
        held.body["HeldAt"].as_i64().expect("HeldAt"),
        held.body["ExpiresAt"].as_i64().expect("ExpiresAt"),
    );
    assert_eq!(expires_at - held_at, 600, "HOLD_TTL, 10 minutes by default");
    assert_eq!(app.remaining_seats(event).await, 2);
    assert_eq!(
        app.get_as(&format!("/holds/{id}"), Some("alice"))
            .await
            .body,
        held.body
    );
    // More seats than remain, or than a booking may have: problems; nothing taken.
    assert_problem(
        &post(format!("/events/{event}/holds"), r#"{"seats":3}"#, "bob").await,
        StatusCode::CONFLICT,
    );
    assert_problem(
        &post(format!("/events/{event}/holds"), r#"{"seats":9}"#, "bob").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    // Someone else's hold does not exist for them.
    assert_problem(
        &app.get_as(&format!("/holds/{id}"), Some("bob")).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &post(format!("/holds/{id}/confirmation"), "", "bob").await,
        StatusCode::NOT_FOUND,
    );
    let delete = |path: String, user: &'static str| {
        let http = app.http.clone();
        async move {
            http.request("DELETE", &path, &[("x-user-id", user)], Body::empty())
                .await
        }
    };
    assert_problem(
        &delete(format!("/holds/{id}"), "bob").await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(app.remaining_seats(event).await, 2);

    let confirmed = post(format!("/holds/{id}/confirmation"), "", "alice").await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.body);
    assert_eq!(
        confirmed.headers["location"],
        format!("/bookings/{id}").as_str()
    );
    assert_eq!(
        (&confirmed.body["ID"], &confirmed.body["Seats"]),
        (&json!(id), &json!(3))
    );
    let again = post(format!("/holds/{id}/confirmation"), "", "alice").await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::OK, &confirmed.body)
    );
    assert_eq!(
        app.get_as(&format!("/bookings/{id}"), Some("alice"))
            .await
            .body,
        confirmed.body
    );
    assert_problem(
        &app.get_as(&format!("/holds/{id}"), Some("alice")).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &delete(format!("/holds/{id}"), "alice").await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(app.remaining_seats(event).await, 2);

    let other = post(format!("/events/{event}/holds"), r#"{"seats":2}"#, "bob").await;
    let other = other.body["ID"].as_str().expect("ID").to_owned();
    let released = delete(format!("/holds/{other}"), "bob").await;
    assert_eq!(released.status, StatusCode::NO_CONTENT);
    assert_eq!(app.remaining_seats(event).await, 2);
    assert_problem(
        &delete(format!("/holds/{other}"), "bob").await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &post(format!("/holds/{other}/confirmation"), "", "bob").await,
        StatusCode::NOT_FOUND,
    );
}

#[tokio::test]
async fn waitlist_problems_change_nothing() {
    let app = TestApp::in_memory().await;
    let event = app.announce_event(2).await;
    let join = |event: String, body: &'static str, user: &'static str| {
        let http = app.http.clone();
        async move {
            http.request(
                "POST",
                &format!("/events/{event}/waitlist"),
                &[("content-type", "application/json"), ("x-user-id", user)],
                body,
            )
            .await
        }
    };
    let available = join(event.to_string(), r#"{"seats":2}"#, "bob").await;
    assert_problem(&available, StatusCode::CONFLICT);
    assert_eq!(
        available.body["type"],
        "urn:myevents:problem:seats-available"
    );
    assert_problem(
        &join(event.to_string(), r#"{"seats":0}"#, "bob").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let unknown = myevents_domain::id::EventId::generate().to_string();
    assert_problem(
        &join(unknown, r#"{"seats":1}"#, "bob").await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":2}"#, Some("alice"))
            .await
            .status,
        StatusCode::CREATED
    );
    let joined = join(event.to_string(), r#"{"seats":1}"#, "bob").await;
    assert_eq!(joined.status, StatusCode::CREATED, "{}", joined.body);
    let id = joined.body["ID"].as_str().expect("ID").to_owned();
    assert_eq!(
        joined.headers["location"],
        format!("/waitlist/{id}").as_str()
    );
    assert_eq!(joined.body["Place"], 1);
    assert_problem(
        &app.get_as(&format!("/waitlist/{id}"), Some("carol")).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.get_as("/users/bob/waitlist", Some("carol")).await,
        StatusCode::FORBIDDEN,
    );
    let leave = |user: &'static str| {
        let http = app.http.clone();
        let path = format!("/waitlist/{id}");
        async move {
            http.request("DELETE", &path, &[("x-user-id", user)], Body::empty())
                .await
        }
    };
    assert_problem(&leave("carol").await, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get_as("/users/bob/waitlist", Some("bob")).await.body[0]["ID"],
        id.as_str()
    );
    assert_eq!(leave("bob").await.status, StatusCode::NO_CONTENT);
    assert_problem(&leave("bob").await, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get_as("/users/bob/waitlist", Some("bob")).await.body,
        json!([])
    );
}
