//! Open-loop load at a fixed rate, which `wrk` cannot do: bookings sent on a schedule whatever the
//! answers take, while the event service's `SeatsAvailable` is sampled, to see whether (and how
//! late) what the booking service accepted is counted on the event service. And the propagation of
//! new events to the booking service.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

/// Seats of the events the bench creates to book at a fixed rate: never sold out.
pub(crate) const HUGE_CAPACITY: i64 = 1_000_000_000;

/// Time between two looks at the event service's `SeatsAvailable`.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// Bookings one fixed-rate run may have in flight at once; when the services answer so slowly that
/// more would be needed, the run falls behind its rate and says so.
const MOST_IN_FLIGHT: usize = 512;

/// The two services a run talks to, and the client it talks with.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The HTTP client (one connection pool for the whole run).
    pub(crate) client: reqwest::Client,
    /// The event service's base URL.
    pub(crate) events: String,
    /// The booking service's base URL.
    pub(crate) bookings: String,
}

/// Creates an event of `capacity` seats at a new location; returns its id.
///
/// # Errors
/// When the event service does not answer 201.
pub(crate) async fn create_event(
    target: &Target,
    name: &str,
    capacity: i64,
) -> anyhow::Result<String> {
    let answer = target
        .client
        .post(format!("{}/events", target.events))
        .json(&json!({
            "Name": name, "StartDate": 1_768_000_000_i64, "EndDate": 1_768_007_200_i64,
            "Capacity": capacity,
            "Location": {"Name": format!("{name} hall"), "Halls": [{"name": "Main", "capacity": capacity}]}
        }))
        .send()
        .await
        .context("POST /events")?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.context("POST /events body")?;
    if status != reqwest::StatusCode::CREATED {
        bail!("POST /events answered {status}: {body}");
    }
    body["ID"]
        .as_str()
        .map(str::to_owned)
        .context("POST /events answered no ID")
}

