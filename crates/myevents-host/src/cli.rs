//! The service binaries' command line, and the HTTP probe behind `healthcheck`.
//!
//! ```text
//! <service>                                    serve (configuration from the environment)
//! <service> healthcheck [PATH]                 GET PATH (default /readyz) on the service's own
//!                                              listener; exit 0 on a 2xx answer, else 1
//! <service> version                            print the build (JSON) and exit
//! <service> dead-letters replay [--idle-seconds N]
//! <service> token --sub USER [--roles R1,R2] [--ttl SECONDS]
//!                                              print a development token signed with
//!                                              AUTH_HS256_SECRET (AUTH_MODE=jwt), then exit
//! ```
//!
//! `healthcheck` exists for container images without a shell or HTTP client (distroless): Docker's
//! `HEALTHCHECK` and compose's `healthcheck` run the binary itself. With `TLS_CERT_FILE` and
//! `TLS_KEY_FILE` set, as for the service, it probes over HTTPS.
//!
//! ```no_run
//! # async fn demo() {
//! use myevents_host::cli::{Command, probe};
//! let command = Command::parse(std::env::args().skip(1)).unwrap_or_else(|usage| {
//!     eprintln!("{usage}");
//!     std::process::exit(2);
//! });
//! if let Command::Healthcheck { path } = command {
//!     let addr = "127.0.0.1:8181".parse().unwrap();
//!     std::process::exit(i32::from(probe(addr, &path, None).await.is_err()));
//! }
//! # }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use myevents_http::auth::{AuthConfig, mint_token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a service binary was asked to do on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No arguments: serve.
    Serve,
    /// `healthcheck [PATH]`: probe the service's own listener (`PATH` defaults to `/readyz`).
    Healthcheck {
        /// The path to `GET`, starting with `/`.
        path: String,
    },
    /// `version`: print the `myevents_platform::build_info::BuildInfo` as JSON and exit.
    Version,
    /// `dead-letters replay [--idle-seconds N]`: replay the service's dead letters, print the
    /// `myevents_messaging::dead_letters::ReplayReport` as JSON on standard output, and exit.
    ReplayDeadLetters {
        /// Stop after this long without a dead letter (`--idle-seconds`, default 5 s).
        idle: Duration,
    },
    /// `token --sub USER [--roles R1,R2] [--ttl SECONDS]`: print a development token for `USER`
    /// with those roles, valid for `SECONDS` (default 3600), signed with the HS256 secret of the
    /// configuration (see `myevents_http::auth::mint_token`).
    Token {
        /// The token's `sub`.
        subject: String,
        /// Its roles.
        roles: Vec<String>,
        /// How long it is valid.
        ttl: Duration,
    },
}

/// The usage text of the service binaries.
pub const USAGE: &str =
    "usage: <service> [healthcheck [PATH] | version | dead-letters replay [--idle-seconds N] \
     | token --sub USER [--roles R1,R2] [--ttl SECONDS]]
  (no arguments)         serve (configuration from the environment, see docs/configuration.md)
  healthcheck [PATH]     GET PATH (default /readyz) on the service's listener; exit 0 on 2xx, else 1
  version                print the version and git commit of this build as JSON, then exit
  dead-letters replay    publish the service's dead letters again, then exit
  token --sub USER       print a development token signed with AUTH_HS256_SECRET, then exit";

impl Command {
    /// Parses the arguments after the program name.
    ///
    /// # Errors
    /// The usage text with what was wrong, for anything else.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let args: Vec<String> = args.into_iter().collect();
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            [] => Ok(Self::Serve),
            ["healthcheck"] => Ok(Self::Healthcheck {
                path: "/readyz".to_owned(),
            }),
            ["healthcheck", path]
                if path.starts_with('/') && !path.contains(char::is_whitespace) =>
            {
                Ok(Self::Healthcheck {
                    path: (*path).to_owned(),
                })
            }
            ["version"] => Ok(Self::Version),
            ["dead-letters", "replay"] => Ok(Self::ReplayDeadLetters {
                idle: Duration::from_secs(5),
            }),
            ["dead-letters", "replay", "--idle-seconds", seconds] => seconds
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(|s| Self::ReplayDeadLetters {
                    idle: Duration::from_secs(s),
                })
                .ok_or_else(|| format!("--idle-seconds wants a whole number above 0\n{USAGE}")),
            ["token", options @ ..] => parse_token(options),
            _ => Err(format!("unknown arguments {args:?}\n{USAGE}")),
        }
    }
}

