//! # myevents-aws
//!
//! The one place where the adapters on AWS services (the SNS + SQS broker, the DynamoDB store) make
//! the SDK's shared configuration: region, credentials and endpoint from the SDK's default chain
//! (`AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, web identity for Kubernetes service
//! accounts, the instance profile; `AWS_ENDPOINT_URL` for a local server) unless the adapter's own
//! settings override them, and HTTPS by rustls with ring (no aws-lc, like the rest of the tree),
//! trusting the system's CA certificates.
//!
//! ```no_run
//! # async fn demo() -> Result<(), myevents_platform::error::Cause> {
//! use std::time::Duration;
//! let shared = myevents_aws::sdk_config(&myevents_aws::AwsSettings {
//!     endpoint: Some("http://127.0.0.1:5000".into()),
//!     region: Some("eu-west-1".into()),
//!     operation_timeout: Duration::from_secs(30),
//! })
//! .await?;
//! # let _ = shared;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use myevents_platform::error::Cause;

/// What an adapter may set over the SDK's default chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// An endpoint instead of AWS's (a local server such as moto), e.g. `http://127.0.0.1:5000`;
    /// `None`: the SDK's own (`AWS_ENDPOINT_URL`, or the region's).
    pub endpoint: Option<String>,
    /// The region; `None`: the SDK's default chain (`AWS_REGION`, the profile, the instance's).
    pub region: Option<String>,
    /// Longest one operation may take, retries included (the SDK's operation time-out). Keep it
    /// above the longest call the adapter makes (an SQS long poll: 20 s).
    pub operation_timeout: Duration,
}

/// The SDK's shared configuration for `settings`: the default chain with its overrides, a connect
/// time-out of 5 s, `settings.operation_timeout`, and the system's CA certificates for HTTPS.
///
/// # Errors
/// A [`Cause`] saying what to set when no region is configured anywhere, or when the system has no
/// CA certificate and the endpoint is HTTPS (see [`trust_store`]).
pub async fn sdk_config(settings: &AwsSettings) -> Result<aws_config::SdkConfig, Cause> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let endpoint = settings
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    let found = rustls_native_certs::load_native_certs();
    let trust = trust_store(found.certs.len(), endpoint.as_deref())?;
    let tls = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(Cause::new)?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_timeout(settings.operation_timeout)
        .build();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts);
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let shared = loader.load().await;
    if shared.region().is_none() {
        return Err(Cause::msg(
            "no AWS region: set AWS_REGION (or a profile's region)",
        ));
    }
    Ok(shared)
}

/// The CA certificates the HTTPS client trusts, given how many the system has (`native_roots`:
/// the certificates rustls-native-certs found through `SSL_CERT_FILE`, `SSL_CERT_DIR` or the usual
/// files such as `/etc/ssl/certs/ca-certificates.crt`) and the endpoint in use (`None`: AWS's own,
/// which is HTTPS).
///
/// The system's, when it has any. Without any, nothing AWS serves over HTTPS can be verified: the
/// adapter refuses to start rather than fail on every request (an image without the
/// `ca-certificates` file, say), unless the endpoint is a plain `http://` one (a local server), for
/// which it trusts nothing and warns.
///
/// # Errors
/// A [`Cause`] naming the way out when the system has no CA certificate and the endpoint is HTTPS.
pub fn trust_store(
    native_roots: usize,
    endpoint: Option<&str>,
) -> Result<aws_smithy_http_client::tls::TrustStore, Cause> {
    use aws_smithy_http_client::tls::TrustStore;
    if native_roots > 0 {
        return Ok(TrustStore::default());
    }
    match endpoint {
        Some(url) if url.starts_with("http://") => {
            tracing::warn!(
                endpoint = url,
                "no CA certificates on this system: HTTPS to AWS would fail; the plain HTTP endpoint works without them"
            );
            Ok(TrustStore::empty().with_native_roots(false))
        }
        _ => Err(Cause::msg(format!(
            "no CA certificates on this system, so the HTTPS endpoint {} cannot be verified: \
             install the CA bundle (Debian's ca-certificates package, /etc/ssl/certs/ca-certificates.crt) \
             or point SSL_CERT_FILE at one",
            endpoint.unwrap_or("of AWS")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_roots_are_trusted_when_there_are_any() {
        let trust = trust_store(144, None).expect("roots found");
        assert!(format!("{trust:?}").contains("enable_native_roots: true"));
    }

    #[test]
    fn without_ca_certificates_an_https_endpoint_is_refused_with_the_way_out() {
        for endpoint in [None, Some("https://sqs.eu-west-1.amazonaws.com")] {
            let Err(cause) = trust_store(0, endpoint) else {
                panic!("{endpoint:?}: accepted without a CA certificate");
            };
            let text = cause.to_string();
            assert!(text.contains("no CA certificates"), "{text}");
            assert!(text.contains("SSL_CERT_FILE"), "{text}");
        }
    }

    #[test]
    fn without_ca_certificates_a_plain_http_endpoint_trusts_nothing() {
        let trust = trust_store(0, Some("http://aws:5000")).expect("plain HTTP needs no roots");
        assert!(format!("{trust:?}").contains("enable_native_roots: false"));
    }
}
