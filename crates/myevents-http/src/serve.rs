//! Graceful serving: HTTP/1.1 (HTTPS with a [`crate::tls::TlsTerminator`]) with connection limits,
//! and a shutdown that drains requests in flight.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::layers::App;
use crate::tls::TlsTerminator;

/// Whether the service is shutting down (readiness then answers 503). Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Marks the service as shutting down.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether it is shutting down.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A bound listener, and the TLS that terminates on it (HTTPS) if configured.
#[derive(Debug)]
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// TLS for every connection (see [`crate::tls`]); `None` for plain HTTP.
    pub tls: Option<TlsTerminator>,
}

/// Serves `app` on `listener` (HTTP/1.1, hyper; HTTPS when the listener has TLS, each
/// handshake bounded by `server.header_read_timeout`) until `shutdown` resolves; then marks `draining`
/// (readiness 503), keeps accepting for `server.shutdown_delay`, stops accepting and lets requests in
/// progress finish, waiting at most [`ServerConfig::request_drain_bound`] after the signal.
///
/// Connection limits: at most `server.max_connections` open at once (more wait in the listen
/// backlog), and a connection whose next request's headers do not arrive within
/// `server.header_read_timeout` (a slow client, or an idle keep-alive connection) is closed.
///
/// # Errors
/// None today: a failed `accept` (e.g. out of file descriptors) is logged and retried. The
/// `Result` stays for the callers' sake.
pub async fn serve(
    listener: Listener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
    draining: Draining,
    server: &ServerConfig,
) -> std::io::Result<()> {
    let delay = server.shutdown_delay;
    let signalled = std::sync::OnceLock::new();
    // Resolves `delay` after the signal: requests are still accepted meanwhile, so that load
    // balancers can stop sending new ones.
    let stop = async {
        shutdown.await;
        let _ = signalled.set(tokio::time::Instant::now());
        draining.start();
        tracing::info!(
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "shutting down: readiness is 503; finishing requests in flight"
        );
        tokio::time::sleep(delay).await;
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(server.header_read_timeout);
    let connections = Arc::new(tokio::sync::Semaphore::new(server.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let accepting = async {
        loop {
            // The semaphore is never closed; if it were, serving would end as on a signal.
            let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
                break;
            };
            let (stream, peer) = match listener.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, and go on serving the others.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            // The peer's address, for the rate limit (as axum's `into_make_service_with_connect_info`).
            let service =
                hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
                    app.clone(),
                    move |mut request: http::Request<hyper::body::Incoming>| {
                        request
                            .extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        request.map(axum::body::Body::new)
                    },
                ));
            let watcher = graceful.watcher();
            let http = http.clone();
            let tls = listener.tls.clone();
            let handshake_timeout = server.header_read_timeout;
            tokio::spawn(async move {
                // A client that goes away mid-request (or mid-handshake) is not the server's error.
                match tls {
                    None => {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = watcher.watch(http.serve_connection(io, service)).await;
                    }
                    Some(tls) => {
                        let handshake = tls.acceptor().accept(stream);
                        if let Ok(Ok(stream)) =
                            tokio::time::timeout(handshake_timeout, handshake).await
                        {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = watcher.watch(http.serve_connection(io, service)).await;
                        }
                    }
                }
                drop(permit);
            });
        }
    };
    tokio::select! {
        () = accepting => {}
        () = stop => {}
    }
    drop(listener.tcp);
    let elapsed = signalled
        .get()
        .map_or(Duration::ZERO, tokio::time::Instant::elapsed);
    let timeout = server.request_drain_bound().saturating_sub(elapsed);
    if tokio::time::timeout(timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight at their share of SHUTDOWN_TIMEOUT; stopping anyway"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    fn app() -> App {
        App::new(axum::Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        ))
    }

    #[tokio::test]
    async fn shutdown_marks_draining_and_lets_every_request_in_flight_finish() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let draining = Draining::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = ServerConfig::ephemeral();
        let serving = tokio::spawn({
            let draining = draining.clone();
            async move {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                serve(
                    Listener {
                        tcp: listener,
                        tls: None,
                    },
                    app(),
                    shutdown,
                    draining,
                    &server,
                )
                .await
            }
        });
        let requests: Vec<_> = (0..10)
            .map(|_| {
                tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    stream
                        .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                        .await
                        .expect("write");
                    let mut answer = String::new();
                    stream.read_to_string(&mut answer).await.expect("read");
                    answer
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).expect("signal");
        for request in requests {
            let answer = request.await.expect("task");
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.ends_with("done"), "{answer}");
        }
        serving.await.expect("task").expect("served");
        assert!(draining.is_draining());
    }
}