fn parse_token(options: &[&str]) -> Result<Command, String> {
    let mut subject = None;
    let mut roles = Vec::new();
    let mut ttl = Duration::from_secs(3600);
    for pair in options.chunks(2) {
        match pair {
            ["--sub", user] => subject = Some((*user).to_owned()),
            ["--roles", list] => {
                roles = list
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            ["--ttl", seconds] => {
                ttl = seconds
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs)
                    .ok_or_else(|| {
                        format!("--ttl wants a whole number of seconds above 0\n{USAGE}")
                    })?;
            }
            _ => return Err(format!("unknown token options {options:?}\n{USAGE}")),
        }
    }
    let subject = subject.ok_or_else(|| format!("token needs --sub USER\n{USAGE}"))?;
    Ok(Command::Token {
        subject,
        roles,
        ttl,
    })
}

/// Prints the development token `command` (a [`Command::Token`]) asks for, signed as `auth` says.
/// Returns the exit status: 0 with the token on standard output, 1 with the reason on standard
/// error (no HS256 secret configured, a subject that is not a user id).
pub fn print_token(command: &Command, auth: &AuthConfig) -> std::process::ExitCode {
    let Command::Token {
        subject,
        roles,
        ttl,
    } = command
    else {
        return std::process::ExitCode::FAILURE;
    };
    let minted = match auth {
        AuthConfig::Jwt(config) => {
            mint_token(config, subject, roles, *ttl).map_err(|e| e.to_string())
        }
        AuthConfig::Off => Err(
            "AUTH_MODE is off: set AUTH_MODE=jwt and AUTH_HS256_SECRET, \
                                AUTH_ISSUER, AUTH_AUDIENCE as the services have them"
                .to_owned(),
        ),
    };
    let (line, status, mut out): (String, _, Box<dyn std::io::Write>) = match minted {
        Ok(token) => (
            format!("{token}\n"),
            std::process::ExitCode::SUCCESS,
            Box::new(std::io::stdout()),
        ),
        Err(reason) => (
            format!("error: {reason}\n"),
            std::process::ExitCode::FAILURE,
            Box::new(std::io::stderr()),
        ),
    };
    // Written without println!, which would panic if the stream were closed.
    if out.write_all(line.as_bytes()).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    status
}

/// Why a [`probe`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No connection, or no complete answer within the time limit (3 s).
    #[error("no answer from {addr}: {reason}")]
    NoAnswer {
        /// The address probed.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The service answered with a status outside 2xx.
    #[error("{addr} answered {status}")]
    Status {
        /// The address probed.
        addr: SocketAddr,
        /// The HTTP status code.
        status: u16,
    },
}

/// The address to probe a listener bound to `listen` at: the loopback address of the same family
/// when it listens on every interface (`0.0.0.0`, `::`), else `listen` itself.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Sends `request` on `stream` and reads until the end of the status line (or of the stream).
async fn status_line<S>(mut stream: S, request: &str) -> std::io::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buffer = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(head)
}

/// `GET path` over HTTP/1.1 (RFC 9112) at `addr`, with `Connection: close`, within 3 seconds; over
/// TLS when `tls` names the listener's certificate files (the probe trusts exactly that certificate,
/// see [`myevents_http::tls::connect_pinned`]), else plain.
///
/// # Errors
/// [`ProbeError::NoAnswer`] when nothing answers in time, the TLS handshake fails or the answer has
/// no status line, [`ProbeError::Status`] for an answer outside 2xx.
pub async fn probe(
    addr: SocketAddr,
    path: &str,
    tls: Option<&myevents_http::tls::TlsFiles>,
) -> Result<u16, ProbeError> {
    let no_answer = |reason: String| ProbeError::NoAnswer { addr, reason };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: healthcheck\r\nConnection: close\r\n\r\n"
    );
    let exchange = async {
        match tls {
            None => status_line(tokio::net::TcpStream::connect(addr).await?, &request).await,
            Some(files) => {
                status_line(
                    myevents_http::tls::connect_pinned(files, addr).await?,
                    &request,
                )
                .await
            }
        }
    };
    let head = tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| no_answer("timed out after 3 s".to_owned()))?
        .map_err(|error| no_answer(error.to_string()))?;
    let status = std::str::from_utf8(&head)
        .ok()
        .and_then(|text| text.strip_prefix("HTTP/1."))
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| no_answer("no HTTP status line".to_owned()))?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(ProbeError::Status { addr, status })
    }
}

