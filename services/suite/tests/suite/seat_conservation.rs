//! Seats are conserved under contention, end to end over RabbitMQ and the MongoDB-wire server: 2,000
//! operations of every kind (book, hold, confirm, release, let lapse, cancel a booking, join the
//! waitlist, grow or shrink the capacity), in rounds of 100 at once from 20 buyers, against two
//! booking-service replicas on one store, one of them killed in the middle of a round. Between
//! rounds before the kill, and at the end once the survivor reconciled, the store shows seats on
//! sale + held + booked = capacity, nothing oversold, and no buyer on the waitlist overtaken by one
//! who joined later.

use std::collections::HashSet;
use std::time::Duration;

use myevents_domain::booking::WaitlistEntry;
use myevents_domain::id::EventId;
use myevents_store::mongo::{MongoBookingRepository, MongoConfig, MongoStore};
use myevents_store::{BookingRepository, PageRequest};
use myevents_testkit::{
    ServiceProcess, create_event_across, eventually, eventually_answers, mongo_url, post_json,
    rabbitmq_env, unique_database,
};
use rand::Rng;
use rand::seq::IndexedRandom;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const WAIT: Duration = Duration::from_secs(90);
const ROUNDS: usize = 20;
const PER_ROUND: usize = 100;
const KILLED_IN_ROUND: usize = 10;
const USERS: usize = 20;

/// The seats of one event as the store shows them: its inventory, holds and waitlist at one instant
/// (one read), then its bookings. Between rounds nothing moves seats between the two reads but the
/// lapse and offer jobs, which change the inventory alone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seats {
    capacity: u32,
    on_sale: u32,
    held: u32,
    booked: u32,
    waitlist: Vec<WaitlistEntry>,
}

async fn read_seats(repo: &MongoBookingRepository, id: EventId) -> Seats {
    let snapshot = repo
        .inventory_snapshot(id)
        .await
        .expect("read")
        .expect("known");
    let mut booked_ids = HashSet::new();
    let mut booked = 0;
    let mut page = PageRequest::first(1000);
    loop {
        let bookings = repo.bookings_for_event(id, page).await.expect("bookings");
        for booking in &bookings {
            booked_ids.insert(booking.id);
            if booking.cancelled_at.is_none() {
                booked += booking.seats.get();
            }
        }
        match bookings.last() {
            Some(last) if bookings.len() == 1000 => {
                page = PageRequest::new(Some(last.id.object_id()), 1000);
            }
            _ => break,
        }
    }
    // A reservation whose booking is stored already (its pull not yet made) counts once.
    let held = snapshot
        .holds
        .iter()
        .filter(|hold| !booked_ids.contains(&hold.booking.id))
        .map(|hold| hold.booking.seats.get())
        .sum();
    Seats {
        capacity: snapshot.inventory.capacity.get(),
        on_sale: snapshot.inventory.remaining.get(),
        held,
        booked,
        waitlist: snapshot.waitlist,
    }
}

/// The conservation of seats and the waitlist's order, as `seats` shows them.
fn check(seats: &Seats, when: &str) {
    assert_eq!(
        seats.on_sale + seats.held + seats.booked,
        seats.capacity,
        "{when}: on sale + held + booked != capacity: {seats:?}"
    );
    assert!(
        seats.booked <= seats.capacity,
        "{when}: oversold: {seats:?}"
    );
    // The list is in the order the buyers joined (the store's order, which a request's own clock
    // may not show): every offer was made to a buyer ahead of everyone still waiting.
    let first_waiting = seats.waitlist.iter().position(|e| e.offer.is_none());
    let last_offered = seats.waitlist.iter().rposition(|e| e.offer.is_some());
    if let (Some(waiting), Some(offered)) = (first_waiting, last_offered) {
        assert!(
            offered < waiting,
            "{when}: an offer overtook a buyer waiting: {seats:?}"
        );
    }
    let mut places: Vec<u32> = seats.waitlist.iter().filter_map(|e| e.place).collect();
    places.sort_unstable();
    let expected: Vec<u32> = (1..=u32::try_from(places.len()).expect("places")).collect();
    assert_eq!(places, expected, "{when}: places 1..n: {seats:?}");
}

