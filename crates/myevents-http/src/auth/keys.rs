//! The keys that verify tokens: a static key (public key file, HS256 secret) or a JSON Web Key Set
//! (RFC 7517) fetched from the identity provider and refetched for unknown key ids.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::error::AuthSetupError;

/// Shortest time between two fetches of the key set that a token with an unknown key id causes
/// (5 s), so that made-up key ids cannot make the service hammer the identity provider.
pub const JWKS_REFETCH_COOLDOWN: Duration = Duration::from_secs(5);

/// How long a fetch of the key set may take (5 s).
pub(super) const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A key that verifies tokens, with the algorithm its key set pins (if any).
#[derive(Clone)]
pub(super) struct TrustedKey {
    pub(super) key: DecodingKey,
    pub(super) algorithm: Option<Algorithm>,
}

/// The keys of a JWKS, by key id (keys without an id under `""`).
pub(super) type KeyTable = HashMap<String, TrustedKey>;

pub(super) struct JwksKeys {
    pub(super) url: String,
    pub(super) client: reqwest::Client,
    pub(super) table: RwLock<Arc<KeyTable>>,
    /// When the last fetch began; serialises fetches.
    pub(super) last_fetch: Mutex<Option<Instant>>,
}

impl JwksKeys {
    /// Fetches the key set and replaces the table; keys of a type this service cannot use are
    /// skipped (logged).
    pub(super) async fn fetch(&self) -> Result<(), String> {
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
    pub(super) async fn refetch(&self, cooldown: Duration) -> Result<(), String> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < cooldown) {
            return Ok(());
        }
        *last = Some(Instant::now());
        self.fetch().await
    }

    pub(super) async fn find(&self, kid: Option<&str>) -> Option<TrustedKey> {
        let table = Arc::clone(&*self.table.read().await);
        match kid {
            Some(kid) => table.get(kid).cloned(),
            // A token without a key id is accepted only when the set has a single key.
            None if table.len() == 1 => table.values().next().cloned(),
            None => None,
        }
    }
}

/// Where a verifier's keys are.
pub(super) enum Keys {
    Static(TrustedKey),
    Jwks(JwksKeys),
}

/// The public key in the PEM file at `path` (RSA, EC or Ed25519).
pub(super) fn public_key(path: &std::path::Path) -> Result<TrustedKey, AuthSetupError> {
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
