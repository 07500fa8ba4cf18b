//! How a server reaches its PostgreSQL database: over TLS whenever the database is on
//! another machine (issue 14), with the certificate and host name always checked
//! (libpq's `verify-full`: a database that cannot prove its name gets no records).
//!
//! The URL's `sslmode` decides, as with libpq, with one difference where libpq's
//! default is unsafe:
//! - A database on this machine (a Unix socket, `localhost`, a loopback address):
//!   plain unless the URL says `sslmode=require`. Nothing crosses a network, and
//!   Debian's default cluster presents a self-signed "snakeoil" certificate that no
//!   check could accept.
//! - A database on another machine: `sslmode=require` encrypts and checks the
//!   certificate against `database_ca` (a PEM file: an organisation's own CA), else
//!   the system's CAs. libpq's default, `prefer`, silently falls back to plain text
//!   when the database does not offer TLS, so an unset `sslmode` is refused with what
//!   to write; `sslmode=disable` is taken as a deliberate choice (a private network)
//!   and logged as a warning at every start.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ::postgres::config::{Host, SslMode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::super::{Result, StorageError};

/// Settles `config`'s `sslmode` by the rules above and builds the TLS connector its
/// connections use (never used when the mode ends up `disable`).
pub(super) fn connector(
    config: &mut ::postgres::Config,
    ca: Option<&Path>,
) -> Result<MakeRustlsConnect> {
    let local = on_this_machine(config);
    let mode = config.get_ssl_mode();
    match (local, mode) {
        (true, SslMode::Prefer) => {
            config.ssl_mode(SslMode::Disable);
        }
        (false, SslMode::Prefer) => {
            return Err(StorageError::Backend(
                "the PostgreSQL database is on another machine and its URL does not say \
                 how to reach it: add sslmode=require (records then travel encrypted, and \
                 the database's certificate is checked against database_ca, or the \
                 system's CAs), or sslmode=disable to send them in the clear on a network \
                 you trust"
                    .into(),
            ));
        }
        (false, SslMode::Disable) => {
            tracing::warn!(
                "the PostgreSQL database is on another machine and sslmode=disable: records \
                 cross the network between them unencrypted"
            );
        }
        _ => {}
    }
    let wants_tls = config.get_ssl_mode() != SslMode::Disable;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    StorageError::Backend(format!("database_ca {}: {e}", path.display()))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(StorageError::Backend(format!(
                    "database_ca {}: no certificate in it",
                    path.display()
                )));
            }
        }
        None if wants_tls => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(StorageError::Backend(
                    "sslmode=require, but this machine has no CA certificates to check the \
                     database's with: set database_ca to the CA that signed it"
                        .into(),
                ));
            }
        }
        None => {}
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::Backend(format!("TLS to the database: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(tls))
}

/// Whether every address the client may connect to is on this machine.
fn on_this_machine(config: &::postgres::Config) -> bool {
    let addrs = config.get_hostaddrs();
    if !addrs.is_empty() {
        // `hostaddr` is where the client connects; `host` then only names it.
        return addrs.iter().all(IpAddr::is_loopback);
    }
    // No host at all: the client's default, a local socket.
    config.get_hosts().iter().all(|h| match h {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Host::Unix(_) => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(url: &str) -> (std::result::Result<(), String>, SslMode) {
        let mut config: ::postgres::Config = url.parse().unwrap();
        let r = connector(&mut config, None)
            .map(|_| ())
            .map_err(|e| e.to_string());
        (r, config.get_ssl_mode())
    }

    #[test]
    fn a_database_on_another_machine_needs_sslmode_said_and_this_machine_does_not() {
        // This machine: plain by default, TLS when asked.
        for url in [
            "postgres://intake@127.0.0.1/intake",
            "postgres://intake@localhost:5433/intake",
            "postgres://intake@[::1]/intake",
            "host=/var/run/postgresql user=intake",
            "postgres://intake@db.lan/intake?hostaddr=127.0.0.1",
        ] {
            assert_eq!(settle(url), (Ok(()), SslMode::Disable), "{url}");
        }
        // Another machine: refused until the URL says, and never a silent fallback.
        for url in [
            "postgres://intake:s3cret@db.lan/intake",
            "postgres://intake@10.0.0.5/intake",
            "postgres://intake@localhost,db.lan/intake",
            "postgres://intake@localhost/intake?hostaddr=10.0.0.5",
        ] {
            let (r, _) = settle(url);
            let e = r.expect_err(url);
            assert!(e.contains("sslmode=require"), "{url}: {e}");
            assert!(!e.contains("s3cret") && !e.contains("db.lan"), "{e}");
        }
        let (r, mode) = settle("postgres://intake@db.lan/intake?sslmode=disable");
        assert_eq!((r, mode), (Ok(()), SslMode::Disable));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let mut config: ::postgres::Config = "postgres://intake@db.lan/intake?sslmode=require"
            .parse()
            .unwrap();
        let e = connector(&mut config, Some(&ca)).err().unwrap().to_string();
        assert!(e.contains("database_ca") && e.contains("ca.pem"), "{e}");
        let e = connector(&mut config, Some(&dir.path().join("missing.pem")))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
