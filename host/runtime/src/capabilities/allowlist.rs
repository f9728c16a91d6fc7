//! Which origins a connector may call: parsed from its manifest's `allowed-hosts`.
//!
//! A pattern is `[scheme://]host[:port]`: the scheme defaults to https, the port to the
//! scheme's default, `*` as the port allows any, and a host starting with `*.` matches
//! any subdomain of the rest (not the bare domain). Paths are not part of a pattern.
//! A host is kept in the URL parser's canonical form (`2130706433` and `0x7f.1` are
//! `127.0.0.1`), so a pattern means what a URL with that host means.
//!
//! Some patterns need the operator's explicit consent before a version asking for them
//! runs ([`Allowlist::risky`]): plain `http://` (no TLS: anyone on the path reads and
//! changes the traffic), IP literals (no name for TLS to vouch for, and the way to a
//! private address), and wildcards over a public suffix (`*.ngrok.io`, `*.github.io`:
//! any stranger can own a name under it).

use anyhow::{bail, Result};
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: String,
    /// Lower-case; for a wildcard, the suffix after `*.`.
    host: String,
    wildcard: bool,
    /// None = any port.
    port: Option<u16>,
}

/// A connector's allowed origins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    patterns: Vec<Pattern>,
}

impl Allowlist {
    /// Parses manifest patterns; an invalid one is an error naming it.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Allowlist> {
        let mut out = Vec::new();
        for raw in patterns {
            out.push(parse_pattern(raw.as_ref())?);
        }
        Ok(Allowlist { patterns: out })
    }

    /// Whether `url`'s origin is allowed.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let port = url.port_or_known_default();
        self.patterns.iter().any(|p| {
            p.scheme == url.scheme()
                && (p.port.is_none() || p.port == port)
                && if p.wildcard {
                    host.len() > p.host.len() + 1
                        && host.ends_with(&p.host)
                        && host.as_bytes()[host.len() - p.host.len() - 1] == b'.'
                } else {
                    host == p.host
                }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns among `patterns` that need the operator's explicit consent, each
    /// with why. An invalid pattern is an error naming it.
    pub fn risky<S: AsRef<str>>(patterns: &[S]) -> Result<Vec<(String, &'static str)>> {
        let mut out = Vec::new();
        for raw in patterns {
            let raw = raw.as_ref();
            let p = parse_pattern(raw)?;
            let why = if p.scheme == "http" {
                Some("plain http")
            } else if p.host.starts_with('[') || p.host.parse::<std::net::Ipv4Addr>().is_ok() {
                Some("an IP address")
            } else if p.wildcard && psl::suffix_str(&p.host) == Some(p.host.as_str()) {
                Some("a wildcard over a public suffix")
            } else {
                None
            };
            if let Some(why) = why {
                out.push((raw.trim().to_string(), why));
            }
        }
        Ok(out)
    }
}

fn parse_pattern(raw: &str) -> Result<Pattern> {
    let trimmed = raw.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("https".to_string(), trimmed),
    };
    if scheme != "https" && scheme != "http" {
        bail!("allowed host `{raw}`: scheme must be http or https");
    }
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.contains('?') || rest.contains('@') {
        bail!("allowed host `{raw}`: give an origin (scheme, host, port), not a URL path");
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    // `[v6]:port`, `host:port`, or no port; the port may be `*`.
    let (host, port_text) = if let Some(end) = rest.strip_prefix('[').and_then(|r| r.find(']')) {
        let after = &rest[end + 2..];
        (&rest[..end + 2], after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let port = match port_text {
        None => Some(default_port),
        Some("*") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => bail!("allowed host `{raw}`: invalid port `{p}`"),
        },
    };
    let (wildcard, host) = match host.strip_prefix("*.") {
        Some(h) => (true, h),
        None => (false, host),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.contains('*') {
        bail!("allowed host `{raw}`: `*.` is only allowed at the start of the host");
    }
    // Let the URL parser judge the host's syntax, and keep its canonical form.
    let parsed = Url::parse(&format!("{scheme}://{host}/"))
        .map_err(|e| anyhow::anyhow!("allowed host `{raw}`: {e}"))?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    if wildcard && !host.contains('.') {
        bail!("allowed host `{raw}`: a wildcard must cover a domain with a dot (`*.example.com`)");
    }
    Ok(Pattern {
        scheme,
        host,
        wildcard,
        port,
    })
}

#[cfg(test)]
mod tests {
    use crate::capabilities::allowlist::*;

    fn allows(patterns: &[&str], url: &str) -> bool {
        Allowlist::parse(patterns)
            .unwrap()
            .allows(&Url::parse(url).unwrap())
    }

    #[test]
    fn exact_wildcard_scheme_and_port() {
        let p = [
            "www.doctolib.fr",
            "https://*.keldoc.com",
            "http://localhost:*",
        ];
        assert!(allows(&p, "https://www.doctolib.fr/booking/1.json"));
        assert!(allows(&p, "https://WWW.Doctolib.fr:443/x"));
        assert!(!allows(&p, "http://www.doctolib.fr/x"), "scheme");
        assert!(!allows(&p, "https://www.doctolib.fr:8443/x"), "port");
        assert!(!allows(&p, "https://doctolib.fr/x"));
        assert!(!allows(&p, "https://www.doctolib.fr.evil.example/x"));
        assert!(allows(&p, "https://booking.keldoc.com/x"));
        assert!(allows(&p, "https://a.b.keldoc.com/x"));
        assert!(
            !allows(&p, "https://keldoc.com/x"),
            "wildcard excludes the bare domain"
        );
        assert!(!allows(&p, "https://evilkeldoc.com/x"));
        assert!(allows(&p, "http://localhost:1234/x"));
        assert!(!allows(&p, "https://localhost:1234/x"));
    }

    #[test]
    fn risky_patterns_are_named() {
        let risky = |p: &str| Allowlist::risky(&[p]).unwrap().first().map(|r| r.1);
        assert_eq!(risky("http://platform.example"), Some("plain http"));
        for ip in [
            "127.0.0.1",
            "2130706433",
            "0x7f.1",
            "[::ffff:127.0.0.1]",
            "[::]",
            "0.0.0.0",
            "8.8.8.8:*",
        ] {
            assert_eq!(risky(ip), Some("an IP address"), "{ip}");
        }
        for wild in ["*.ngrok.io", "*.github.io", "*.co.uk"] {
            assert_eq!(
                risky(wild),
                Some("a wildcard over a public suffix"),
                "{wild}"
            );
        }
        for fine in ["www.doctolib.fr", "*.keldoc.com", "api.example.co.uk"] {
            assert_eq!(risky(fine), None, "{fine}");
        }
        // A numeric host means the address it is, for matching too.
        assert!(allows(&["http://2130706433:*"], "http://127.0.0.1:80/x"));
        // Punycode and Unicode spellings are one host.
        assert!(allows(
            &["bücher.example"],
            "https://xn--bcher-kva.example/x"
        ));
        // Credentials before the host do not change the origin.
        assert!(!allows(
            &["allowed.example"],
            "https://allowed.example@evil.example/x"
        ));
    }

    proptest::proptest! {
        /// A URL is allowed by an exact pattern only if its host is that host, whatever
        /// the case, a trailing dot, credentials or path.
        #[test]
        fn an_exact_pattern_allows_its_host_only(
            label in "[a-z][a-z0-9-]{0,10}",
            other in "[a-z][a-z0-9-]{0,10}",
            path in "[a-zA-Z0-9/._-]{0,20}",
            upper in proptest::bool::ANY,
            dot in proptest::bool::ANY,
        ) {
            // `xn--` starts a punycode label (an international name), which must decode:
            // random letters after it are no host at all.
            proptest::prop_assume!(!label.starts_with("xn--") && !other.starts_with("xn--"));
            let pattern = format!("{label}.example.com");
            let mut host = pattern.clone();
            if upper { host = host.to_uppercase(); }
            if dot { host.push('.'); }
            let url = format!("https://{host}/{path}");
            proptest::prop_assert!(allows(&[&pattern], &url), "{}", url);
            let evil = format!("https://{pattern}@{other}.evil.example/{path}");
            proptest::prop_assert!(!allows(&[&pattern], &evil), "{}", evil);
            let suffix = format!("https://{label}.example.com.{other}.example/{path}");
            proptest::prop_assert!(!allows(&[&pattern], &suffix), "{}", suffix);
            if other != label {
                let sibling = format!("https://{other}.example.com/{path}");
                proptest::prop_assert!(!allows(&[&pattern], &sibling), "{}", sibling);
            }
        }
    }

    #[test]
    fn bad_patterns_are_refused_with_their_text() {
        for bad in [
            "ftp://x.example",
            "x.example/path",
            "*",
            "a.*.example",
            "h:notaport",
            "*.com",
        ] {
            let err = Allowlist::parse(&[bad]).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
