//! The service binaries' command line (`clap`, derive), and the HTTP probe behind `healthcheck`.
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
//! <service> --help                             all of this, and the variables that matter
//! ```
//!
//! `healthcheck` exists for container images without a shell or HTTP client (distroless): Docker's
//! `HEALTHCHECK` and compose's `healthcheck` run the binary itself. With `TLS_CERT_FILE` and
//! `TLS_KEY_FILE` set, as for the service, it probes over HTTPS.
//!
//! ```no_run
//! # async fn demo() {
//! use myevents_host::cli::{Command, probe};
//! // `--help` prints the help and exits 0; a wrong argument prints the error and exits 2.
//! let command = Command::parse("event-service", std::env::args().skip(1))
//!     .unwrap_or_else(|error| error.exit());
//! if let Command::Healthcheck { path } = command {
//!     let addr = "127.0.0.1:8181".parse().unwrap();
//!     std::process::exit(i32::from(probe(addr, &path, None).await.is_err()));
//! }
//! # }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
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
    /// `token --sub USER [--roles R1,R2] [--ttl SECONDS]`: print a development token (see
    /// [`print_token`]).
    Token(TokenArgs),
}

/// The arguments of `token`, also the embedded suite's (`myevents token …`): a development token
/// for `USER` with those roles, valid for `SECONDS`, signed with the HS256 secret of the
/// configuration (see `myevents_http::auth::mint_token`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct TokenArgs {
    /// The token's subject (`sub`): the user it acts for.
    #[arg(long = "sub", value_name = "USER")]
    pub subject: String,
    /// Its roles, comma-separated (e.g. `organiser,admin`).
    #[arg(long, value_name = "R1,R2", value_delimiter = ',')]
    pub roles: Vec<String>,
    /// How long it is valid, in seconds.
    #[arg(long = "ttl", value_name = "SECONDS", default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub ttl_seconds: u64,
}

/// What `--help` adds after the commands: the variables that matter most.
pub const ENVIRONMENT_HELP: &str = "\
Configuration comes from the environment (every variable: docs/configuration.md, .env.example):
  LISTEN_URL           where the API listens (event 0.0.0.0:8181, booking 0.0.0.0:8282)
  BROKER_KIND          rabbitmq (default) | kafka | memory; AMQP_BROKER_URL, KAFKA_BROKER_URLS
  STORE_KIND           mongodb (default) | memory; MONGO_URL (a replica set for the event service)
  AUTH_MODE            jwt (default: AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE) | off
  METRICS_LISTEN_URL   where GET /metrics is served; RUST_LOG, LOG_FORMAT for the logs
  <NAME>_FILE          MONGO_URL, AMQP_BROKER_URL, AUTH_JWKS_URL, AUTH_HS256_SECRET from a file";

/// The command line as `clap` reads it.
#[derive(Debug, clap::Parser)]
#[command(
    about = "A MyEvents service: serves its HTTP API until SIGTERM, or runs one command and exits.",
    after_help = ENVIRONMENT_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Subcommand>,
}

#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// GET PATH (default /readyz) on the service's own listener; exit 0 on a 2xx answer, else 1
    Healthcheck {
        /// The path to probe, starting with `/`.
        #[arg(default_value = "/readyz", value_parser = probe_path)]
        path: String,
    },
    /// Print the version and git commit of this build as JSON, then exit
    Version,
    /// The service's dead-letter queue
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
    /// Print a development token signed with AUTH_HS256_SECRET (AUTH_MODE=jwt), then exit
    Token(TokenArgs),
}

#[derive(Debug, clap::Subcommand)]
enum DeadLetterAction {
    /// Publish the service's dead letters again, print a JSON report, then exit
    Replay {
        /// Stop after this many seconds without a dead letter.
        #[arg(long = "idle-seconds", value_name = "N", default_value_t = 5,
            value_parser = clap::value_parser!(u64).range(1..))]
        idle_seconds: u64,
    },
}

/// A `healthcheck` path: starts with `/`, no white space.
fn probe_path(path: &str) -> Result<String, String> {
    if path.starts_with('/') && !path.contains(char::is_whitespace) {
        Ok(path.to_owned())
    } else {
        Err("a path starting with / and without white space".to_owned())
    }
}