/// What the buyers made so far, to pick later operations from.
#[derive(Default)]
struct Made {
    holds: Vec<(String, String)>,
    bookings: Vec<(String, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_are_conserved_under_two_thousand_random_operations_and_a_killed_replica() {
    let booking_database = unique_database();
    let mut env = rabbitmq_env();
    env.extend([
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", booking_database.clone()),
        ("MAX_SEATS_PER_BOOKING", "4".to_owned()),
        ("HOLD_TTL", "2".to_owned()),
        ("HOLD_SWEEP_INTERVAL", "1".to_owned()),
        ("RECONCILE_INTERVAL", "1".to_owned()),
        ("RECONCILE_GRACE", "1".to_owned()),
    ]);
    let doomed = ServiceProcess::start("booking-service", &env).await;
    let survivor = ServiceProcess::start("booking-service", &env).await;
    env.push(("MONGO_DATABASE", unique_database()));
    let events = ServiceProcess::start("event-service", &env).await;
    let client = Client::new();
    for service in [&doomed, &survivor] {
        let ready = format!("{}/readyz", service.url());
        assert!(
            eventually_answers(&ready, StatusCode::OK, WAIT).await,
            "ready"
        );
    }
    let location: Value = post_json(
        &client,
        format!("{}/locations", events.url()),
        &json!({"Name":"Stadium","Halls":[{"name":"Main","capacity":150}]}),
    )
    .await;
    let event_id = create_event_across(
        &client,
        &events,
        &survivor,
        &json!({"Name":"derby","StartDate":1_768_000_000_i64,
            "EndDate":1_768_007_200_i64,"Hall":"Main","Location":{"ID":location["ID"]}}),
        WAIT,
    )
    .await;
    let store = MongoStore::start(&MongoConfig::new(mongo_url(), booking_database), Vec::new())
        .await
        .expect("store");
    let repo = MongoBookingRepository::new(&store);
    let id = EventId::parse(&event_id).expect("id");
    let made = std::sync::Arc::new(Mutex::new(Made::default()));
    let (doomed_url, survivor_url) = (doomed.url(), survivor.url());
    let mut doomed = Some(doomed);
    let mut failed_on_the_killed = 0;
    for round in 0..ROUNDS {
        let alive: Vec<String> = if doomed.is_some() {
            vec![doomed_url.clone(), survivor_url.clone()]
        } else {
            vec![survivor_url.clone()]
        };
        let mut tasks = Vec::with_capacity(PER_ROUND);
        for _ in 0..PER_ROUND {
            let (client, made, events_url, event_id) =
                (client.clone(), made.clone(), events.url(), event_id.clone());
            let (base, user, kind, seats, pick) = {
                let mut rng = rand::rng();
                (
                    alive.choose(&mut rng).expect("a replica").clone(),
                    format!("fan{}", rng.random_range(0..USERS)),
                    rng.random_range(0..100_u32),
                    rng.random_range(1..=4_i64),
                    rng.random_range(0..usize::MAX),
                )
            };
            tasks.push(tokio::spawn(async move {
                operate(
                    &client,
                    &made,
                    &base,
                    &events_url,
                    &event_id,
                    &user,
                    kind,
                    seats,
                    pick,
                )
                .await
                .map(|status| (base.clone(), status))
                .map_err(|error| (base, error))
            }));
        }
        if round == KILLED_IN_ROUND
            && let Some(process) = doomed.take()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            process.kill().await;
        }
        for task in tasks {
            match task.await.expect("task") {
                Ok((_, status)) => assert!(
                    !status.is_server_error(),
                    "round {round}: a server error {status} from a running replica"
                ),
                // A request to the killed replica: its connection went with it.
                Err((base, _)) if base == doomed_url && round >= KILLED_IN_ROUND => {
                    failed_on_the_killed += 1;
                }
                Err((base, error)) => panic!("round {round}: {base}: {error}"),
            }
        }
        if round < KILLED_IN_ROUND {
            check(
                &read_seats(&repo, id).await,
                &format!("after round {round}"),
            );
        }
    }
    // The survivor lapses the holds, finishes what the killed replica left and offers seats:
    // then every seat is accounted for, none twice.
    let settled = eventually(WAIT, || async {
        let seats = read_seats(&repo, id).await;
        seats.on_sale + seats.held + seats.booked == seats.capacity
    })
    .await;
    let seats = read_seats(&repo, id).await;
    assert!(settled, "never conserved after the run: {seats:?}");
    check(&seats, "after the run");
    let offers = seats.waitlist.iter().filter(|e| e.offer.is_some()).count();
    eprintln!(
        "after {} operations ({failed_on_the_killed} lost with the killed replica): capacity {}, \
         on sale {}, held {}, booked {}; waitlist {} entries, {offers} with an offer",
        ROUNDS * PER_ROUND,
        seats.capacity,
        seats.on_sale,
        seats.held,
        seats.booked,
        seats.waitlist.len()
    );
    events.kill().await;
    survivor.kill().await;
}

/// One random operation of `user` on replica `base`: `kind` (0-99) picks which, `seats` how many,
/// `pick` which earlier hold or booking. The answer's status; an error when there was none.
#[expect(
    clippy::too_many_arguments,
    reason = "one random operation's inputs, drawn together"
)]
async fn operate(
    client: &Client,
    made: &Mutex<Made>,
    base: &str,
    events_url: &str,
    event_id: &str,
    user: &str,
    kind: u32,
    seats: i64,
    pick: usize,
) -> Result<StatusCode, reqwest::Error> {
    let send = |method: Method, url: String, body: Value| {
        client
            .request(method, url)
            .header("x-user-id", user)
            .json(&body)
            .send()
    };
    let chosen =
        |list: &Vec<(String, String)>| (!list.is_empty()).then(|| list[pick % list.len()].clone());
    let seats_body = json!({ "seats": seats });
    let answer = match kind {
        0..=29 => {
            let answer = send(
                Method::POST,
                format!("{base}/events/{event_id}/bookings"),
                seats_body,
            )
            .await?;
            remember(answer, user, made, |m| &mut m.bookings).await
        }
        30..=49 => {
            let answer = send(
                Method::POST,
                format!("{base}/events/{event_id}/holds"),
                seats_body,
            )
            .await?;
            remember(answer, user, made, |m| &mut m.holds).await
        }
        50..=64 => {
            let Some((owner, hold)) = chosen(&made.lock().await.holds) else {
                return Ok(StatusCode::NO_CONTENT);
            };
            let url = format!("{base}/holds/{hold}/confirmation");
            client
                .post(url)
                .header("x-user-id", owner)
                .send()
                .await?
                .status()
        }
        65..=74 => {
            let Some((owner, hold)) = chosen(&made.lock().await.holds) else {
                return Ok(StatusCode::NO_CONTENT);
            };
            let url = format!("{base}/holds/{hold}");
            client
                .delete(url)
                .header("x-user-id", owner)
                .send()
                .await?
                .status()
        }
        75..=84 => {
            let Some((owner, booking)) = chosen(&made.lock().await.bookings) else {
                return Ok(StatusCode::NO_CONTENT);
            };
            let url = format!("{base}/bookings/{booking}");
            client
                .delete(url)
                .header("x-user-id", owner)
                .send()
                .await?
                .status()
        }
        85..=94 => send(
            Method::POST,
            format!("{base}/events/{event_id}/waitlist"),
            seats_body,
        )
        .await?
        .status(),
        _ => {
            // Grow or shrink the capacity by up to 10 seats; below the seats booked is 409.
            let event: Value = client
                .get(format!("{events_url}/events/{event_id}"))
                .send()
                .await?
                .json()
                .await?;
            let capacity = event["Capacity"].as_i64().unwrap_or(150);
            let change = i64::try_from(pick % 21).unwrap_or(0) - 10;
            client
                .patch(format!("{events_url}/events/{event_id}"))
                .json(&json!({ "Capacity": (capacity + change).max(1) }))
                .send()
                .await?
                .status()
        }
    };
    Ok(answer)
}

/// The status of `answer`; a created resource's id is remembered in the list `of` picks.
async fn remember(
    answer: reqwest::Response,
    user: &str,
    made: &Mutex<Made>,
    of: impl FnOnce(&mut Made) -> &mut Vec<(String, String)>,
) -> StatusCode {
    let status = answer.status();
    if status == StatusCode::CREATED
        && let Ok(body) = answer.json::<Value>().await
        && let Some(id) = body["ID"].as_str()
    {
        of(&mut *made.lock().await).push((user.to_owned(), id.to_owned()));
    }
    status
}
