//! Who calls: bearer tokens (RFC 6750) carrying JSON Web Tokens (RFC 7519), verified against a
//! JSON Web Key Set (RFC 7517) fetched from the identity provider, a static public key or an HS256
//! secret, or — with authentication off — the bare `X-User-Id` header of the reference.
//!
//! - [`AuthConfig`]: the mode and the keys (`AUTH_*` variables), validated at start-up.
//! - [`Authenticator`]: verifies a request's credentials; [`authenticate`] is the middleware that
//!   puts the result in the request's extensions (401 with `WWW-Authenticate` for a bad token).
//! - [`Caller`]: the extractor of the authenticated caller (401 without one), with the request's
//!   trace context.
//! - [`mint_token`]: a development token signed with a local HS256 secret.
//!
//! A token is accepted when its signature verifies with a key of its algorithm's family (no `none`,
//! no HMAC with a public key), `exp` is in the future and `nbf` in the past (each with
//! [`JwtConfig::leeway`]), `iss` and `aud` are the configured ones and `sub` is a valid user id. The
//! caller's roles come from the claim [`JwtConfig::roles_claim`] (a dotted path such as Keycloak's
//! `realm_access.roles`; an array of strings or a space-separated string).

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use myevents_domain::access::{Principal, Roles};
use myevents_domain::booking::UserId;
use myevents_domain::validation::ValidationError;
use myevents_platform::config::{ConfigError, credential, parse_or, seconds_or, var};
use tokio::sync::{Mutex, RwLock};

use crate::problem::Problem;
use crate::server::trace_parent;

/// The header naming the caller when authentication is off (lower case, as `http` spells it).
pub const USER_HEADER: &str = "x-user-id";

/// The `realm` of the `WWW-Authenticate` challenges (RFC 6750 section 3).
pub const REALM: &str = "myevents";

/// Shortest HS256 secret accepted, in bytes (RFC 7518 section 3.2: at least the hash's 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// Longest bearer token accepted, in bytes; longer ones are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Shortest time between two fetches of the key set that a token with an unknown key id causes
/// (5 s), so that made-up key ids cannot make the service hammer the identity provider.
pub const JWKS_REFETCH_COOLDOWN: Duration = Duration::from_secs(5);

/// How long a fetch of the key set may take (5 s).
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// a key id the set does not have (at most once per [`JWKS_REFETCH_COOLDOWN`]).
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

/// Why a request's credentials were refused: each renders as 401 with a `WWW-Authenticate: Bearer`
/// challenge (RFC 6750 section 3.1) whose description is one of these fixed texts, never a part of
/// the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The route needs a caller and the request has no credentials.
    #[error("this request needs a bearer token (Authorization: Bearer <JWT>)")]
    Missing,
    /// The credentials are of another scheme than `Bearer` (e.g. `Basic`): 401 with the bare
    /// challenge, as for no credentials (RFC 6750 section 3.1).
    #[error("only bearer tokens are accepted (Authorization: Bearer <JWT>)")]
    OtherScheme,
    /// More than one `Authorization` header, or a `Bearer` one that is not one token of visible
    /// ASCII: **400** with `error="invalid_request"` (RFC 6750 section 3.1).
    #[error("the request must carry one Authorization header with one bearer token")]
    Malformed,
    /// The token is not a well-formed JWT, or longer than [`MAX_TOKEN_BYTES`].
    #[error("the bearer token is not a well-formed JWT")]
    NotAJwt,
    /// No key of the configured ones matches the token's key id and algorithm.
    #[error("the token is not signed by a key this service trusts")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` has not come yet.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token is from another issuer")]
    WrongIssuer,
    /// `aud` does not name this service's audience.
    #[error("the token is for another audience")]
    WrongAudience,
    /// `sub`, `exp`, `iss` or `aud` is missing, or `sub` is not a valid user id.
    #[error("the token lacks a required claim (sub, exp, iss, aud) or its sub is not a user id")]
    BadClaims,
    /// The key set could not be fetched to look the token's key up: 503, retry.
    #[error("the identity provider's keys cannot be fetched now")]
    KeysUnavailable,
}