impl Command {
    /// Parses the arguments after the program name, for the binary `name` (in the help and the
    /// errors).
    ///
    /// # Errors
    /// `clap`'s error for anything it does not take, and for `--help` (its kind
    /// `DisplayHelp`): [`clap::Error::exit`] prints either where it belongs and exits (2, or 0
    /// for the help).
    pub fn parse(
        name: &'static str,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, clap::Error> {
        let matches = Cli::command()
            .name(name)
            .bin_name(name)
            .try_get_matches_from(std::iter::once(name.to_owned()).chain(args))?;
        Ok(match Cli::from_arg_matches(&matches)?.command {
            None => Self::Serve,
            Some(Subcommand::Healthcheck { path }) => Self::Healthcheck { path },
            Some(Subcommand::Version) => Self::Version,
            Some(Subcommand::DeadLetters {
                action: DeadLetterAction::Replay { idle_seconds },
            }) => Self::ReplayDeadLetters {
                idle: Duration::from_secs(idle_seconds),
            },
            Some(Subcommand::Token(token)) => Self::Token(token),
        })
    }
}

/// Prints the development token `token` asks for, signed as `auth` says. Returns the exit status:
/// 0 with the token on standard output, 1 with the reason on standard error (no HS256 secret
/// configured, a subject that is not a user id).
pub fn print_token(token: &TokenArgs, auth: &AuthConfig) -> std::process::ExitCode {
    let roles: Vec<String> = token
        .roles
        .iter()
        .map(|role| role.trim())
        .filter(|role| !role.is_empty())
        .map(str::to_owned)
        .collect();
    let ttl = Duration::from_secs(token.ttl_seconds);
    let minted = match auth {
        AuthConfig::Jwt(config) => {
            mint_token(config, &token.subject, &roles, ttl).map_err(|e| e.to_string())
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
        Command::Serve | Command::ReplayDeadLetters { .. } | Command::Token(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Option<Command> {
        Command::parse("event-service", words.iter().map(|w| (*w).to_owned())).ok()
    }

    #[test]
    fn the_command_line_serves_probes_or_replays_and_refuses_anything_else() {
        assert_eq!(parse(&[]), Some(Command::Serve));
        assert_eq!(
            parse(&["healthcheck"]),
            Some(Command::Healthcheck {
                path: "/readyz".to_owned()
            })
        );
        assert_eq!(
            parse(&["healthcheck", "/healthz"]),
            Some(Command::Healthcheck {
                path: "/healthz".to_owned()
            })
        );
        assert_eq!(parse(&["healthcheck", "healthz"]), None);
        assert_eq!(parse(&["version"]), Some(Command::Version));
        assert_eq!(
            parse(&["dead-letters", "replay"]),
            Some(Command::ReplayDeadLetters {
                idle: Duration::from_secs(5)
            })
        );
        assert_eq!(
            parse(&["dead-letters", "replay", "--idle-seconds", "2"]),
            Some(Command::ReplayDeadLetters {
                idle: Duration::from_secs(2)
            })
        );
        assert_eq!(
            parse(&["dead-letters", "replay", "--idle-seconds", "0"]),
            None
        );
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
            Some(Command::Token(TokenArgs {
                subject: "alice".to_owned(),
                roles: vec!["organiser".to_owned(), "admin".to_owned()],
                ttl_seconds: 60,
            }))
        );
        assert_eq!(
            parse(&["token", "--sub", "bob"]),
            Some(Command::Token(TokenArgs {
                subject: "bob".to_owned(),
                roles: Vec::new(),
                ttl_seconds: 3600,
            }))
        );
        assert_eq!(parse(&["token"]), None);
        assert_eq!(parse(&["token", "--sub"]), None);
        assert_eq!(parse(&["token", "--sub", "a", "--ttl", "0"]), None);
        assert_eq!(parse(&["serve", "now"]), None);
    }

    #[test]
    fn help_lists_the_commands_and_the_variables_that_matter_and_is_no_error() {
        let help = Command::parse("booking-service", ["--help".to_owned()])
            .expect_err("help is clap's answer, not a command");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert_eq!(help.exit_code(), 0);
        let text = help.render().to_string();
        for expected in [
            "booking-service",
            "healthcheck",
            "version",
            "dead-letters",
            "token",
            "MONGO_URL",
            "AUTH_MODE",
            "BROKER_KIND",
            "docs/configuration.md",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
        let wrong =
            Command::parse("booking-service", ["serve".to_owned()]).expect_err("not a command");
        assert_eq!(wrong.exit_code(), 2);
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
