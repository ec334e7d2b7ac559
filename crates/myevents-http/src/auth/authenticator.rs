//! [`Authenticator`]: who sent a request — a verified bearer token's subject and roles, or the
//! `X-User-Id` header with authentication off.

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use myevents_domain::access::{Principal, Roles};
use myevents_domain::booking::UserId;
use myevents_domain::validation::ValidationError;
use tokio::sync::{Mutex, RwLock};

use super::USER_HEADER;
use super::config::{AuthConfig, JwtConfig, KeySource};
use super::error::{AuthError, AuthSetupError};
use super::keys::{
    JWKS_FETCH_TIMEOUT, JWKS_REFETCH_COOLDOWN, JwksKeys, KeyTable, Keys, TrustedKey, public_key,
};
use super::middleware::Identity;
use crate::problem::Problem;

/// Longest bearer token accepted, in bytes; longer ones are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

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
        match self
            .credentials(headers)
            .map_err(IntoResponse::into_response)?
        {
            Credentials::Known(identity) => Ok(identity),
            Credentials::Token(token) => self.verify(token).await,
        }
    }

    /// What `headers` say without waiting: the [`Identity`] when nothing needs verifying
    /// (authentication off, or no `Authorization` header), else the bearer token to [`verify`].
    ///
    /// [`verify`]: Authenticator::verify
    ///
    /// # Errors
    /// As [`Authenticator::authenticate`], for what can be told without verifying a signature.
    pub(crate) fn credentials<'h>(
        &self,
        headers: &'h HeaderMap,
    ) -> Result<Credentials<'h>, Refusal> {
        if self.0.is_none() {
            return from_user_header(headers)
                .map(|user| {
                    Credentials::Known(Identity(Some(Principal::new(
                        user,
                        Roles {
                            organiser: true,
                            admin: false,
                        },
                    ))))
                })
                .map_err(Refusal::UserId);
        }
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(Credentials::Known(Identity(None)));
        };
        if values.next().is_some() {
            return Err(Refusal::Token(AuthError::Malformed));
        }
        bearer_token(value)
            .map(Credentials::Token)
            .map_err(Refusal::Token)
    }

    /// The caller a bearer `token` names, once its signature and claims verify (which may wait for
    /// the key set, `AUTH_JWKS_URL`).
    ///
    /// # Errors
    /// [`AuthError`] for a token that does not verify; with authentication off, none is verified
    /// and every token is refused.
    pub(crate) async fn verify(&self, token: &str) -> Result<Identity, Response> {
        let Some(verifier) = &self.0 else {
            return Err(AuthError::Malformed.into_response());
        };
        verifier
            .verify(token)
            .await
            .map(|principal| Identity(Some(principal)))
            .map_err(IntoResponse::into_response)
    }
}

/// Why [`Authenticator::credentials`] refused a request's credentials without verifying anything.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A bearer token that cannot be one (401, or 400 for a malformed header).
    Token(AuthError),
    /// With authentication off, an `X-User-Id` that is not a user id (422).
    UserId(ValidationError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Token(error) => error.into_response(),
            Self::UserId(error) => Problem::from(error).into_response(),
        }
    }
}

/// What a request's headers say about its caller before any signature is verified (see
/// [`Authenticator::credentials`]).
#[derive(Debug)]
pub(crate) enum Credentials<'h> {
    /// The caller is known (or known to be nobody).
    Known(Identity),
    /// A bearer token, to verify.
    Token(&'h str),
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
        // RFC 7519 section 4.1.1: `iss` is one StringOrURI. The library also takes an array that
        // holds the issuer (as `aud` may be, section 4.1.3); such a token is not well formed.
        if !claims.get("iss").is_some_and(serde_json::Value::is_string) {
            return Err(AuthError::BadClaims);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::config::Secret;
    use crate::auth::config::tests::hs256;
    use crate::auth::mint::mint_token;

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

    #[tokio::test]
    async fn an_issuer_in_an_array_is_refused_and_an_audience_in_one_is_taken() {
        let config = hs256();
        let KeySource::Hs256(secret) = &config.keys else {
            panic!("an HS256 configuration");
        };
        let key = jsonwebtoken::EncodingKey::from_secret(secret.expose()).expect("key");
        let sign = |iss: serde_json::Value| {
            let claims = serde_json::json!({
                "iss": iss,
                "aud": [config.audience, "billing"],
                "sub": "alice",
                "exp": jsonwebtoken::get_current_timestamp() + 60,
            });
            let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            jsonwebtoken::encode(&header, &claims, &key).expect("signed")
        };
        let one = verify(&config, &sign(serde_json::json!(config.issuer))).await;
        assert_eq!(one.expect("verified").user().as_str(), "alice");
        let array = sign(serde_json::json!([config.issuer]));
        assert_eq!(verify(&config, &array).await, Err(AuthError::BadClaims));
        let several = sign(serde_json::json!([
            config.issuer,
            "https://elsewhere.example"
        ]));
        assert_eq!(verify(&config, &several).await, Err(AuthError::BadClaims));
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
}