impl AuthError {
    fn challenge(self) -> String {
        let code = match self {
            Self::Missing | Self::OtherScheme => return format!("Bearer realm=\"{REALM}\""),
            Self::Malformed => "invalid_request",
            _ => "invalid_token",
        };
        // The description is a quoted-string (RFC 9110 section 5.6.4): no quotes inside.
        let description = self.to_string().replace('"', "'");
        format!("Bearer realm=\"{REALM}\", error=\"{code}\", error_description=\"{description}\"")
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        if self == Self::KeysUnavailable {
            return Problem::unavailable(self.to_string(), 5).into_response();
        }
        let (status, slug, title) = match self {
            Self::Missing | Self::OtherScheme => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            Self::Malformed => (
                StatusCode::BAD_REQUEST,
                "malformed-credentials",
                "Malformed credentials",
            ),
            _ => (
                StatusCode::UNAUTHORIZED,
                "invalid-token",
                "Invalid credentials",
            ),
        };
        let mut problem = Problem::new(status, slug, title, self.to_string());
        if let Ok(value) = HeaderValue::from_str(&self.challenge()) {
            problem.headers.push((header::WWW_AUTHENTICATE, value));
        }
        problem.into_response()
    }
}

/// What the [`authenticate`] middleware found out about a request: the caller, or none (no
/// credentials in `jwt` mode). Read it with the [`Caller`] extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(pub Option<Principal>);

/// The subject of the request's verified bearer token, in the request's extensions only when a
/// token was verified (never for `X-User-Id`): what the rate limit may key by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject(pub String);

/// A key that verifies tokens, with the algorithm its key set pins (if any).
#[derive(Clone)]
struct TrustedKey {
    key: DecodingKey,
    algorithm: Option<Algorithm>,
}

/// The keys of a JWKS, by key id (keys without an id under `""`).
type KeyTable = HashMap<String, TrustedKey>;

struct JwksKeys {
    url: String,
    client: reqwest::Client,
    table: RwLock<Arc<KeyTable>>,
    /// When the last fetch began; serialises fetches.
    last_fetch: Mutex<Option<Instant>>,
}

impl JwksKeys {
    /// Fetches the key set and replaces the table; keys of a type this service cannot use are
    /// skipped (logged).
    async fn fetch(&self) -> Result<(), String> {
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.without_url().to_string())?
            .json()
            .await
            .map_err(|e| format!("not a JWK set: {}", e.without_url()))?;
        let mut table = KeyTable::new();
        for jwk in &set.keys {
            let id = jwk.common.key_id.clone().unwrap_or_default();
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    let algorithm = jwk
                        .common
                        .key_algorithm
                        .and_then(|a| Algorithm::from_str(&a.to_string()).ok());
                    table.insert(id, TrustedKey { key, algorithm });
                }
                Err(error) => {
                    tracing::warn!(kid = %id, %error, "skipping a key of the JWK set");
                }
            }
        }
        tracing::debug!(keys = table.len(), "fetched the JWK set");
        *self.table.write().await = Arc::new(table);
        Ok(())
    }

    /// Fetches unless a fetch began less than `cooldown` ago; waits for a fetch in progress.
    async fn refetch(&self, cooldown: Duration) -> Result<(), String> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < cooldown) {
            return Ok(());
        }
        *last = Some(Instant::now());
        self.fetch().await
    }

    async fn find(&self, kid: Option<&str>) -> Option<TrustedKey> {
        let table = Arc::clone(&*self.table.read().await);
        match kid {
            Some(kid) => table.get(kid).cloned(),
            // A token without a key id is accepted only when the set has a single key.
            None if table.len() == 1 => table.values().next().cloned(),
            None => None,
        }
    }
}

enum Keys {
    Static(TrustedKey),
    Jwks(JwksKeys),
}

struct Verifier {
    config: JwtConfig,
    keys: Keys,
}

/// Verifies requests' credentials as its [`AuthConfig`] says. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator(Option<Arc<Verifier>>);

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Authenticator(jwt)"
        } else {
            "Authenticator(off)"
        })
    }
}

/// Why an [`Authenticator`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// `AUTH_PUBLIC_KEY_FILE` cannot be read or holds no usable public key.
    #[error("AUTH_PUBLIC_KEY_FILE {path}: {reason}")]
    PublicKey {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// `AUTH_HS256_SECRET` cannot be used as an HMAC key.
    #[error("AUTH_HS256_SECRET cannot be used as an HMAC key")]
    Secret,
    /// The HTTP client that fetches the key set cannot be built (no TLS roots, for one).
    #[error("cannot build the client for AUTH_JWKS_URL: {0}")]
    Client(String),
}

