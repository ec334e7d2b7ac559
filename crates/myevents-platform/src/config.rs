//! Typed configuration from environment variables (12-factor). Every reader names the variable in its
//! error, and [`redact_url`] keeps credentials out of logs.

use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A variable was set to a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {variable}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub variable: String,
    /// The value found (credentials redacted).
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error for `variable`.
    pub fn new(variable: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            value: redact_url(value),
            reason: reason.into(),
        }
    }
}

/// The variable's value, `None` when unset or empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A credential: the value of variable `name`, or else the content of the file that `<name>_FILE`
/// names (as the official images read their secrets, e.g. a mounted Kubernetes Secret; trailing line
/// breaks removed); `None` when neither is set.
///
/// # Errors
/// [`ConfigError`] naming `<name>_FILE` when both are set, or when the file cannot be read or is
/// empty.
pub fn credential(name: &str) -> Result<Option<String>, ConfigError> {
    let file_variable = format!("{name}_FILE");
    match (var(name), var(&file_variable)) {
        (Some(_), Some(path)) => Err(ConfigError::new(
            &file_variable,
            &path,
            format!("set only one of {name} and {file_variable}"),
        )),
        (Some(value), None) => Ok(Some(value)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path.trim()).map_err(|e| {
                ConfigError::new(&file_variable, &path, format!("cannot read it: {e}"))
            })?;
            let value = text.trim_end_matches(['\n', '\r']);
            if value.trim().is_empty() {
                return Err(ConfigError::new(&file_variable, &path, "the file is empty"));
            }
            Ok(Some(value.to_owned()))
        }
        (None, None) => Ok(None),
    }
}

/// Parses a variable, or gives `default` when it is unset.
///
/// # Errors
/// [`ConfigError`] naming the variable when its value does not parse.
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match var(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::new(name, &value, e.to_string())),
    }
}

/// A duration in whole seconds, or `default`.
///
/// # Errors
/// [`ConfigError`] when the value is not a non-negative number of seconds.
pub fn seconds_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| ConfigError::new(name, &value, "expected a number of seconds, e.g. 10")),
    }
}

/// Reads an on/off switch (`on|true|1|yes` or `off|false|0|no`), or `default`.
///
/// # Errors
/// [`ConfigError`] naming the variable for any other value.
pub fn switch_or(name: &str, default: bool) -> Result<bool, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(true),
            "off" | "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError::new(name, &value, "expected on or off")),
        },
    }
}

/// Parses a listen address: `host:port`, or Go's `:port` meaning every interface (the reference's
/// `LISTEN_URL` form, e.g. `:8181`).
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let text = text
        .strip_prefix("http://")
        .unwrap_or(text)
        .trim_end_matches('/');
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse::<SocketAddr>()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(full.as_str())
                .map_err(|e| e.to_string())?
                .next()
                .ok_or_else(|| "no address".to_owned())
        })
        .map_err(|_| "expected host:port (e.g. 0.0.0.0:8181) or :port".to_owned())
}

/// Reads a listen address variable, or `default`.
///
/// # Errors
/// [`ConfigError`] naming the variable.
pub fn listen_addr_or(name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
    let value = var(name).unwrap_or_else(|| default.to_owned());
    parse_listen_addr(&value).map_err(|reason| ConfigError::new(name, &value, reason))
}

/// Replaces the password of a URL (`scheme://user:password@host`) with `***`.
pub fn redact_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &text[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_go_style_port_only_forms() {
        assert_eq!(
            parse_listen_addr(":8181"),
            Ok("0.0.0.0:8181".parse().expect("addr"))
        );
        assert_eq!(
            parse_listen_addr("127.0.0.1:0"),
            Ok("127.0.0.1:0".parse().expect("addr"))
        );
        assert!(parse_listen_addr("nonsense").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@rabbit:5672/%2f"),
            "amqp://guest:***@rabbit:5672/%2f"
        );
        assert_eq!(redact_url("amqp://rabbit:5672"), "amqp://rabbit:5672");
        assert_eq!(
            ConfigError::new("X", "mongodb://u:p@h", "bad").value,
            "mongodb://u:***@h"
        );
    }
}
