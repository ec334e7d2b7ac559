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

/// One connection's application: the stack `App` made for the connection, which hyper asks for one
/// answer at a time (HTTP/1.1 answers requests in order), with the peer's address in every request
/// (axum's `ConnectInfo`, for the rate limit). hyper calls a service through a shared reference, and
/// `hyper-util`'s adapter clones the whole stack for every request (an allocation, and reference
/// counts every worker thread shares); this one calls the connection's own stack when it is ready
/// (the services' stacks always are: readiness is waited for inside the routes), and a clone of it
/// only otherwise.
struct ConnectionService {
    app: std::cell::RefCell<App>,
    peer: std::net::SocketAddr,
}

impl ConnectionService {
    fn new(app: App, peer: std::net::SocketAddr) -> Self {
        Self {
            app: std::cell::RefCell::new(app),
            peer,
        }
    }
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        <App as tower::Service<axum::extract::Request>>::Future,
        tower::util::Oneshot<App, axum::extract::Request>,
    >;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        use futures_util::FutureExt;
        use tower::{Service, ServiceExt};
        let mut request = request.map(axum::body::Body::new);
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        // Not borrowed elsewhere: hyper calls one request at a time, and nothing here waits.
        let mut app = self.app.borrow_mut();
        if matches!(app.ready().now_or_never(), Some(Ok(_))) {
            return futures_util::future::Either::Left(app.call(request));
        }
        // Busy: the stack that was asked is dropped, with any place it took in a queue (one it kept
        // without polling would hold the capacity it was given), and the request waits in a
        // clone of its own.
        let fresh = app.clone();
        drop(std::mem::replace(&mut *app, fresh.clone()));
        futures_util::future::Either::Right(fresh.oneshot(request))
    }
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
            let service = ConnectionService::new(app.clone(), peer);
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

    /// Sends `requests` on one keep-alive connection to `addr` and returns the bodies of the answers.
    async fn keep_alive(addr: std::net::SocketAddr, requests: usize) -> Vec<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut bodies = Vec::new();
        for i in 0..requests {
            let close = if i + 1 == requests {
                "connection: close\r\n"
            } else {
                ""
            };
            let request = format!("GET /peer HTTP/1.1\r\nhost: x\r\n{close}\r\n");
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut answer = Vec::new();
            // One answer: its head, then a body of the `content-length` it names.
            loop {
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await.expect("read");
                answer.push(byte[0]);
                if answer.ends_with(b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&answer).to_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            let mut body = vec![0u8; length];
            stream.read_exact(&mut body).await.expect("body");
            bodies.push(String::from_utf8_lossy(&body).into_owned());
        }
        bodies
    }

    #[tokio::test]
    async fn every_request_of_a_connection_carries_its_peer_and_a_busy_stack_is_waited_for() {
        // One request at a time in the whole application: a second connection's stack is not ready
        // while the first connection's request runs, and its request waits for it.
        let routes = axum::Router::new().route(
            "/peer",
            get(
                |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                    std::net::SocketAddr,
                >| async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    peer.to_string()
                },
            ),
        );
        let app = App::new(
            tower::ServiceBuilder::new()
                .concurrency_limit(1)
                .service(routes),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = ServerConfig::ephemeral();
        let serving = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let listener = Listener {
                tcp: listener,
                tls: None,
            };
            serve(listener, app, shutdown, Draining::default(), &server).await
        });
        let (first, second) = tokio::join!(keep_alive(addr, 3), keep_alive(addr, 3));
        for bodies in [first, second] {
            assert_eq!(bodies.len(), 3);
            assert!(bodies.iter().all(|peer| peer == &bodies[0]), "{bodies:?}");
            assert!(bodies[0].starts_with("127.0.0.1:"), "{bodies:?}");
        }
        stop.send(()).expect("signal");
        serving.await.expect("task").expect("served");
    }
}
