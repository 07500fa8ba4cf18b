//! TLS with rustls (0.23), when a certificate chain and key are configured; otherwise
//! the server speaks plain HTTP and is meant to sit behind a TLS-terminating reverse
//! proxy (see `docs/OPERATIONS.md`).

use crate::config::Settings;

/// The rustls configuration, if TLS is configured.
pub fn server_config(settings: &Settings) -> anyhow::Result<Option<rustls::ServerConfig>> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Ok(None);
    };
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("TLS certificate {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("TLS key {}: {e}", key.display()))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // Stateless TLS 1.3 session tickets, so a device's next connection resumes its
    // session: a resumed handshake skips the certificate chain (about 1.4 KB instead of
    // 2.6 KB). Without a ticketer rustls resumes only from its in-memory cache of 256
    // sessions, so with more than 256 devices syncing, each pushes others' sessions out;
    // a ticket is kept by the device, so it works for any number of them. The ticket key
    // lives in memory (rotated every 6 hours), so tickets do not survive a restart: each
    // device then makes one full handshake, which is fine. The ticketer matches the ring
    // provider above. The session cache stays as it is (TLS 1.2 resumption by session id
    // still uses it).
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Some(config))
}
