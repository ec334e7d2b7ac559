//! Closed-loop HTTP load with `wrk` (Debian package `wrk`): a fixed number of connections sending
//! requests back to back, its summary parsed from the text it prints with `--latency`.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WrkRun {
    /// Answered requests per second, all statuses.
    pub(crate) requests_per_second: f64,
    /// Median latency, in milliseconds.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub(crate) p99_ms: f64,
    /// Requests answered in all.
    pub(crate) requests: u64,
    /// Answers whose status was 201 Created (counted by the Lua script of [`Wrk::post`]).
    pub(crate) created: u64,
    /// Answers with a status other than 2xx or 3xx.
    pub(crate) non_2xx: u64,
    /// Socket errors (connect, read, write, time-out).
    pub(crate) socket_errors: u64,
}

/// How `wrk` is run: threads, connections and seconds per run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wrk {
    pub(crate) threads: u32,
    pub(crate) connections: u32,
    pub(crate) duration: Duration,
}

/// A Lua script for `wrk`: POSTs `{"seats":1}` as the book's frontend does (a string body, no JSON
/// content type) with a user id, to one of the paths listed in `BENCH_PATHS` (space-separated, one
/// picked at random per request), and counts 201 answers per thread for the summary.
const POST_SCRIPT: &str = r#"
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "/", "%S+") do paths[#paths + 1] = p end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) created = 0; math.randomseed(os.time() + math.floor(os.clock() * 1000000)) end
function request()
  return wrk.format("POST", paths[math.random(#paths)], {["X-User-Id"] = "bench"}, '{"seats":1}')
end
function response(status, headers, body) if status == 201 then created = created + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("created") end
  io.write(string.format("created %d\n", total))
end
"#;

impl Wrk {
    /// `GET url`, with `header` (`Name: value`) when given.
    ///
    /// # Errors
    /// When `wrk` cannot be started or its output is not understood.
    pub(crate) async fn get(&self, url: &str, header: Option<&str>) -> anyhow::Result<WrkRun> {
        self.run(url, None, &[], header).await
    }

    /// `POST {"seats":1}` to `base` + one of `paths` at random per request.
    ///
    /// # Errors
    /// When `wrk` cannot be started or its output is not understood.
    pub(crate) async fn post(&self, base: &str, paths: &[String]) -> anyhow::Result<WrkRun> {
        let script =
            std::env::temp_dir().join(format!("myevents-bench-{}.lua", std::process::id()));
        std::fs::write(&script, POST_SCRIPT).context("writing the wrk script")?;
        let script = script.to_string_lossy().into_owned();
        self.run(
            base,
            Some(&script),
            &[("BENCH_PATHS", paths.join(" "))],
            None,
        )
        .await
    }

    async fn run(
        &self,
        url: &str,
        script: Option<&str>,
        env: &[(&str, String)],
        header: Option<&str>,
    ) -> anyhow::Result<WrkRun> {
        let mut command = Command::new("wrk");
        command
            .arg(format!("-t{}", self.threads))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.duration.as_secs().max(1)))
            .arg("--latency");
        if let Some(script) = script {
            command.args(["-s", script]);
        }
        if let Some(header) = header {
            command.args(["-H", header]);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command
            .arg(url)
            .output()
            .await
            .context("running wrk (apt-get install wrk)")?;
        if !output.status.success() {
            bail!(
                "wrk failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        parse(&String::from_utf8_lossy(&output.stdout))
    }
}

/// A `wrk` latency such as `812.00us`, `1.25ms` or `2.01s`, in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number / 1000.0),
        "ms" => Some(number),
        "s" => Some(number * 1000.0),
        "m" => Some(number * 60_000.0),
        _ => None,
    }
}

/// Reads the summary `wrk --latency` prints (and the `created N` line of the POST script).
fn parse(text: &str) -> anyhow::Result<WrkRun> {
    let mut run = WrkRun::default();
    let mut rate_seen = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", value] => run.p50_ms = millis(value).unwrap_or_default(),
            ["99%", value] => run.p99_ms = millis(value).unwrap_or_default(),
            ["Requests/sec:", value] => {
                run.requests_per_second = value.parse()?;
                rate_seen = true;
            }
            [count, "requests", "in", ..] => run.requests = count.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", count] => run.non_2xx = count.parse()?,
            ["created", count] => run.created = count.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                run.socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    if !rate_seen {
        bail!("wrk printed no request rate:\n{text}");
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_of_wrk() {
        let text = "Running 1s test @ http://127.0.0.1:8181/events
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.21ms  512.00us  12.00ms   80.00%
  Latency Distribution
     50%  812.00us
     75%    1.50ms
     90%    2.00ms
     99%    3.25ms
  51234 requests in 1.00s, 20.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 17
Requests/sec:  51234.56
Transfer/sec:     20.00MB
created 51217
";
        let run = parse(text).expect("parse");
        assert!((run.p50_ms - 0.812).abs() < 1e-9);
        assert!((run.p99_ms - 3.25).abs() < 1e-9);
        assert!((run.requests_per_second - 51_234.56).abs() < 1e-9);
        assert_eq!(run.requests, 51_234);
        assert_eq!(run.non_2xx, 17);
        assert_eq!(run.created, 51_217);
        assert_eq!(run.socket_errors, 3);
        assert!(parse("nothing").is_err());
    }
}
