//! `myevents-bench`: starts the suite in a chosen configuration, drives load over HTTP and prints a
//! Markdown table (the one `BENCHMARKS.md` keeps).
//!
//! ```text
//! cargo run -p myevents-bench --release -- [--tiny] [--no-build] [--rates=R1,R2,...]
//!     [--lag-rate=R] [--rate-seconds=S] [--wrk-seconds=S] [--rounds=N] [--sell-out=SEATS]
//!     [--store-ops=N] <scenario>... | all
//! ```
//!
//! `--rates` replaces the booking rates (per second) the sustained-rate search tries in turn,
//! `--lag-rate` the rate the propagation lag is reported at (2,000 per second; a MongoDB-wire test
//! server that takes tens of bookings per second needs one it can take),
//! `--rate-seconds` the seconds of each step (30), `--wrk-seconds` the seconds of each `wrk` run (5),
//! `--rounds` how often each read route and its ceiling are measured in turn (3) and `--sell-out`
//! the seats of the event sold out (2,000), `--store-ops` the bookings (then cancellations) whose
//! MongoDB commands the `*-mongo` scenarios count (20; see [`store_cost`]). The `*-mongo`
//! scenarios have a plan of their own, sized to the MongoDB-wire test server: rates from 5 to 320
//! per second, the lag at 10 per second, a sell-out of 200 seats.
//!
//! Scenarios: `embedded` (`cargo run`: one process, in-process broker, in-memory stores),
//! `rabbitmq-memory`, `rabbitmq-mongo` (RabbitMQ and the SecantusDB MongoDB-wire test server) and
//! `kafka-mongo` (the Tansu Kafka-protocol test broker and SecantusDB; the binaries are built with
//! `--features kafka`). RabbitMQ is the machine's (`MYEVENTS_TEST_AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`); the test servers are started by the bench from
//! `MYEVENTS_TEST_SECANTUSD` and `MYEVENTS_TEST_TANSU` (default: where the test script installs them
//! under `.cache/`). Needs `wrk` (Debian package).
//!
//! Every throughput figure is also given as a ratio to a bare axum handler serving the same bytes
//! (see [`ceiling`]), measured alternately with the service in the same run, because absolute numbers
//! on a shared machine are noise. `--tiny` runs every measurement once, briefly, to check that the
//! bench works (the test command does); its figures mean nothing. The service binaries are built with
//! the bench's own profile first, unless `--no-build`.

mod ceiling;
mod load;
mod stand;
mod store_cost;
mod wrk;

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::ceiling::Ceiling;
use crate::load::{HUGE_CAPACITY, RateRun, Target};
use crate::stand::{Scenario, Stand};
use crate::wrk::{Wrk, WrkRun};

/// jemalloc, as in the service binaries, so that the ceiling runs on the same allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long and how often each measurement runs.
#[derive(Debug, Clone)]
struct Plan {
    /// Seconds per `wrk` run.
    wrk_seconds: u64,
    /// Connections `wrk` keeps open.
    connections: u32,
    /// Service and ceiling runs per read route, alternated.
    rounds: usize,
    /// Seconds per fixed-rate step.
    rate_seconds: u64,
    /// Booking rates tried in turn (per second) until one is not sustained.
    rates: Vec<f64>,
    /// The rate at which the propagation lag is reported.
    lag_rate: f64,
    /// Events created one by one to measure their propagation.
    new_events: usize,
    /// Seats of the event sold out to check that nothing is oversold.
    sell_out: i64,
    /// Bookings (then cancellations) whose MongoDB commands are counted, in the `*-mongo`
    /// scenarios (see [`store_cost`]).
    store_ops: i64,
}

impl Plan {
    /// The measurement `BENCHMARKS.md` reports.
    fn full() -> Self {
        Self {
            wrk_seconds: 5,
            connections: 50,
            rounds: 3,
            rate_seconds: 30,
            rates: vec![
                1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 8000.0, 10_000.0, 12_000.0,
            ],
            lag_rate: 2000.0,
            new_events: 200,
            sell_out: 2000,
            store_ops: 20,
        }
    }

    /// The measurement `BENCHMARKS.md` reports for the `*-mongo` scenarios, sized to the
    /// MongoDB-wire test server (SecantusDB, a Python server that takes tens of bookings per second):
    /// the same reads and `wrk` runs, a sell-out of 200 seats, booking rates from 5 to 320 per
    /// second, the propagation lag at 10 per second.
    fn stand_in() -> Self {
        Self {
            rates: vec![5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0],
            lag_rate: 10.0,
            sell_out: 200,
            ..Self::full()
        }
    }