impl Authenticator {
    /// An authenticator for `AUTH_MODE=off`.
    pub fn off() -> Self {
        Self(None)
    }

    /// Builds the authenticator `config` describes. With a JWKS, the set is fetched once now (a
    /// failure is logged and retried: tokens are answered 503 until a fetch succeeds) and then every
    /// [`KeySource::Jwks::refresh`] by a task that ends when the authenticator is dropped.
    ///
    /// # Errors
    /// [`AuthSetupError`] for a public key file or secret that cannot be used, or a key-set client
    /// that cannot be built.
    pub async fn start(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        let AuthConfig::Jwt(config) = config else {
            return Ok(Self::off());
        };
        let keys = match &config.keys {
            KeySource::Hs256(secret) => Keys::Static(TrustedKey {
                key: DecodingKey::from_secret(secret.expose())
                    .map_err(|_| AuthSetupError::Secret)?,
                algorithm: Some(Algorithm::HS256),
            }),
            KeySource::PublicKeyFile(path) => Keys::Static(public_key(path)?),
            KeySource::Jwks { url, .. } => Keys::Jwks(JwksKeys {
                url: url.clone(),
                client: reqwest::Client::builder()
                    .timeout(JWKS_FETCH_TIMEOUT)
                    .build()
                    .map_err(|e| AuthSetupError::Client(e.to_string()))?,
                table: RwLock::new(Arc::new(KeyTable::new())),
                last_fetch: Mutex::new(None),
            }),
        };
        let verifier = Arc::new(Verifier {
            config: config.clone(),
            keys,
        });
        if let (Keys::Jwks(jwks), KeySource::Jwks { refresh, .. }) = (&verifier.keys, &config.keys)
        {
            if let Err(error) = jwks.refetch(Duration::ZERO).await {
                tracing::warn!(%error, url = %jwks.url, "cannot fetch the JWK set yet (AUTH_JWKS_URL); retrying");
            }
            tokio::spawn(refresh_jwks(Arc::downgrade(&verifier), *refresh));
        }
        Ok(Self(Some(verifier)))
    }

    /// Whether tokens are verified (`AUTH_MODE=jwt`).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Who sent a request with `headers`: in `jwt` mode the bearer token's subject and roles, or
    /// `None` without an `Authorization` header (`X-User-Id` is ignored); with authentication off,
    /// the user `X-User-Id` names (`anonymous` without it) with the organiser role.
    ///
    /// # Errors
    /// [`AuthError`] for credentials that do not verify; with authentication off, a
    /// [`ValidationError`] (422) for an `X-User-Id` that is not a user id.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, Response> {
        let Some(verifier) = &self.0 else {
            return from_user_header(headers)
                .map(|user| {
                    Identity(Some(Principal::new(
                        user,
                        Roles {
                            organiser: true,
                            admin: false,
                        },
                    )))
                })
                .map_err(|e| Problem::from(e).into_response());
        };
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(Identity(None));
        };
        if values.next().is_some() {
            return Err(AuthError::Malformed.into_response());
        }
        let token = bearer_token(value).map_err(IntoResponse::into_response)?;
        verifier
            .verify(token)
            .await
            .map(|principal| Identity(Some(principal)))
            .map_err(IntoResponse::into_response)
    }
}

fn from_user_header(headers: &HeaderMap) -> Result<UserId, ValidationError> {
    match headers.get(USER_HEADER) {
        None => Ok(UserId::anonymous()),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ValidationError::field("X-User-Id", "must be visible ASCII"))?;
            UserId::parse(text)
        }
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case, RFC 6750 section 2.1).
fn bearer_token(value: &HeaderValue) -> Result<&str, AuthError> {
    let text = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::OtherScheme);
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(AuthError::Malformed);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::NotAJwt);
    }
    Ok(token)
}

fn public_key(path: &std::path::Path) -> Result<TrustedKey, AuthSetupError> {
    let error = |reason: String| AuthSetupError::PublicKey {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let key = DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| error("no RSA, EC or Ed25519 public key in PEM form".to_owned()))?;
    Ok(TrustedKey {
        key,
        algorithm: None,
    })
}

