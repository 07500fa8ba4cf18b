//! One measured setup: a fresh server process (or several on one PostgreSQL database)
//! with its users, the counting proxy in front of it (spreading connections over the
//! servers in turn), and devices enrolled through the proxy; plain HTTP, or TLS.

use crate::data::Template;
use crate::device::Device;
use crate::measure::Meter;
use crate::proxy::Proxy;
use crate::server::{ServerProcess, UserSpec};
use crate::workloads::tls::Certs;

pub struct Rig {
    pub proxy: Proxy,
    pub server: ServerProcess,
    /// Each user's enrolment code, in the order the users were given.
    pub codes: Vec<String>,
    /// The CA file devices trust, when the server speaks TLS.
    ca: Option<String>,
}

impl Rig {
    pub fn start(users: &[UserSpec]) -> anyhow::Result<Rig> {
        let (server, codes) = ServerProcess::start(users)?;
        let proxy = Proxy::start(server.addrs.clone(), true)?;
        Ok(Rig {
            proxy,
            server,
            codes,
            ca: None,
        })
    }

    /// A server speaking TLS with `certs`; devices trust its CA.
    pub fn start_tls(users: &[UserSpec], certs: &Certs) -> anyhow::Result<Rig> {
        let (server, codes) = ServerProcess::start_with(users, Some((&certs.chain, &certs.key)))?;
        let mut proxy = Proxy::start(server.addrs.clone(), false)?;
        proxy.url = proxy.url.replace("http://", "https://");
        Ok(Rig {
            proxy,
            server,
            codes,
            ca: Some(certs.ca.display().to_string()),
        })
    }

    /// A device of user number `user`, holding a copy of `template` (or nothing),
    /// enrolled through the proxy.
    pub fn device(&self, user: usize, template: Option<&Template>) -> anyhow::Result<Device> {
        let mut d = match template {
            Some(t) => Device::from_template(t)?,
            None => Device::empty()?,
        };
        let label = format!("bench-{user}");
        d.enroll(
            &self.proxy.url,
            &self.codes[user],
            &label,
            self.ca.as_deref(),
        )?;
        Ok(d)
    }

    /// A device of a user added now, while the server runs.
    pub fn new_user_device(&self, user: &UserSpec) -> anyhow::Result<Device> {
        let code = self.server.add_user(user)?;
        let mut d = Device::empty()?;
        d.enroll(&self.proxy.url, &code, &user.name, self.ca.as_deref())?;
        Ok(d)
    }

    /// The counting proxy's address, for something to put in front of it (the 2G link).
    pub fn proxy_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        let addr = self.proxy.url.trim_start_matches("http://");
        addr.parse()
            .map_err(|e| anyhow::anyhow!("the proxy's address {addr:?}: {e}"))
    }

    /// Starts measuring (resets the proxy's counters and the server's peak RSS).
    pub fn meter(&self) -> anyhow::Result<Meter<'_>> {
        Meter::start(&self.server, &self.proxy)
    }
}
