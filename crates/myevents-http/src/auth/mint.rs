//! Development tokens signed with the local HS256 secret (`token` command).

use std::time::Duration;

use jsonwebtoken::Algorithm;
use myevents_domain::booking::UserId;
use myevents_domain::validation::ValidationError;

use super::config::{JwtConfig, KeySource};

/// Why [`mint_token`] could not sign.
/// Each variant tells its cause in its own text and has no `source`, so that it is told once.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// Tokens can be minted for an HS256 secret only (`AUTH_HS256_SECRET`).
    #[error(
        "minting needs AUTH_MODE=jwt with AUTH_HS256_SECRET (a key set or public key cannot sign)"
    )]
    NoSecret,
    /// `sub` is not a user id.
    #[error("the subject is not a user id: {0}")]
    Subject(ValidationError),
    /// The signer failed.
    #[error("signing failed: {0}")]
    Sign(jsonwebtoken::errors::Error),
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
    UserId::parse(subject).map_err(MintError::Subject)?;
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
    let key = jsonwebtoken::EncodingKey::from_secret(secret.expose()).map_err(MintError::Sign)?;
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &claims, &key)
        .map_err(MintError::Sign)
}