async fn refresh_jwks(verifier: Weak<Verifier>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(verifier) = verifier.upgrade() else {
            return;
        };
        if let Keys::Jwks(jwks) = &verifier.keys
            && let Err(error) = jwks.refetch(Duration::ZERO).await
        {
            tracing::warn!(%error, url = %jwks.url, "refreshing the JWK set failed; keeping the keys known");
        }
    }
}

impl Verifier {
    async fn key_for(&self, header: &jsonwebtoken::Header) -> Result<TrustedKey, AuthError> {
        match &self.keys {
            Keys::Static(key) => Ok(key.clone()),
            Keys::Jwks(jwks) => {
                if let Some(key) = jwks.find(header.kid.as_deref()).await {
                    return Ok(key);
                }
                // A key the set did not have: the provider may have rotated its keys.
                let fetched = jwks.refetch(JWKS_REFETCH_COOLDOWN).await;
                match jwks.find(header.kid.as_deref()).await {
                    Some(key) => Ok(key),
                    None if fetched.is_err() && jwks.table.read().await.is_empty() => {
                        Err(AuthError::KeysUnavailable)
                    }
                    None => Err(AuthError::UnknownKey),
                }
            }
        }
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::NotAJwt)?;
        let trusted = self.key_for(&header).await?;
        let algorithm = header.alg;
        if trusted.algorithm.is_some_and(|pinned| pinned != algorithm)
            || algorithm.family() != trusted.key.family()
        {
            return Err(AuthError::UnknownKey);
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &trusted.key, &validation)
            .map_err(|e| classify(&e))?
            .claims;
        let user = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .and_then(|sub| UserId::parse(sub).ok())
            .ok_or(AuthError::BadClaims)?;
        let roles = roles_of(&claims, &self.config.roles_claim);
        let has = |role: &str| roles.iter().any(|r| r == role);
        Ok(Principal::new(
            user,
            Roles {
                organiser: has(&self.config.organiser_role),
                admin: has(&self.config.admin_role),
            },
        ))
    }
}

fn classify(error: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidSubject => AuthError::BadClaims,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::InvalidKeyFormat => AuthError::UnknownKey,
        _ => AuthError::NotAJwt,
    }
}

/// The role names at the dotted `path` of `claims`: an array's strings, or a string's
/// space-separated words (the `scope` style).
fn roles_of(claims: &serde_json::Value, path: &str) -> Vec<String> {
    let found = path
        .split('.')
        .try_fold(claims, |value, key| value.get(key));
    match found {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(serde_json::Value::String(text)) => {
            text.split_whitespace().map(str::to_owned).collect()
        }
        _ => Vec::new(),
    }
}

/// Marks an answer [`authenticate`] gave instead of the route because the request's credentials
/// were refused (in the answer's extensions), for [`crate::rate_limit::limit_refused_credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialsRefused;

/// Axum middleware: authenticates the request with the [`Authenticator`] of its state and puts the
/// [`Identity`] in its extensions, or answers 401 (`WWW-Authenticate: Bearer …`) for credentials
/// that do not verify, 400 for malformed ones — on every route, public ones too: a client with a
/// bad token learns it at once. Such an answer carries [`CredentialsRefused`] in its extensions.
pub async fn authenticate(
    State(authenticator): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticator.authenticate(request.headers()).await {
        Ok(identity) => {
            if authenticator.is_on()
                && let Identity(Some(principal)) = &identity
            {
                let subject = TokenSubject(principal.user().as_str().to_owned());
                request.extensions_mut().insert(subject);
            }
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(mut refused) => {
            refused.extensions_mut().insert(CredentialsRefused);
            refused
        }
    }
}

/// Axum extractor of the authenticated caller ([`Principal`]) and the request's W3C
/// `traceparent`, for the messages its command stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who calls.
    pub principal: Principal,
    /// The request's trace context (see [`crate::server::trace_parent`]).
    pub trace_parent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    /// # Errors
    /// 401 ([`AuthError::Missing`]) when the request carries no credentials; 500 when the route
    /// is not behind the [`authenticate`] middleware (a wiring mistake, logged).
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        match parts.extensions.get::<Identity>() {
            Some(Identity(Some(principal))) => Ok(Self {
                principal: principal.clone(),
                trace_parent: trace_parent(&parts.headers),
            }),
            Some(Identity(None)) => Err(AuthError::Missing.into_response()),
            None => Err(
                Problem::internal("the route is not behind the authentication layer")
                    .into_response(),
            ),
        }
    }
}

