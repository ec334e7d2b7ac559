//! Who calls: bearer tokens (RFC 6750) carrying JSON Web Tokens (RFC 7519), verified against a
//! JSON Web Key Set (RFC 7517) fetched from the identity provider, a static public key or an HS256
//! secret, or — with authentication off — the bare `X-User-Id` header of the reference.
//!
//! One concern per module, their items re-exported here:
//!
//! - `config`: [`AuthConfig`], the mode and the keys (`AUTH_*` variables), validated at start-up.
//! - `keys`: where the keys come from — a static key, or a JWKS fetched and refetched.
//! - `authenticator`: [`Authenticator`], which verifies a request's credentials.
//! - `middleware`: [`AuthenticateLayer`], the middleware that puts the result in the request's
//!   extensions (401 with `WWW-Authenticate` for a bad token), and [`Caller`], the extractor of the
//!   authenticated caller (401 without one) with the request's trace context.
//! - `error`: [`AuthError`] (why credentials were refused, and its answer) and [`AuthSetupError`].
//! - `mint`: [`mint_token`], a development token signed with a local HS256 secret.
//!
//! A token is accepted when its signature verifies with a key of its algorithm's family (no `none`,
//! no HMAC with a public key), `exp` is in the future and `nbf` in the past (each with
//! [`JwtConfig::leeway`]), `iss` and `aud` are the configured ones and `sub` is a valid user id. The
//! caller's roles come from the claim [`JwtConfig::roles_claim`] (a dotted path such as Keycloak's
//! `realm_access.roles`; an array of strings or a space-separated string).

mod authenticator;
mod config;
mod error;
mod keys;
mod middleware;
mod mint;

pub use authenticator::{Authenticator, MAX_TOKEN_BYTES};
pub use config::{AuthConfig, AuthMode, JwtConfig, KeySource, MIN_SECRET_BYTES, Secret};
pub use error::{AuthError, AuthSetupError, REALM};
pub use keys::JWKS_REFETCH_COOLDOWN;
pub use middleware::{
    Authenticate, AuthenticateLayer, Caller, CredentialsRefused, Identity, TokenSubject,
};
pub use mint::{MintError, mint_token};

/// The header naming the caller when authentication is off (`x-user-id`).
pub const USER_HEADER: http::HeaderName = http::HeaderName::from_static("x-user-id");
