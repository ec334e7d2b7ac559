//! Waiting without fixed sleeps: [`eventually`] polls a condition until it holds or a deadline
//! passes.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 25 ms until it returns true (then `true`) or `deadline` passes (then `false`).
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
