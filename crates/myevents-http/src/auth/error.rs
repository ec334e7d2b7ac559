//! Why credentials or the authenticator's set-up were refused, and the 401/400/503 answers.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::problem::Problem;

/// The `realm` of the `WWW-Authenticate` challenges (RFC 6750 section 3).
pub const REALM: &str = "myevents";

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
    /// The token is not a well-formed JWT, or longer than [`MAX_TOKEN_BYTES`](crate::auth::MAX_TOKEN_BYTES).
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
    /// `sub`, `exp`, `iss` or `aud` is missing, `iss` is not one string (RFC 7519 section 4.1.1),
    /// or `sub` is not a valid user id.
    #[error(
        "the token lacks a required claim (sub, exp, iss, aud), its iss is not one string, or its sub is not a user id"
    )]
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

/// Why an [`Authenticator`](crate::auth::Authenticator) could not be built.
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
