//! What a connector may put into a request and what may come back to it: the headers the
//! host owns ([`guest_header`]), one spelling per host ([`canonical`]), and the forms a
//! secret echoed by a platform can take ([`echo_matcher`]). Used by [`super::http`].

use std::collections::BTreeMap;

use aho_corasick::AhoCorasick;
use reqwest::header::HeaderName;
use url::Url;

use crate::contract::wit;

/// The forms of each secret value an echo could take: as is (any letter case),
/// percent-encoded byte by byte, and in base64 (standard and URL-safe, padded or not).
/// Every secret, whatever its length: an answer carrying one is never handed to the
/// connector, not even redacted (a redacted answer tells a guesser it guessed right).
/// Short values, which could occur by chance, are refused when they are set
/// ([`passerelle_model::MIN_SECRET_BYTES`]).
pub fn echo_matcher(secrets: &BTreeMap<String, String>) -> Option<(AhoCorasick, Vec<String>)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let mut patterns = Vec::new();
    let mut names = Vec::new();
    for (name, value) in secrets {
        if value.is_empty() {
            continue;
        }
        let percent: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
        let mut forms = vec![value.clone(), percent];
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            forms.push(engine.encode(value));
        }
        forms.dedup();
        for form in forms {
            patterns.push(form);
            names.push(name.clone());
        }
    }
    if patterns.is_empty() {
        return None;
    }
    // A contiguous NFA, not the DFA the builder picks for few patterns: built at every
    // run, the DFA took three times as long (~80 µs against ~27 µs for one secret's six
    // forms) and searched a 7 KiB answer no faster.
    let matcher = aho_corasick::AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .build(&patterns)
        .expect("literal patterns always build");
    Some((matcher, names))
}

/// Headers the host owns: what the connection, the proxy guard, the response's encoding
/// and length, and secret redaction rely on. A connector setting one gets
/// `invalid-request`.
const HOST_OWNED_HEADERS: &[&str] = &[
    "host",
    "accept-encoding",
    "range",
    "if-range",
    "transfer-encoding",
    "te",
    "trailer",
    "connection",
    "keep-alive",
    "upgrade",
    "content-length",
    "expect",
    "forwarded",
    "via",
];

/// A header name the connector may set, or why not.
pub fn guest_header(name: &str) -> Result<HeaderName, wit::HttpError> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| wit::HttpError::InvalidRequest(format!("invalid header name `{name}`")))?;
    let lower = parsed.as_str();
    if HOST_OWNED_HEADERS.contains(&lower)
        || lower.starts_with("proxy-")
        || lower.starts_with("x-forwarded-")
    {
        return Err(wit::HttpError::InvalidRequest(format!(
            "header `{name}` is set by the host, not by a connector"
        )));
    }
    Ok(parsed)
}

/// `url` with a fully-qualified host's trailing dot removed, so `www.doctolib.fr.` is the
/// same origin as `www.doctolib.fr` for the allowlist, the operator's overrides and the
/// rate limiter.
pub fn canonical(mut url: Url) -> Url {
    if let Some(host) = url.host_str().filter(|h| h.len() > 1 && h.ends_with('.')) {
        let host = host.trim_end_matches('.').to_string();
        // Only a domain can end with a dot; setting its shorter form cannot fail.
        let _ = url.set_host(Some(&host));
    }
    url
}
