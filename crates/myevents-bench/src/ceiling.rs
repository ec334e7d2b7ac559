//! The ceiling the services are measured against: a bare axum handler serving fixed bytes with the
//! same content type, on the same runtime and allocator as the services, in a process of its own.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::http::header;
use tokio::process::{Child, Command};

/// Serves `body` as `content_type` at every path on 127.0.0.1:`port`, until killed.
///
/// # Errors
/// When the port cannot be bound.
pub(crate) async fn serve(port: u16, body: Vec<u8>, content_type: String) -> anyhow::Result<()> {
    let body = axum::body::Bytes::from(body);
    let handler = move || {
        let (body, content_type) = (body.clone(), content_type.clone());
        async move { ([(header::CONTENT_TYPE, content_type)], body) }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// A running ceiling server; killed when dropped.
pub(crate) struct Ceiling {
    /// Its base URL.
    pub(crate) url: String,
    _child: Child,
}

impl Ceiling {
    /// Starts this binary's `serve-bytes` on a free port, serving the bytes of `file`.
    ///
    /// # Errors
    /// When it cannot be started or does not answer within 10 s.
    pub(crate) async fn start(file: &std::path::Path, content_type: &str) -> anyhow::Result<Self> {
        let port = crate::stand::free_port()?;
        let child = Command::new(std::env::current_exe()?)
            .arg("serve-bytes")
            .arg(port.to_string())
            .arg(file)
            .arg(content_type)
            .kill_on_drop(true)
            .spawn()
            .context("starting the ceiling server")?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(&url).await.is_err() {
            if Instant::now() > deadline {
                bail!("the ceiling server did not answer within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Self { url, _child: child })
    }
}
