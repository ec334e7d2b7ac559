//! HTTPS on the services' listeners (TLS 1.2 and 1.3, RFC 8446, by `rustls` with the `ring`
//! provider): the certificate chain and private key come from PEM files (`TLS_CERT_FILE`,
//! `TLS_KEY_FILE`, as cert-manager or a Kubernetes TLS Secret provides them) and are read again
//! when they change, so a rotated certificate is served to new connections without a restart.
//! A changed pair that cannot be used is logged and the one in use is kept.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use myevents_platform::config::{ConfigError, var};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the certificate files are checked for changes (5 s).
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Where the listener's certificate and key are (both set, or neither for plain HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The PEM certificate chain, end-entity certificate first (`TLS_CERT_FILE`).
    pub cert: PathBuf,
    /// The PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`TLS_KEY_FILE`).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads `TLS_CERT_FILE` and `TLS_KEY_FILE`: both set for HTTPS, neither for plain HTTP.
    ///
    /// # Errors
    /// [`ConfigError`] when only one of them is set.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        match (var("TLS_CERT_FILE"), var("TLS_KEY_FILE")) {
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert: cert.into(),
                key: key.into(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(
                "TLS_KEY_FILE",
                "",
                "is required with TLS_CERT_FILE",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "TLS_CERT_FILE",
                "",
                "is required with TLS_KEY_FILE",
            )),
        }
    }
}

/// Why the certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A file holds no usable PEM certificate or key, or the key does not match the certificate.
    #[error("{0}")]
    Invalid(String),
}

/// What the files looked like when last loaded: modification times and lengths.
type Stamp = (Option<SystemTime>, u64, Option<SystemTime>, u64);

fn stamp(files: &TlsFiles) -> Stamp {
    let meta = |path: &PathBuf| {
        std::fs::metadata(path)
            .map(|m| (m.modified().ok(), m.len()))
            .unwrap_or((None, 0))
    };
    let (cert_time, cert_len) = meta(&files.cert);
    let (key_time, key_len) = meta(&files.key);
    (cert_time, cert_len, key_time, key_len)
}

fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|e| TlsError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    };
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Invalid(format!("TLS_CERT_FILE: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Invalid(
            "TLS_CERT_FILE holds no PEM certificate".to_owned(),
        ));
    }
    // The key's text never goes into an error.
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::Invalid("TLS_KEY_FILE holds no PEM private key".to_owned()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        TlsError::Invalid(format!(
            "TLS_KEY_FILE does not fit TLS_CERT_FILE or cannot sign: {e}"
        ))
    })
}

/// The certificate in use, replaced when the files change.
#[derive(Debug)]
struct ReloadingCertificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Stamp)>,
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()).0,
        ))
    }
}

impl ReloadingCertificate {
    /// Loads the files again if they changed since the last successful load.
    fn reload_if_changed(&self) {
        let now = stamp(&self.files);
        if self.current.read().unwrap_or_else(|e| e.into_inner()).1 == now {
            return;
        }
        match load(&self.files, &self.provider) {
            Ok(certified) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) =
                    (Arc::new(certified), now);
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                tracing::warn!(%error, "the changed TLS certificate cannot be used; keeping the one in use");
            }
        }
    }
}

async fn watch(certificate: Weak<ReloadingCertificate>) {
    loop {
        tokio::time::sleep(RELOAD_CHECK_INTERVAL).await;
        let Some(certificate) = certificate.upgrade() else {
            return;
        };
        certificate.reload_if_changed();
    }
}

/// Terminates TLS for a listener, with the certificate of [`TlsFiles`], reloaded when the files
/// change (checked every [`RELOAD_CHECK_INTERVAL`] by a task that ends with the last clone).
/// Speaks HTTP/1.1 only (ALPN `http/1.1`), as the server does. Cheap to clone.
#[derive(Clone)]
pub struct TlsTerminator {
    acceptor: tokio_rustls::TlsAcceptor,
    _certificate: Arc<ReloadingCertificate>,
}

impl std::fmt::Debug for TlsTerminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTerminator")
            .field("files", &self._certificate.files)
            .finish_non_exhaustive()
    }
}

impl TlsTerminator {
    /// Loads `files` and starts watching them; must run inside a Tokio runtime.
    ///
    /// # Errors
    /// [`TlsError`] when the files cannot be read or do not hold a matching certificate and key.
    pub fn start(files: &TlsFiles) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = load(files, &provider)?;
        let certificate = Arc::new(ReloadingCertificate {
            files: files.clone(),
            provider: Arc::clone(&provider),
            current: RwLock::new((Arc::new(certified), stamp(files))),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio::spawn(watch(Arc::downgrade(&certificate)));
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            _certificate: certificate,
        })
    }

    /// The acceptor that performs a connection's handshake.
    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}

/// Trusts exactly one end-entity certificate, pinned (no CA, no host name), but verifies the
/// handshake's signature with it as usual.
#[derive(Debug)]
struct PinnedCertificate {
    pinned: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Opens a TLS connection (HTTP/1.1 by ALPN) to a listener of this process's own at `addr` — the
/// `healthcheck` probe — trusting exactly the end-entity certificate `files.cert` holds now
/// (pinned: neither a CA nor the host name is checked; the server's handshake signature is). While
/// a rotated certificate is not yet served (up to [`RELOAD_CHECK_INTERVAL`]) the handshake fails.
///
/// # Errors
/// An I/O error when the certificate file cannot be read or holds no certificate, when nothing
/// listens, or when the handshake fails (another certificate, no TLS).
pub async fn connect_pinned(
    files: &TlsFiles,
    addr: std::net::SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let invalid = |reason: String| std::io::Error::new(std::io::ErrorKind::InvalidData, reason);
    let pem = std::fs::read(&files.cert)?;
    let pinned = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| invalid("TLS_CERT_FILE holds no PEM certificate".to_owned()))?
        .map_err(|e| invalid(format!("TLS_CERT_FILE: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertificate {
        pinned,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(rustls::pki_types::ServerName::from(addr.ip()), tcp)
        .await
}
