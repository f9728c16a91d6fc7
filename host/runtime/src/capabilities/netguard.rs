//! Refusing private, loopback and link-local destinations unless the operator allows them.
//!
//! Checked twice: before a request (for a clear `denied` reason) and again inside the
//! HTTP client's DNS resolver, so a name that re-resolves elsewhere between the check and
//! the connection (DNS rebinding) cannot slip through.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an address a connector must not reach without the operator's consent:
/// loopback, private, link-local, shared, reserved and special-purpose ranges, and the
/// IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) judged by the
/// address they carry; the deprecated `::a.b.c.d` form and Teredo are refused outright.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 carrier-grade NAT
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24 protocol assignments
                || o[0] >= 240 // 240/4 reserved (and broadcast)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
                || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
                || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32 documentation
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // 100::/64 discard
                || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // 64:ff9b:1::/48 local NAT64
                || (s[0] == 0x2001 && s[1] == 0) // 2001::/32 Teredo (tunnels anywhere)
                || s[0] == 0 // ::/16 (`::a.b.c.d` included) other than the mapped form: reserved
        }
    }
}

/// The IPv4 address an IPv6 address stands for, where it is one of the forms that carry
/// one: `::ffff:a.b.c.d` (mapped), `64:ff9b::a.b.c.d` (NAT64 well-known prefix) and `2002:AABB:CCDD::/48` (6to4).
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let tail = |hi: u16, lo: u16| {
        std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return Some(tail(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(tail(s[1], s[2]));
    }
    None
}

/// A name that resolves only to addresses the operator has not allowed; travels through
/// the HTTP client as a typed error, recognised by type (never by its text).
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to private addresses")]
pub struct PrivateAddress {
    pub host: String,
}

/// The HTTP client's resolver: drops private addresses unless allowed or the name is one
/// the operator configured as an override target.
#[derive(Clone)]
pub struct GuardedResolver {
    pub allow_private: bool,
    pub trusted_hosts: Arc<HashSet<String>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private || self.trusted_hosts.contains(name.as_str());
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow || !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(PrivateAddress { host }) as Box<_>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Pre-flight check of a destination host; Err carries the `denied` reason.
pub async fn check_destination(host: &str, port: u16, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return if is_private(ip) {
            Err(format!(
                "{host} is a private or loopback address (the operator has not allowed those)"
            ))
        } else {
            Ok(())
        };
    }
    match tokio::net::lookup_host((bare, port)).await {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if !addrs.is_empty() && addrs.iter().all(|a| is_private(a.ip())) {
                Err(format!("{host} resolves to a private or loopback address (the operator has not allowed those)"))
            } else {
                Ok(())
            }
        }
        // Unresolvable names fail later as connection errors.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::capabilities::netguard::*;

    #[test]
    fn classifies_addresses() {
        for p in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "100.64.0.1",
            "::",
            "192.0.0.8",
            "240.0.0.1",
            "255.255.255.255",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "::127.0.0.1",
            "::10.0.0.1",
            "fec0::1",
            "2001::1",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in [
            "8.8.8.8",
            "2001:4860::8888",
            "172.32.0.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2a01:cb00::1",
        ] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }

    proptest::proptest! {
        /// Every IPv6 form that carries an IPv4 address is judged as that address.
        #[test]
        fn an_embedded_address_is_judged_as_itself(o in proptest::prelude::any::<[u8; 4]>(), low in 0u16..) {
            let v4 = std::net::Ipv4Addr::from(o);
            let private = is_private(IpAddr::V4(v4));
            let [a, b, c, d] = o;
            let hi = u16::from_be_bytes([a, b]);
            let lo = u16::from_be_bytes([c, d]);
            let forms = [
                std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, hi, lo),
                std::net::Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
                std::net::Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, low),
            ];
            for v6 in forms {
                proptest::prop_assert_eq!(is_private(IpAddr::V6(v6)), private, "{} for {}", v6, v4);
            }
            // The deprecated compatible form is refused whatever it carries.
            let compat = std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo);
            proptest::prop_assert!(is_private(IpAddr::V6(compat)), "{}", compat);
        }

        /// Anything a private range covers is private, whatever its host bits.
        #[test]
        fn private_ranges_cover_their_hosts(host in 0u32..) {
            for (net, bits) in [
                ([10, 0, 0, 0], 8u32), ([172, 16, 0, 0], 12), ([192, 168, 0, 0], 16),
                ([127, 0, 0, 0], 8), ([169, 254, 0, 0], 16), ([100, 64, 0, 0], 10),
                ([192, 0, 0, 0], 24), ([240, 0, 0, 0], 4), ([0, 0, 0, 0], 8),
            ] {
                let mask = if bits == 32 { 0 } else { u32::MAX >> bits };
                let ip = std::net::Ipv4Addr::from(u32::from_be_bytes(net) | (host & mask));
                proptest::prop_assert!(is_private(IpAddr::V4(ip)), "{}", ip);
            }
        }
    }
}
