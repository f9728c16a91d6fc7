//! Refusing private, loopback and link-local destinations unless the operator allows them.
//!
//! Checked twice: before a request (for a clear `denied` reason) and again inside the
//! HTTP client's DNS resolver, so a name that re-resolves elsewhere between the check and
//! the connection (DNS rebinding) cannot slip through.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an address a connector must not reach without the operator's consent.
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
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
        }
    }
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
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["8.8.8.8", "2001:4860::8888", "172.32.0.1"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }
}
