//! `AUTH_*` configuration: the mode, the key source and the claims every token must carry.

use std::path::PathBuf;
use std::time::Duration;

use myevents_platform::config::{ConfigError, credential, parse_or, seconds_or, var};

/// Shortest HS256 secret accepted, in bytes (RFC 7518 section 3.2: at least the hash's 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// A secret that never shows in `Debug` output, logs or error texts.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret's bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Where the keys that verify tokens come from (exactly one of the variables is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JSON Web Key Set at `url` (`AUTH_JWKS_URL`, e.g. an OIDC issuer's `jwks_uri`), fetched at
    /// start-up, every `refresh` (`AUTH_JWKS_REFRESH`, seconds, default 300) and when a token names
    /// a key id the set does not have (at most once per
    /// [`JWKS_REFETCH_COOLDOWN`](crate::auth::JWKS_REFETCH_COOLDOWN)).
    Jwks {
        /// The key set's `http(s)://` URL.
        url: String,
        /// Time between fetches.
        refresh: Duration,
    },
    /// One public key in a PEM file (`AUTH_PUBLIC_KEY_FILE`): RSA (RS256/384/512, PS256/384/512),
    /// EC (ES256, ES384) or Ed25519 (EdDSA).
    PublicKeyFile(PathBuf),
    /// A shared secret for HS256 (`AUTH_HS256_SECRET`, at least [`MIN_SECRET_BYTES`] bytes), for
    /// local use: whoever verifies can also sign.
    Hs256(Secret),
}

/// How tokens are verified when `AUTH_MODE=jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// The keys.
    pub keys: KeySource,
    /// The `iss` every token must carry (`AUTH_ISSUER`).
    pub issuer: String,
    /// The `aud` every token must carry (`AUTH_AUDIENCE`; a token may name several audiences).
    pub audience: String,
    /// Clock skew allowed on `exp` and `nbf` (`AUTH_LEEWAY`, seconds, default 30).
    pub leeway: Duration,
    /// The claim holding the caller's roles (`AUTH_ROLES_CLAIM`, default `roles`; a dotted path
    /// walks into objects, e.g. `realm_access.roles`).
    pub roles_claim: String,
    /// The role that may create locations and events and list an event's bookings
    /// (`AUTH_ORGANISER_ROLE`, default `organiser`).
    pub organiser_role: String,
    /// The role that may read, list and cancel anyone's bookings (`AUTH_ADMIN_ROLE`, default
    /// `admin`).
    pub admin_role: String,
}

impl JwtConfig {
    /// `keys` with `issuer` and `audience` and every other setting at its default.
    pub fn new(keys: KeySource, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            roles_claim: "roles".to_owned(),
            organiser_role: "organiser".to_owned(),
            admin_role: "admin".to_owned(),
        }
    }
}

/// How a service authenticates its callers (`AUTH_MODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// `off`: the caller is whoever `X-User-Id` names (`anonymous` without it) and holds the
    /// organiser role, as in the reference. Only for local use behind nothing: anyone can be anyone.
    Off,
    /// `jwt`: bearer tokens, verified as [`JwtConfig`] says.
    Jwt(JwtConfig),
}

/// `AUTH_MODE`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// `off`.
    Off,
    /// `jwt`.
    Jwt,
}

impl AuthConfig {
    /// The mode.
    pub fn mode(&self) -> AuthMode {
        match self {
            Self::Off => AuthMode::Off,
            Self::Jwt(_) => AuthMode::Jwt,
        }
    }

    /// The mode's name, as `AUTH_MODE` spells it and `/readyz` shows it.
    pub fn mode_name(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Jwt(_) => "jwt",
        }
    }

    /// Reads `AUTH_MODE` (`default` when unset) and, for `jwt`, the key source (exactly one of
    /// `AUTH_JWKS_URL`, `AUTH_PUBLIC_KEY_FILE`, `AUTH_HS256_SECRET`; the first and the last also
    /// from the file `<NAME>_FILE` names), `AUTH_ISSUER`, `AUTH_AUDIENCE` (both required) and the optional `AUTH_LEEWAY`, `AUTH_JWKS_REFRESH`,
    /// `AUTH_ROLES_CLAIM`, `AUTH_ORGANISER_ROLE`, `AUTH_ADMIN_ROLE`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is missing or invalid (never showing a secret).
    pub fn from_env(default: AuthMode) -> Result<Self, ConfigError> {
        let mode = match var("AUTH_MODE").as_deref() {
            None => default,
            Some("jwt") => AuthMode::Jwt,
            Some("off") => AuthMode::Off,
            Some(other) => {
                return Err(ConfigError::new("AUTH_MODE", other, "must be jwt or off"));
            }
        };
        if mode == AuthMode::Off {
            return Ok(Self::Off);
        }
        let jwks = credential("AUTH_JWKS_URL")?;
        let key_file = var("AUTH_PUBLIC_KEY_FILE");
        let secret = credential("AUTH_HS256_SECRET")?;
        let keys = match (jwks, key_file, secret) {
            (Some(url), None, None) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::new(
                        "AUTH_JWKS_URL",
                        &url,
                        "must be an http(s):// URL",
                    ));
                }
                KeySource::Jwks {
                    url,
                    refresh: seconds_or("AUTH_JWKS_REFRESH", Duration::from_secs(300))?,
                }
            }
            (None, Some(path), None) => KeySource::PublicKeyFile(PathBuf::from(path)),
            (None, None, Some(secret)) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(ConfigError::new(
                        "AUTH_HS256_SECRET",
                        "(hidden)",
                        format!("must have at least {MIN_SECRET_BYTES} bytes"),
                    ));
                }
                KeySource::Hs256(Secret::new(secret))
            }
            (None, None, None) => {
                return Err(ConfigError::new(
                    "AUTH_MODE",
                    "jwt",
                    "needs AUTH_JWKS_URL, AUTH_PUBLIC_KEY_FILE or AUTH_HS256_SECRET \
                     (or AUTH_MODE=off for local use)",
                ));
            }
            _ => {
                return Err(ConfigError::new(
                    "AUTH_MODE",
                    "jwt",
                    "set only one of AUTH_JWKS_URL, AUTH_PUBLIC_KEY_FILE, AUTH_HS256_SECRET",
                ));
            }
        };
        let required = |name: &str| ConfigError::new(name, "", "is required with AUTH_MODE=jwt");
        let issuer = var("AUTH_ISSUER").ok_or_else(|| required("AUTH_ISSUER"))?;
        let audience = var("AUTH_AUDIENCE").ok_or_else(|| required("AUTH_AUDIENCE"))?;
        let mut config = JwtConfig::new(keys, issuer, audience);
        config.leeway = seconds_or("AUTH_LEEWAY", config.leeway)?;
        config.roles_claim = parse_or("AUTH_ROLES_CLAIM", config.roles_claim)?;
        config.organiser_role = parse_or("AUTH_ORGANISER_ROLE", config.organiser_role)?;
        config.admin_role = parse_or("AUTH_ADMIN_ROLE", config.admin_role)?;
        Ok(Self::Jwt(config))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An HS256 configuration with a secret of 32 bytes, for the auth tests.
    pub(in crate::auth) fn hs256() -> JwtConfig {
        JwtConfig::new(
            KeySource::Hs256(Secret::new("0123456789abcdef0123456789abcdef")),
            "https://id.example",
            "myevents",
        )
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let config = AuthConfig::Jwt(hs256());
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
    }
}