    /// Everything once, for a second each: shows that the bench works (the test command runs it).
    fn tiny() -> Self {
        Self {
            wrk_seconds: 1,
            connections: 8,
            rounds: 1,
            rate_seconds: 1,
            rates: vec![100.0],
            lag_rate: 100.0,
            new_events: 5,
            sell_out: 50,
            store_ops: 3,
        }
    }
}

/// The value of `--name=value` among `args`.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
}

/// The plan for `scenario`: `--tiny`'s, the stand-in's for the `*-mongo` scenarios, else the full
/// one; then the options given on the command line.
///
/// # Errors
/// An option whose value does not parse.
fn plan(args: &[String], scenario: Scenario) -> anyhow::Result<Plan> {
    let mut plan = if args.iter().any(|a| a == "--tiny") {
        Plan::tiny()
    } else if scenario.uses_mongo() {
        Plan::stand_in()
    } else {
        Plan::full()
    };
    if let Some(rates) = option(args, "--rates") {
        plan.rates = rates
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .context("--rates=<per second>,<per second>,...")?;
    }
    if let Some(rate) = option(args, "--lag-rate") {
        plan.lag_rate = rate.parse().context("--lag-rate=<per second>")?;
    }
    if let Some(seconds) = option(args, "--wrk-seconds") {
        plan.wrk_seconds = seconds.parse().context("--wrk-seconds=<seconds>")?;
    }
    if let Some(rounds) = option(args, "--rounds") {
        plan.rounds = rounds.parse().context("--rounds=<count>")?;
    }
    if let Some(seconds) = option(args, "--rate-seconds") {
        plan.rate_seconds = seconds.parse().context("--rate-seconds=<seconds>")?;
    }
    if let Some(seats) = option(args, "--sell-out") {
        plan.sell_out = seats.parse().context("--sell-out=<seats>")?;
    }
    if let Some(count) = option(args, "--store-ops") {
        plan.store_ops = count.parse().context("--store-ops=<bookings>")?;
    }
    Ok(plan)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    if let [command, port, file, content_type] = args.as_slice()
        && command == "serve-bytes"
    {
        let body = std::fs::read(file).with_context(|| format!("reading {file}"))?;
        return runtime.block_on(ceiling::serve(port.parse()?, body, content_type.clone()));
    }
    let build = !args.iter().any(|a| a == "--no-build");
    let mut scenarios = Vec::new();
    for name in args.iter().filter(|a| !a.starts_with("--")) {
        if name == "all" {
            scenarios.extend(Scenario::ALL);
        } else {
            scenarios.push(Scenario::parse(name).with_context(|| {
                format!("unknown scenario {name}: embedded, rabbitmq-memory, rabbitmq-mongo, kafka-mongo or all")
            })?);
        }
    }
    if scenarios.is_empty() {
        bail!(
            "usage: myevents-bench [--tiny] [--no-build] [--rates=R1,R2,...] [--lag-rate=R] [--rate-seconds=S] \
             [--wrk-seconds=S] [--rounds=N] [--sell-out=SEATS] \
             <embedded|rabbitmq-memory|rabbitmq-mongo|kafka-mongo|all>..."
        );
    }
    let plans = scenarios
        .iter()
        .map(|s| Ok((*s, plan(&args, *s)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if build {
        build_binaries(scenarios.contains(&Scenario::KafkaMongo))?;
    }
    runtime.block_on(async {
        let mut out = String::new();
        for (scenario, plan) in plans {
            eprintln!("== {}", scenario.name());
            let report = run(scenario, plan).await.with_context(|| scenario.name())?;
            out.push_str(&report);
            print!("{report}");
        }
        Ok::<_, anyhow::Error>(out)
    })?;
    Ok(())
}

/// Builds the three service binaries with the bench's own profile (cargo from `CARGO`, as `cargo run`
/// sets it), with Kafka when a scenario needs it.
fn build_binaries(kafka: bool) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command.args([
        "build",
        "-p",
        "myevents",
        "-p",
        "myevents-event-service",
        "-p",
        "myevents-booking-service",
    ]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    if kafka {
        command.args([
            "--features",
            "myevents-event-service/kafka,myevents-booking-service/kafka",
        ]);
    }
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("building the service binaries failed");
    }
    Ok(())
}

/// A read route measured against the ceiling.
struct ReadRow {
    route: String,
    body_bytes: usize,
    ours: WrkRun,
    ceiling: WrkRun,
}

/// The median of `runs` by request rate.
fn median(mut runs: Vec<WrkRun>) -> WrkRun {
    runs.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

/// One scenario's run: whom it loads, with which `wrk` settings and plan.
struct Bench {
    target: Target,
    wrk: Wrk,
    plan: Plan,
    /// Where the ceiling's body file goes.
    scratch: std::path::PathBuf,
}

impl Bench {
    /// Measures `GET base+path` and the ceiling serving the same bytes, alternately. With
    /// `revalidate`, every request sends the answer's `ETag` back in `If-None-Match` (a 304 without
    /// a body), and the ceiling serves an empty body.
    async fn read_route(
        &self,
        base: &str,
        path: &str,
        label: &str,
        revalidate: bool,
    ) -> anyhow::Result<ReadRow> {
        let answer = self
            .target
            .client
            .get(format!("{base}{path}"))
            .send()
            .await?;
        let content_type = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let header = match answer.headers().get(reqwest::header::ETAG) {
            Some(tag) if revalidate => Some(format!("If-None-Match: {}", tag.to_str()?)),
            None if revalidate => bail!("GET {path} answered no ETag"),
            _ => None,
        };
        let body = answer.bytes().await?;
        let body = if revalidate { Default::default() } else { body };
        let file = self.scratch.join("ceiling-body");
        std::fs::write(&file, &body)?;
        let ceiling = Ceiling::start(&file, &content_type).await?;
        let (mut ours, mut bare) = (Vec::new(), Vec::new());
        for _ in 0..self.plan.rounds {
            let url = format!("{base}{path}");
            ours.push(self.wrk.get(&url, header.as_deref()).await?);
            bare.push(
                self.wrk
                    .get(&format!("{}{path}", ceiling.url), None)
                    .await?,
            );
        }
        Ok(ReadRow {
            route: label.to_owned(),
            body_bytes: body.len(),
            ours: median(ours),
            ceiling: median(bare),
        })
    }

    /// Books an event of `plan.sell_out` seats with `wrk` runs until the booking service holds
    /// bookings for all of them (at most 600 runs; a slow store answers some requests 503 on the
    /// way); then checks that it holds bookings for exactly that many seats, none more (wrk's own
    /// count misses requests in flight when its window closes), and that the event service counts
    /// the event sold out (`SeatsAvailable` 0, never below).
    async fn sell_out(&self) -> anyhow::Result<String> {
        let capacity = self.plan.sell_out;
        let event = load::create_event(&self.target, "sell-out", capacity).await?;
        load::bookable(&self.target, &event, Duration::from_secs(30)).await?;
        let mut requests = 0;
        for _ in 0..600 {
            let run = self
                .wrk
                .post(
                    &self.target.bookings,
                    &[format!("/events/{event}/bookings")],
                )
                .await?;
            requests += run.requests;
            if run.created == 0 || load::booked_seats(&self.target, &event).await? >= capacity {
                break;
            }
        }
        // wrk's window closes on requests in flight, whose seat holds the booking service keeps
        // until its reconciliation releases them (after `RECONCILE_GRACE`): while every seat is
        // held but not all are booked, wrk only meets 409s. The last seats are taken one request
        // at a time, none cut off, as the holds come free.
        requests += load::book_one_by_one(&self.target, &event, capacity).await?;
        let mut available = load::seats_available(&self.target, &event).await?;
        for _ in 0..300 {
            if available <= 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            available = load::seats_available(&self.target, &event).await?;
        }
        let booked = load::booked_seats(&self.target, &event).await?;
        if booked != capacity || available != 0 {
            bail!(
                "sell-out of {capacity} seats after {requests} requests: bookings hold {booked} \
                 seats, SeatsAvailable {available}: oversold or lost"
            );
        }
        Ok(format!(
            "- sell-out: {requests} requests for {capacity} seats, bookings for {booked} seats, SeatsAvailable 0: nothing oversold"
        ))
    }

    /// Books a fresh event at `rate` per second for the plan's step duration, then waits (at most
    /// 300 s) until the event service has counted every booking of it, so that a step that was not
    /// kept up leaves no backlog to the next measurement.
    async fn fixed_rate_step(&self, rate: f64, step: usize) -> anyhow::Result<RateRun> {
        let event =
            load::create_event(&self.target, &format!("rate {step}"), HUGE_CAPACITY).await?;
        load::bookable(&self.target, &event, Duration::from_secs(30)).await?;
        let run = load::fixed_rate(
            &self.target,
            &event,
            rate,
            Duration::from_secs(self.plan.rate_seconds),
        )
        .await?;
        let settling = load::settled(&self.target, &event, Duration::from_secs(300)).await?;
        eprintln!("   {rate}/s: {run:?}, every booking counted {settling:?} after the run");
        Ok(run)
    }
}

/// Runs every measurement of `scenario` and returns its section of the report.
async fn run(scenario: Scenario, plan: Plan) -> anyhow::Result<String> {
    let scratch = std::env::temp_dir().join(format!("myevents-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let stand = Stand::start(scenario, &scratch).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle: Vec<(String, f64, f64)> = stand
        .processes
        .iter()
        .map(|p| {
            (
                p.name.to_owned(),
                p.ready_ms,
                p.resident_mib().unwrap_or(0.0),
            )
        })
        .collect();
    let bench = Bench {
        target: Target {
            client: reqwest::Client::new(),
            events: stand.events.clone(),
            bookings: stand.bookings.clone(),
        },
        wrk: Wrk {
            threads: 2,
            connections: plan.connections,
            duration: Duration::from_secs(plan.wrk_seconds),
        },
        plan,
        scratch: scratch.clone(),
    };
    let target = &bench.target;
    let plan = &bench.plan;
    let events = target.events.as_str();

    // Reads: one event, then a hundred.
    let first = load::create_event(target, "bench 0", HUGE_CAPACITY).await?;
    let mut reads = vec![
        bench
            .read_route(events, "/events", "GET /events (1 event)", false)
            .await?,
        bench
            .read_route(
                events,
                &format!("/events/{first}"),
                "GET /events/{id}",
                false,
            )
            .await?,
        bench
            .read_route(
                events,
                "/events",
                "GET /events (1 event), 304 to `If-None-Match`",
                true,
            )
            .await?,
    ];
    let mut many = vec![first.clone()];
    for i in 1..100 {
        many.push(load::create_event(target, &format!("bench {i}"), HUGE_CAPACITY).await?);
    }
    reads.push(
        bench
            .read_route(events, "/events", "GET /events (100 events)", false)
            .await?,
    );

    // Bookings: spread over 100 events, then all on one, then a sell-out.
    for event in &many {
        load::bookable(target, event, Duration::from_secs(30)).await?;
    }
    let paths: Vec<String> = many
        .iter()
        .map(|e| format!("/events/{e}/bookings"))
        .collect();
    let spread = bench.wrk.post(&target.bookings, &paths).await?;
    let contended = bench.wrk.post(&target.bookings, &paths[..1]).await?;
    let sold_out = bench.sell_out().await?;

    // Sustained end-to-end rate, and the propagation lag at the plan's fixed rate.
    let mut steps: Vec<RateRun> = Vec::new();
    for (i, rate) in plan.rates.iter().enumerate() {
        let step = bench.fixed_rate_step(*rate, i).await?;
        steps.push(step);
        if !step.kept_up {
            break;
        }
    }
    let lag = match steps
        .iter()
        .find(|s| (s.target - plan.lag_rate).abs() < 0.5)
    {
        Some(step) => *step,
        None => bench.fixed_rate_step(plan.lag_rate, 99).await?,
    };
    let sustained = steps
        .iter()
        .filter(|s| s.kept_up)
        .map(|s| s.target)
        .fold(0.0, f64::max);
    let (event_p50, event_p99) = load::event_propagation(target, plan.new_events).await?;
    let store_cost = if scenario.uses_mongo() {
        Some(store_cost::measure(target, &stand.processes, plan.store_ops).await?)
    } else {
        None
    };

    let after: Vec<f64> = stand
        .processes
        .iter()
        .map(|p| p.resident_mib().unwrap_or(0.0))
        .collect();
    let cpu: Vec<f64> = stand
        .processes
        .iter()
        .map(|p| p.cpu_seconds().unwrap_or(0.0))
        .collect();
    drop(stand);
    let _ = std::fs::remove_dir_all(&scratch);

    let mut out = String::new();
    writeln!(out, "\n### {}\n", scenario.name())?;
    writeln!(
        out,
        "| read (wrk -t2 -c{}, {} s × {}, median) | body bytes | req/s | p50 ms | p99 ms | ceiling req/s | ceiling p99 ms | **ratio** | p99 / ceiling's |",
        plan.connections, plan.wrk_seconds, plan.rounds
    )?;
    writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for row in &reads {
        writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | **{:.2}** | {:.2} |",
            row.route,
            row.body_bytes,
            row.ours.requests_per_second,
            row.ours.p50_ms,
            row.ours.p99_ms,
            row.ceiling.requests_per_second,
            row.ceiling.p99_ms,
            row.ours.requests_per_second / row.ceiling.requests_per_second,
            row.ours.p99_ms / row.ceiling.p99_ms.max(0.001),
        )?;
    }
    writeln!(
        out,
        "\n| booking POST (wrk -t2 -c{}, {} s) | accepted/s | p50 ms | p99 ms | other answers |",
        plan.connections, plan.wrk_seconds
    )?;
    writeln!(out, "| --- | ---: | ---: | ---: | ---: |")?;
    for (label, run) in [
        ("100 events, no contention", spread),
        ("one event, contention", contended),
    ] {
        writeln!(
            out,
            "| {label} | {:.0} | {:.2} | {:.2} | {} |",
            f64::from(u32::try_from(run.created).unwrap_or(u32::MAX))
                / f64::from(u32::try_from(plan.wrk_seconds).unwrap_or(1)),
            run.p50_ms,
            run.p99_ms,
            run.requests - run.created + run.socket_errors,
        )?;
    }
    writeln!(out, "\n{sold_out}")?;
    if let Some(table) = &store_cost {
        writeln!(out, "{table}")?;
    }
    writeln!(
        out,
        "\n| end to end (open loop, one event, {} s per step) | accepted/s | kept within 1 s | lag p50 ms | lag p99 ms | failed |",
        plan.rate_seconds
    )?;
    writeln!(out, "| --- | ---: | --- | ---: | ---: | ---: |")?;
    for step in steps.iter().chain(
        std::iter::once(&lag).filter(|l| !steps.iter().any(|s| (s.target - l.target).abs() < 0.5)),
    ) {
        writeln!(
            out,
            "| {:.0}/s | {:.0} | {} | {:.1} | {:.1} | {} |",
            step.target,
            step.accepted_per_second,
            if step.kept_up { "yes" } else { "**no**" },
            step.lag_p50_ms,
            step.lag_p99_ms,
            step.failed
        )?;
    }
    writeln!(
        out,
        "\n- **sustained end-to-end booking rate: {sustained:.0}/s**; propagation lag at {:.0}/s: p50 {:.1} ms, p99 {:.1} ms",
        plan.lag_rate, lag.lag_p50_ms, lag.lag_p99_ms
    )?;
    writeln!(
        out,
        "- new event → bookable ({} events): p50 {event_p50:.1} ms, p99 {event_p99:.1} ms",
        plan.new_events
    )?;
    for (((name, ready, idle_mib), after_mib), cpu) in idle.iter().zip(&after).zip(&cpu) {
        writeln!(
            out,
            "- {name}: ready {ready:.0} ms after start; resident {idle_mib:.1} MiB idle, {after_mib:.1} MiB after the runs; {cpu:.1} s CPU in all"
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn the_mongo_scenarios_get_the_stand_ins_plan_and_options_win() {
        let memory = plan(&args(&["rabbitmq-memory"]), Scenario::RabbitMqMemory).unwrap();
        assert_eq!((memory.sell_out, memory.rates[0]), (2000, 1000.0));
        for scenario in [Scenario::RabbitMqMongo, Scenario::KafkaMongo] {
            let stand_in = plan(&args(&["x"]), scenario).unwrap();
            assert_eq!((stand_in.sell_out, stand_in.rates[0]), (200, 5.0));
            assert!((stand_in.lag_rate - 10.0).abs() < f64::EPSILON);
        }
        let given = plan(
            &args(&["--rates=7,8", "--sell-out=30", "--lag-rate=8"]),
            Scenario::KafkaMongo,
        )
        .unwrap();
        assert_eq!((given.sell_out, given.rates), (30, vec![7.0, 8.0]));
        assert_eq!(
            plan(&args(&["--tiny"]), Scenario::RabbitMqMongo)
                .unwrap()
                .sell_out,
            50
        );
        assert!(plan(&args(&["--sell-out=many"]), Scenario::Embedded).is_err());
    }
}