/// Runs the commands that need neither broker nor store: `healthcheck` (probes `listen`, see
/// [`probe_address`], over TLS when `tls` names the listener's certificate files) and `version`
/// (prints `build` as JSON). Returns the process's exit status when
/// `command` was one of them (0 on success, 1 when the probe failed, with the reason on standard
/// error), `None` for the others.
pub async fn run_local_command(
    command: &Command,
    build: myevents_platform::build_info::BuildInfo,
    listen: SocketAddr,
    tls: Option<&myevents_http::tls::TlsFiles>,
) -> Option<std::process::ExitCode> {
    match command {
        Command::Healthcheck { path } => {
            Some(match probe(probe_address(listen), path, tls).await {
                Ok(_) => std::process::ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("unhealthy: {error}");
                    std::process::ExitCode::FAILURE
                }
            })
        }
        Command::Version => {
            // Written without println!, which would panic if standard output were closed.
            let line = format!("{}\n", serde_json::json!(build));
            let written = std::io::Write::write_all(&mut std::io::stdout(), line.as_bytes());
            Some(if written.is_ok() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Serve | Command::ReplayDeadLetters { .. } | Command::Token { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Command, String> {
        Command::parse(words.iter().map(|w| (*w).to_owned()))
    }

    #[test]
    fn the_command_line_serves_probes_or_replays_and_refuses_anything_else() {
        assert_eq!(parse(&[]), Ok(Command::Serve));
        assert_eq!(
            parse(&["healthcheck"]),
            Ok(Command::Healthcheck {
                path: "/readyz".to_owned()
            })
        );
        assert_eq!(
            parse(&["healthcheck", "/healthz"]),
            Ok(Command::Healthcheck {
                path: "/healthz".to_owned()
            })
        );
        assert!(parse(&["healthcheck", "healthz"]).is_err());
        assert_eq!(parse(&["version"]), Ok(Command::Version));
        assert_eq!(
            parse(&["dead-letters", "replay"]),
            Ok(Command::ReplayDeadLetters {
                idle: Duration::from_secs(5)
            })
        );
        assert_eq!(
            parse(&["dead-letters", "replay", "--idle-seconds", "2"]),
            Ok(Command::ReplayDeadLetters {
                idle: Duration::from_secs(2)
            })
        );
        assert!(parse(&["dead-letters", "replay", "--idle-seconds", "0"]).is_err());
        assert_eq!(
            parse(&[
                "token",
                "--sub",
                "alice",
                "--roles",
                "organiser,admin",
                "--ttl",
                "60"
            ]),
            Ok(Command::Token {
                subject: "alice".to_owned(),
                roles: vec!["organiser".to_owned(), "admin".to_owned()],
                ttl: Duration::from_secs(60),
            })
        );
        assert_eq!(
            parse(&["token", "--sub", "bob"]),
            Ok(Command::Token {
                subject: "bob".to_owned(),
                roles: Vec::new(),
                ttl: Duration::from_secs(3600),
            })
        );
        assert!(parse(&["token"]).is_err());
        assert!(parse(&["token", "--sub"]).is_err());
        assert!(parse(&["token", "--sub", "a", "--ttl", "0"]).is_err());
        assert!(parse(&["serve", "now"]).is_err());
    }

    #[test]
    fn a_listener_on_every_interface_is_probed_on_loopback() {
        let probe_at = |listen: &str| probe_address(listen.parse().unwrap()).to_string();
        assert_eq!(probe_at("0.0.0.0:8181"), "127.0.0.1:8181");
        assert_eq!(probe_at("[::]:8282"), "[::1]:8282");
        assert_eq!(probe_at("10.1.2.3:80"), "10.1.2.3:80");
    }

    /// Serves one connection with `answer` and returns its address.
    async fn serve_once(answer: &'static [u8]) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 512];
            let _ = stream.read(&mut request).await.unwrap();
            stream.write_all(answer).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn the_probe_passes_on_2xx_and_fails_on_anything_else() {
        let ok = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        assert_eq!(probe(ok, "/readyz", None).await.unwrap(), 200);
        let unavailable = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        assert!(matches!(
            probe(unavailable, "/readyz", None).await,
            Err(ProbeError::Status { status: 503, .. })
        ));
        let garbage = serve_once(b"SSH-2.0-OpenSSH\r\n").await;
        assert!(matches!(
            probe(garbage, "/readyz", None).await,
            Err(ProbeError::NoAnswer { .. })
        ));
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        assert!(matches!(
            probe(closed, "/readyz", None).await,
            Err(ProbeError::NoAnswer { .. })
        ));
    }
}
