//! Certificates for servers that speak TLS in tests and in the benchmark: a CA the
//! devices trust (their `ca_file`) and a server certificate for `127.0.0.1` and
//! `localhost` signed by it, sent as a two-certificate chain like a public CA's leaf and
//! intermediate. ECDSA P-256 keys, what Let's Encrypt issues by default. Made with rcgen
//! in-process, so neither the tests nor the benchmark need the `openssl` command.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};

/// A CA and a server certificate chain, as PEM files in a directory removed on drop.
pub struct Certs {
    _dir: tempfile::TempDir,
    /// The server's certificate then the CA's (the server's `tls_cert`).
    pub chain: PathBuf,
    /// The server's private key (the server's `tls_key`).
    pub key: PathBuf,
    /// The CA's certificate, the one devices trust.
    pub ca: PathBuf,
}

impl Certs {
    /// A new CA and a server certificate for `127.0.0.1` and `localhost`.
    pub fn make() -> anyhow::Result<Certs> {
        let dir = tempfile::Builder::new().prefix("intake-tls").tempdir()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Intake Test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let server_key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let server = params.signed_by(&server_key, &ca)?;

        let d = dir.path();
        std::fs::write(d.join("chain.pem"), server.pem() + &ca.pem())?;
        std::fs::write(d.join("server.key"), server_key.serialize_pem())?;
        std::fs::write(d.join("ca.pem"), ca.pem())?;
        Ok(Certs {
            chain: d.join("chain.pem"),
            key: d.join("server.key"),
            ca: d.join("ca.pem"),
            _dir: dir,
        })
    }
}