/// Why [`mint_token`] could not sign.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Tokens can be minted for an HS256 secret only (`AUTH_HS256_SECRET`).
    #[error(
        "minting needs AUTH_MODE=jwt with AUTH_HS256_SECRET (a key set or public key cannot sign)"
    )]
    NoSecret,
    /// `sub` is not a user id.
    #[error("the subject is not a user id: {0}")]
    Subject(#[from] ValidationError),
    /// The signer failed.
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// A development token: HS256 over `{"iss","aud","sub","roles","iat","nbf","exp"}` with the secret,
/// issuer and audience of `config` (its roles claim is always `roles`), valid for `ttl` from now.
///
/// # Errors
/// [`MintError`] when `config` has no HS256 secret or `subject` is not a user id.
pub fn mint_token(
    config: &JwtConfig,
    subject: &str,
    roles: &[String],
    ttl: Duration,
) -> Result<String, MintError> {
    let KeySource::Hs256(secret) = &config.keys else {
        return Err(MintError::NoSecret);
    };
    UserId::parse(subject)?;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": config.issuer,
        "aud": config.audience,
        "sub": subject,
        config.roles_claim.clone(): roles,
        "iat": now,
        "nbf": now,
        "exp": now + ttl.as_secs(),
    });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.expose())?,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs256() -> JwtConfig {
        JwtConfig::new(
            KeySource::Hs256(Secret::new("0123456789abcdef0123456789abcdef")),
            "https://id.example",
            "myevents",
        )
    }

    async fn verify(config: &JwtConfig, token: &str) -> Result<Principal, AuthError> {
        let authenticator = Authenticator::start(&AuthConfig::Jwt(config.clone()))
            .await
            .expect("authenticator");
        authenticator.0.expect("jwt").verify(token).await
    }

    #[tokio::test]
    async fn a_minted_token_names_its_subject_and_roles() {
        let config = hs256();
        let token = mint_token(
            &config,
            "alice",
            &["organiser".to_owned()],
            Duration::from_secs(60),
        )
        .expect("minted");
        let principal = verify(&config, &token).await.expect("verified");
        assert_eq!(principal.user().as_str(), "alice");
        assert!(principal.is_organiser());
        assert!(!principal.roles().admin);
    }

    #[tokio::test]
    async fn another_secret_issuer_or_audience_is_refused() {
        let token = mint_token(&hs256(), "alice", &[], Duration::from_secs(60)).expect("minted");
        let mut other = hs256();
        other.keys = KeySource::Hs256(Secret::new("another secret of at least 32 bytes!"));
        assert_eq!(verify(&other, &token).await, Err(AuthError::BadSignature));
        let mut other = hs256();
        other.issuer = "https://elsewhere.example".to_owned();
        assert_eq!(verify(&other, &token).await, Err(AuthError::WrongIssuer));
        let mut other = hs256();
        other.audience = "billing".to_owned();
        assert_eq!(verify(&other, &token).await, Err(AuthError::WrongAudience));
    }

    #[test]
    fn roles_are_read_from_arrays_strings_and_nested_claims() {
        let claims = serde_json::json!({
            "roles": ["a", 1, "b"],
            "scope": "read write",
            "realm_access": {"roles": ["organiser"]},
        });
        assert_eq!(roles_of(&claims, "roles"), ["a", "b"]);
        assert_eq!(roles_of(&claims, "scope"), ["read", "write"]);
        assert_eq!(roles_of(&claims, "realm_access.roles"), ["organiser"]);
        assert!(roles_of(&claims, "missing.path").is_empty());
    }

    #[test]
    fn only_one_bearer_token_of_visible_ascii_is_taken() {
        let token = |text: &str| {
            bearer_token(&HeaderValue::from_str(text).expect("value")).map(str::to_owned)
        };
        assert_eq!(token("Bearer abc.def.ghi"), Ok("abc.def.ghi".to_owned()));
        assert_eq!(token("bearer abc"), Ok("abc".to_owned()));
        assert_eq!(token("Basic dXNlcjpwdw=="), Err(AuthError::OtherScheme));
        assert_eq!(token("Bearer"), Err(AuthError::Malformed));
        assert_eq!(token("Bearer a b"), Err(AuthError::Malformed));
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let config = AuthConfig::Jwt(hs256());
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
    }
}
