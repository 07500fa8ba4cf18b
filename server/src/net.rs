//! Who is on the other end of a request. Behind a TLS-terminating reverse proxy every
//! connection comes from the proxy, and the device's own address is only in the
//! `X-Forwarded-For` header the proxy appends to. That header is written by whoever
//! sends the request, so it is believed only when the connection comes from a proxy the
//! administrator named (`trusted_proxies`), and then only the part those proxies added:
//! the right-most address that is not one of them. Everything that cares about an
//! address (the enrolment and sign-in limiters, the admin API's loopback rule, the
//! audit trail) asks [`client_addr`], so there is one answer everywhere.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use actix_web::http::header::HeaderMap;

/// An address range such as `10.0.0.0/8` or `fd00::/8`; a bare address is its own /32
/// (or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this range (an IPv4 address written as IPv6, `::ffff:a.b.c.d`,
    /// counts as the IPv4 address it is).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// IPv4 addresses carried in IPv6 (a dual-stack socket's `::ffff:a.b.c.d`) as IPv4, so
/// one client has one address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address a request comes from: the peer, unless the peer is a trusted proxy; then
/// the right-most `X-Forwarded-For` address that is not a trusted proxy (when every one
/// is, the left-most). An entry that does not parse stops the walk at the last address
/// a trusted proxy vouched for: nothing left of it can be believed.
pub fn resolve(peer: IpAddr, forwarded_for: &[&str], trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    // Several headers are one list, in order (RFC 7230 §3.2.2).
    let hops = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:5678`), as some proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// [`resolve`] over a request's peer address and headers, with the server's settings:
/// `X-Forwarded-For` counts only when the server runs `behind_proxy`. `None` when the
/// connection has no IP peer (never, over TCP).
pub fn client_addr_of(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    settings: &crate::config::Settings,
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !settings.behind_proxy {
        return Some(canonical(peer));
    }
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(resolve(peer, &values, &settings.trusted_proxies))
}

/// The client address of a request (see [`resolve`]).
pub fn client_addr(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    let state = req.app_data::<actix_web::web::Data<crate::startup::AppState>>()?;
    client_addr_of(req.peer_addr(), req.headers(), &state.settings)
}

/// The key an address is counted under by the attempt limiters: an IPv6 address by its
/// /64, since one subscriber is usually given a whole /64 and could otherwise try from
/// 2^64 addresses.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ranges_contain_what_they_say() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")), "IPv4 written as IPv6");
        let c: Cidr = "fd00::/8".parse().unwrap();
        assert!(c.contains(ip("fd12::1")));
        assert!(!c.contains(ip("fe80::1")));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("proxy.local".parse::<Cidr>().is_err());
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        // A device talking to us directly cannot claim another address.
        assert_eq!(
            resolve(ip("203.0.113.5"), &["198.51.100.1"], &trusted),
            ip("203.0.113.5")
        );
        // Through the proxy: the address it saw, not what the device wrote before it.
        assert_eq!(
            resolve(ip("10.0.0.2"), &["1.1.1.1, 203.0.113.5"], &trusted),
            ip("203.0.113.5")
        );
        // Two proxies of ours in a row; several headers are one list.
        assert_eq!(
            resolve(
                ip("10.0.0.2"),
                &["1.1.1.1, 203.0.113.5", "10.0.0.3"],
                &trusted
            ),
            ip("203.0.113.5")
        );
        // Nothing forwarded: the proxy itself.
        assert_eq!(resolve(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"));
        // Garbage stops the walk at the last address a trusted proxy vouched for.
        assert_eq!(
            resolve(ip("10.0.0.2"), &["203.0.113.5, junk, 10.0.0.3"], &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(
            resolve(ip("10.0.0.2"), &["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