/// Waits (polling every millisecond, at most `wait`) until the booking service knows `event`.
///
/// # Errors
/// When it does not within `wait`.
pub(crate) async fn bookable(target: &Target, event: &str, wait: Duration) -> anyhow::Result<()> {
    let url = format!("{}/events/{event}/bookings", target.bookings);
    let deadline = Instant::now() + wait;
    loop {
        let known = target
            .client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
        if known {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the booking service did not learn of event {event} within {wait:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The event service's `SeatsAvailable` of `event`.
///
/// # Errors
/// When it does not answer it.
pub(crate) async fn seats_available(target: &Target, event: &str) -> anyhow::Result<i64> {
    let body: serde_json::Value = target
        .client
        .get(format!("{}/events/{event}", target.events))
        .send()
        .await?
        .json()
        .await?;
    body["SeatsAvailable"]
        .as_i64()
        .with_context(|| format!("no SeatsAvailable in {body}"))
}

/// The seats of every booking the booking service holds for `event`, summed over the pages of
/// `GET /events/{id}/bookings` (1,000 a page, following `after`).
///
/// # Errors
/// When a page cannot be read.
pub(crate) async fn booked_seats(target: &Target, event: &str) -> anyhow::Result<i64> {
    let mut seats = 0;
    let mut after = String::new();
    loop {
        let page: Vec<serde_json::Value> = target
            .client
            .get(format!(
                "{}/events/{event}/bookings?limit=1000{after}",
                target.bookings
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        seats += page.iter().filter_map(|b| b["Seats"].as_i64()).sum::<i64>();
        match page.last().and_then(|b| b["ID"].as_str()) {
            Some(last) if page.len() == 1000 => after = format!("&after={last}"),
            _ => return Ok(seats),
        }
    }
}

/// Waits (looking every 200 ms, at most `wait`) until the event service counts every seat the
/// booking service holds bookings for of `event` (of [`HUGE_CAPACITY`] seats): until the bookings of
/// a run have all been announced and counted, so that the next measurement does not meet the
/// backlog of this one. Returns how long that took.
///
/// # Errors
/// When either service does not answer, or the counts still differ after `wait`.
pub(crate) async fn settled(
    target: &Target,
    event: &str,
    wait: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let booked = booked_seats(target, event).await?;
        let counted = HUGE_CAPACITY - seats_available(target, event).await?;
        if counted >= booked {
            return Ok(start.elapsed());
        }
        if start.elapsed() > wait {
            bail!(
                "{event}: the event service counted {counted} of the {booked} seats booked, {wait:?} \
                 after the run"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Books `event` one seat per request, one request at a time, until the booking service's bookings
/// hold `capacity` seats; returns the requests sent. The seats booked are listed once at the start
/// and again after each refusal (which first waits 200 ms for held seats to come free), not after
/// each booking: on a slow store a listing of 2,000 bookings costs more than a booking.
///
/// # Errors
/// A request that fails, or 60 s without a seat booked.
pub(crate) async fn book_one_by_one(
    target: &Target,
    event: &str,
    capacity: i64,
) -> anyhow::Result<u64> {
    const STALLED: Duration = Duration::from_secs(60);
    let url = format!("{}/events/{event}/bookings", target.bookings);
    let mut last_progress = Instant::now();
    let mut requests = 0;
    let mut booked = booked_seats(target, event).await?;
    while booked < capacity {
        if last_progress.elapsed() > STALLED {
            anyhow::bail!(
                "{event}: {booked} of {capacity} seats booked, none for {} s of one-by-one requests",
                STALLED.as_secs()
            );
        }
        let answer = target
            .client
            .post(&url)
            .header("x-user-id", "bench")
            .body(r#"{"seats":1}"#)
            .send()
            .await?;
        requests += 1;
        if answer.status() == reqwest::StatusCode::CREATED {
            booked += 1;
            last_progress = Instant::now();
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            booked = booked_seats(target, event).await?;
        }
    }
    Ok(requests)
}

/// The `q`-quantile (0 to 1) of `values`, sorted in place; 0 when empty.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let last = values.len() - 1;
    let rank = whole(q * f64::from(u32::try_from(last).unwrap_or(u32::MAX)));
    let index = usize::try_from(rank).unwrap_or(last).min(last);
    values[index]
}

/// `x` (a count or rank, not negative) rounded to a whole number; negative or not-a-number gives 0.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn whole(x: f64) -> u64 {
    // `as` saturates: NaN and negatives give 0, values above u64::MAX give u64::MAX.
    x.round() as u64
}

/// What one fixed-rate run measured.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RateRun {
    /// Bookings per second asked for.
    pub(crate) target: f64,
    /// Bookings accepted (201) per second over the run.
    pub(crate) accepted_per_second: f64,
    /// Answers other than 201, and requests that failed.
    pub(crate) failed: u64,
    /// Whether the event service's count stayed within 1 s of what the booking service had accepted,
    /// the whole run and until the last booking was counted.
    pub(crate) kept_up: bool,
    /// Propagation lag (booking answered → counted on the event service), median, milliseconds.
    pub(crate) lag_p50_ms: f64,
    /// The same, 99th percentile.
    pub(crate) lag_p99_ms: f64,
}

/// Books one seat of `event` (of [`HUGE_CAPACITY`] seats, not booked before) at `rate` per second for
/// `duration`, sampling the event service's count meanwhile and for up to 10 s after.
///
/// # Errors
/// When the event service stops answering.
pub(crate) async fn fixed_rate(
    target: &Target,
    event: &str,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<RateRun> {
    let accepted = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MOST_IN_FLIGHT));
    let url = format!("{}/events/{event}/bookings", target.bookings);
    let start = Instant::now();

    let sampler = {
        let (target, event) = (target.clone(), event.to_owned());
        let accepted = Arc::clone(&accepted);
        tokio::spawn(async move {
            let mut samples: Vec<(Instant, i64)> = Vec::new();
            let end = start + duration;
            loop {
                let available = seats_available(&target, &event).await?;
                let now = Instant::now();
                let counted = HUGE_CAPACITY - available;
                samples.push((now, counted));
                let total = i64::try_from(accepted.lock().map_or(0, |a| a.len())).unwrap_or(0);
                let done = now > end + Duration::from_secs(1) && counted >= total;
                if done || now > end + Duration::from_secs(10) {
                    return Ok::<_, anyhow::Error>(samples);
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        })
    };

    let mut sent = 0u64;
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while start.elapsed() < duration {
        ticks.tick().await;
        let due = whole(start.elapsed().as_secs_f64() * rate);
        while sent < due {
            let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
                // Saturated: the bookings that would be due now are not sent; the run falls behind.
                sent = due;
                break;
            };
            sent += 1;
            let (client, url) = (target.client.clone(), url.clone());
            let (accepted, failed) = (Arc::clone(&accepted), Arc::clone(&failed));
            tokio::spawn(async move {
                let answer = client
                    .post(&url)
                    .header("x-user-id", "bench")
                    .body(r#"{"seats":1}"#)
                    .send()
                    .await;
                let now = Instant::now();
                match answer {
                    Ok(a) if a.status() == reqwest::StatusCode::CREATED => {
                        if let Ok(mut accepted) = accepted.lock() {
                            accepted.push(now);
                        }
                    }
                    _ => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                drop(permit);
            });
        }
    }
    // Let the last requests finish.
    let _all = in_flight
        .acquire_many(u32::try_from(MOST_IN_FLIGHT).unwrap_or(u32::MAX))
        .await;
    let elapsed = start.elapsed().as_secs_f64();
    let samples = sampler.await.context("the sampler")??;
    let mut accepted = accepted.lock().map(|a| a.clone()).unwrap_or_default();
    accepted.sort();
    Ok(evaluate(
        rate,
        elapsed,
        &accepted,
        &samples,
        failed.load(std::sync::atomic::Ordering::Relaxed),
    ))
}

/// Judges a fixed-rate run from the acceptance times (sorted) and the samples of the event
/// service's count.
fn evaluate(
    rate: f64,
    elapsed: f64,
    accepted: &[Instant],
    samples: &[(Instant, i64)],
    failed: u64,
) -> RateRun {
    let behind_limit = Duration::from_secs(1);
    let accepted_before = |t: Instant| accepted.partition_point(|a| *a <= t);
    // Within 1 s: each sample counts at least what was accepted a second before it.
    let mut kept_up = samples.iter().all(|(t, counted)| {
        let due = t.checked_sub(behind_limit).map_or(0, &accepted_before);
        usize::try_from(*counted).unwrap_or(0) >= due
    });
    // ... and the last booking was counted within 1 s of being accepted.
    if let Some(last) = accepted.last() {
        kept_up &= samples.iter().any(|(t, counted)| {
            *t <= *last + behind_limit && usize::try_from(*counted).unwrap_or(0) >= accepted.len()
        });
    }
    let achieved = f64::from(u32::try_from(accepted.len()).unwrap_or(u32::MAX)) / elapsed;
    // The services must also take the rate: a run whose bookings were not accepted at the rate
    // asked for did not sustain it.
    kept_up &= achieved >= 0.95 * rate && failed == 0;
    let mut lags: Vec<f64> = accepted
        .iter()
        .enumerate()
        .filter_map(|(k, at)| {
            let wanted = i64::try_from(k + 1).ok()?;
            let index = samples.partition_point(|(_, counted)| *counted < wanted);
            let (counted_at, _) = samples.get(index)?;
            Some(counted_at.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    let never_counted = accepted.len() - lags.len();
    RateRun {
        target: rate,
        accepted_per_second: achieved,
        failed,
        kept_up: kept_up && never_counted == 0,
        lag_p50_ms: quantile(&mut lags, 0.5),
        lag_p99_ms: quantile(&mut lags, 0.99),
    }
}

/// Creates `count` events one after the other and measures for each the time from the event
/// service's 201 to the booking service knowing it; returns (p50, p99) in milliseconds.
///
/// # Errors
/// When an event is not created or not learned within 10 s.
pub(crate) async fn event_propagation(target: &Target, count: usize) -> anyhow::Result<(f64, f64)> {
    let mut lags = Vec::with_capacity(count);
    for i in 0..count {
        let event = create_event(target, &format!("propagation {i}"), 100).await?;
        let created = Instant::now();
        bookable(target, &event, Duration::from_secs(10)).await?;
        lags.push(created.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((quantile(&mut lags, 0.5), quantile(&mut lags, 0.99)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_a_second_late_is_kept_up_and_one_later_is_not() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 10 bookings, 100 ms apart.
        let accepted: Vec<Instant> = (0..10).map(|i| at(i * 100)).collect();
        // Counted 500 ms after each.
        let samples: Vec<(Instant, i64)> = (0..30)
            .map(|j| {
                let t = j * 50;
                let counted = accepted
                    .iter()
                    .filter(|a| **a + Duration::from_millis(500) <= at(t))
                    .count();
                (at(t), i64::try_from(counted).unwrap_or(0))
            })
            .collect();
        let run = evaluate(10.0, 1.0, &accepted, &samples, 0);
        assert!(run.kept_up);
        assert!((run.lag_p50_ms - 500.0).abs() < 1.0, "{run:?}");
        // Counted 1.2 s after each: not kept up.
        let late: Vec<(Instant, i64)> = (0..60)
            .map(|j| {
                let t = j * 50;
                let counted = accepted
                    .iter()
                    .filter(|a| **a + Duration::from_millis(1200) <= at(t))
                    .count();
                (at(t), i64::try_from(counted).unwrap_or(0))
            })
            .collect();
        assert!(!evaluate(10.0, 1.0, &accepted, &late, 0).kept_up);
        // Counted in time, but only half the rate accepted: not sustained.
        assert!(!evaluate(20.0, 1.0, &accepted, &samples, 0).kept_up);
    }

    #[test]
    fn quantiles_pick_by_rank() {
        let mut values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert!((quantile(&mut values, 0.5) - 51.0).abs() < 1e-9);
        assert!((quantile(&mut values, 0.99) - 99.0).abs() < 1e-9);
        assert!((quantile(&mut [], 0.5)).abs() < 1e-9);
    }
}
