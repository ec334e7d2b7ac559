//! What a booking, a cancellation and a consumed message cost the MongoDB store, in commands: the
//! services count every command they send (`myevents_mongodb_commands_total{database, command}`,
//! the driver's command monitoring), and this reads the counts before and after a known number of
//! operations. Unlike a time or a rate, the figure does not depend on the server's speed, so it is
//! what a real MongoDB will have to carry whatever the test server is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::load::{self, Target};
use crate::stand::Process;

/// Commands by name, summed over databases.
type Counts = BTreeMap<String, f64>;

/// Commands that write (and wait for the journal, as the stores' write concern asks).
const WRITES: [&str; 4] = ["insert", "update", "delete", "findAndModify"];

/// `process`'s command counts now, by command name.
///
/// # Errors
/// When its metrics cannot be read.
async fn counts(target: &Target, process: &Process) -> anyhow::Result<Counts> {
    let url = process
        .metrics_url
        .as_deref()
        .context("a process without a metrics address")?;
    let text = target.client.get(url).send().await?.text().await?;
    let mut counts = Counts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("myevents_mongodb_commands_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").context("a sample without a value")?;
        let command = labels
            .split(',')
            .find_map(|label| label.strip_prefix("command=\""))
            .and_then(|c| c.strip_suffix('"'))
            .context("a sample without a command label")?;
        *counts.entry(command.to_owned()).or_default() += value.trim().parse::<f64>()?;
    }
    Ok(counts)
}

/// Every process's counts now.
async fn snapshot(target: &Target, processes: &[Process]) -> anyhow::Result<Vec<Counts>> {
    let mut all = Vec::new();
    for process in processes {
        all.push(counts(target, process).await?);
    }
    Ok(all)
}

/// Waits (at most 60 s) until the event service shows `seats` available of `event`.
async fn until_available(target: &Target, event: &str, seats: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while load::seats_available(target, event).await? != seats {
        if Instant::now() > deadline {
            bail!("SeatsAvailable of {event} did not reach {seats} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// One line of the table: `(after - before) / per` by command, and the writes among them.
fn row(what: &str, name: &str, before: &Counts, after: &Counts, per: f64) -> String {
    let mut commands = String::new();
    let (mut total, mut writes) = (0.0, 0.0);
    for (command, value) in after {
        let delta = (value - before.get(command).copied().unwrap_or(0.0)) / per;
        if delta > 0.0 {
            let _ = write!(commands, "{command} {delta:.2}, ");
            total += delta;
            if WRITES.contains(&command.as_str()) {
                writes += delta;
            }
        }
    }
    format!(
        "| {what} | {name} | {total:.2} | {writes:.2} | {} |",
        commands.trim_end_matches(", ")
    )
}

/// Books `count` single seats of a new event one after the other, waits until the event service
/// has counted them, cancels them one after the other and waits again (and for the
/// reconciliation that retires the seat returns); returns a Markdown table of
/// the commands per operation and service (the idle background — the outbox relay's polls, the
/// claim's renewals, the reconciliation — is measured over as long a quiet window and shown apart).
///
/// # Errors
/// When a booking or a cancellation is not answered as expected, or the counts cannot be read.
pub(crate) async fn measure(
    target: &Target,
    processes: &[Process],
    count: i64,
) -> anyhow::Result<String> {
    let event = load::create_event(target, "store cost", count).await?;
    load::bookable(target, &event, Duration::from_secs(60)).await?;
    let started = Instant::now();
    let before = snapshot(target, processes).await?;
    let mut bookings = Vec::new();
    for _ in 0..count {
        let answer = target
            .client
            .post(format!("{}/events/{event}/bookings", target.bookings))
            .header("x-user-id", "bench")
            .body(r#"{"seats":1}"#)
            .send()
            .await?;
        let status = answer.status();
        let body: serde_json::Value = answer.json().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("booking answered {status}: {body}");
        }
        bookings.push(
            body["ID"]
                .as_str()
                .context("a booking without ID")?
                .to_owned(),
        );
    }
    until_available(target, &event, 0).await?;
    let booked = snapshot(target, processes).await?;
    for id in &bookings {
        let answer = target
            .client
            .delete(format!("{}/bookings/{id}", target.bookings))
            .header("x-user-id", "bench")
            .send()
            .await?;
        if answer.status() != reqwest::StatusCode::OK {
            bail!("cancelling {id} answered {}", answer.status());
        }
    }
    until_available(target, &event, count).await?;
    // The reconciliation retires the finished seat returns in bulk once they are older than its
    // grace: those commands belong to the cancellations too.
    tokio::time::sleep(Duration::from_secs(
        crate::stand::RECONCILE_GRACE_SECONDS + 2 * crate::stand::RECONCILE_INTERVAL_SECONDS,
    ))
    .await;
    let cancelled = snapshot(target, processes).await?;
    // The same time again with nothing asked: what the services send on their own.
    let busy = started.elapsed();
    tokio::time::sleep(busy).await;
    let idle = snapshot(target, processes).await?;

    let per = f64::from(u32::try_from(count).unwrap_or(u32::MAX));
    let mut out = format!(
        "\n| MongoDB commands ({count} bookings, then their cancellations, one at a time) | service | commands each | writes each | by command |\n| --- | --- | ---: | ---: | --- |\n"
    );
    for (i, process) in processes.iter().enumerate() {
        let (each_booking, each_cancel) = if process.name == "booking-service" {
            ("per booking", "per cancellation")
        } else {
            (
                "per `eventBooked` consumed",
                "per `bookingCancelled` consumed",
            )
        };
        writeln!(
            out,
            "{}",
            row(each_booking, process.name, &before[i], &booked[i], per)
        )?;
        writeln!(
            out,
            "{}",
            row(each_cancel, process.name, &booked[i], &cancelled[i], per)
        )?;
        let seconds = busy.as_secs_f64();
        writeln!(
            out,
            "{}",
            row(
                "idle, per second",
                process.name,
                &cancelled[i],
                &idle[i],
                seconds
            )
        )?;
    }
    writeln!(
        out,
        "\nThe operations took {:.1} s; the idle rows are what each service sent during as long a \
         quiet window afterwards, so about that many commands per second of the operations' rows are \
         background, not the operations'.",
        busy.as_secs_f64()
    )?;
    Ok(out)
}
