//! The `http` import: outbound requests done by the host with reqwest.
//!
//! [`HttpService`] is process-wide (client, platform rate limiters, operator policy);
//! an [`HttpSession`] is one run's view of it (the connector's allowlist, the account's
//! secrets, the run's budgets). Every request: allowlist check on the URL the connector
//! asked for, operator base-URL override, private-address check, secret substitution,
//! platform rate limit, timeout, size caps, redirects followed by hand and re-checked.
//! An answer that carries a secret value back (in a header, the body, a redirect's
//! `Location` or the final URL; literally, in any letter case, percent-encoded or in
//! base64) ends the run as a security event ([`SecretEchoed`]): it is never handed to
//! the connector, not even redacted (a redacted echo would tell it the guess was right).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

use aho_corasick::AhoCorasick;
use anyhow::{Context, Result};
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue as ReqHeaderValue};
use serde::{Deserialize, Serialize};
use url::Url;

use super::allowlist::Allowlist;
use super::guard::{canonical, echo_matcher, guest_header};
use super::netguard::{check_destination, GuardedResolver, PrivateAddress};
use super::ratelimit::{parse_retry_after, PlatformLimiter, RateLimiters};
use crate::contract::wit;
use passerelle_model::{LimitExceeded, SecretEchoed};

const MAX_REDIRECTS: usize = 5;

/// The operator's HTTP settings (`[http]` in the config file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpPolicy {
    /// Let connectors reach loopback, private and link-local addresses.
    pub allow_private_addresses: bool,
    /// Origin → base URL: requests a connector makes to the origin go to the base URL
    /// instead (same path and query). How tests and the demo point connectors at the
    /// simulator. Override targets are the operator's choice and may be private.
    pub overrides: BTreeMap<String, String>,
    /// Connector name → rate limit replacing the one its manifest declares (e.g. a
    /// platform that granted this installation more, or a simulator).
    pub rate_limits: BTreeMap<String, RateLimitOverride>,
    /// Every request, whatever its origin, goes to this base URL as
    /// `{base}/{scheme}/{host}/{port}{path}?{query}`: how `connector test` replays a
    /// cassette without ever reaching the network. Not settable in the config file.
    #[serde(skip)]
    pub replay_to: Option<Url>,
}

/// An operator's rate limit for one platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOverride {
    pub requests_per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone)]
struct Override {
    origin: url::Origin,
    base: Url,
}

/// Process-wide HTTP state, cheap to clone.
#[derive(Clone)]
pub struct HttpService {
    client: reqwest::Client,
    limiters: RateLimiters,
    allow_private: bool,
    overrides: Arc<Vec<Override>>,
    replay_to: Option<Url>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl HttpService {
    pub fn new(policy: &HttpPolicy, metrics: Arc<crate::metrics::Metrics>) -> Result<Self> {
        let mut overrides = Vec::new();
        let mut trusted = HashSet::new();
        for (origin, base) in &policy.overrides {
            let origin_url = Url::parse(origin)
                .with_context(|| format!("http.overrides: `{origin}` is not an origin URL"))?;
            let base_url = Url::parse(base)
                .with_context(|| format!("http.overrides: `{base}` is not a base URL"))?;
            anyhow::ensure!(
                matches!(base_url.scheme(), "http" | "https"),
                "http.overrides: `{base}` must be http or https"
            );
            if let Some(h) = base_url.host_str() {
                trusted.insert(h.to_string());
            }
            overrides.push(Override {
                origin: origin_url.origin(),
                base: base_url,
            });
        }
        if let Some(base) = &policy.replay_to {
            if let Some(h) = base.host_str() {
                trusted.insert(h.to_string());
            }
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the private-address guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: policy.allow_private_addresses,
                trusted_hosts: Arc::new(trusted),
            }))
            .user_agent(concat!("passerelle/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(32)
            .build()
            .context("building the HTTP client")?;
        Ok(HttpService {
            client,
            limiters: RateLimiters::default(),
            allow_private: policy.allow_private_addresses,
            overrides: Arc::new(overrides),
            replay_to: policy.replay_to.clone(),
            metrics,
        })
    }

    pub fn limiters(&self) -> &RateLimiters {
        &self.limiters
    }

    /// Where a request for `url` actually goes, and whether that is an override.
    fn route(&self, url: &Url) -> (Url, bool) {
        if let Some(base) = &self.replay_to {
            let mut target = base.clone();
            let base_path = base.path().trim_end_matches('/');
            target.set_path(&format!(
                "{base_path}/{}/{}/{}{}",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.port_or_known_default().unwrap_or_default(),
                url.path()
            ));
            target.set_query(url.query());
            return (target, true);
        }
        let origin = url.origin();
        for o in self.overrides.iter() {
            if o.origin == origin {
                let mut target = o.base.clone();
                let base_path = o.base.path().trim_end_matches('/');
                target.set_path(&format!("{base_path}{}", url.path()));
                target.set_query(url.query());
                return (target, true);
            }
        }
        (url.clone(), false)
    }
}

pub use super::http_record::{Recorded, Recorder, Recording};

/// One run's HTTP budget and identity.
pub struct HttpSession {
    service: HttpService,
    platform: String,
    allowlist: Allowlist,
    limiter: Arc<PlatformLimiter>,
    secrets: BTreeMap<String, String>,
    declared_secrets: Vec<String>,
    /// Every form of every secret value, and the secret's name per pattern.
    echo_matcher: Option<(AhoCorasick, Vec<String>)>,
    max_requests: u32,
    max_received: u64,
    max_response: u64,
    timeout: Duration,
    /// Requests sent (each redirect hop counts).
    pub requests: u32,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Time spent waiting for the platform's rate limit.
    pub rate_limit_wait: Duration,
    /// Time spent waiting for the platform's answers (sending, then reading the body).
    pub platform_wait: Duration,
    /// Where every exchange is recorded, when the run is (`passerelle sync --record`,
    /// the flight recorder).
    pub recording: Recorder,
}

/// What a session needs to know about its run.
pub struct SessionSpec<'a> {
    pub platform: &'a str,
    pub allowlist: Allowlist,
    pub rate_limit: (u32, u32),
    /// The account's values of the secrets the manifest declares.
    pub secrets: BTreeMap<String, String>,
    /// The secret names the manifest declares: any other name is refused.
    pub declared_secrets: Vec<String>,
    pub limits: &'a passerelle_model::limits::Limits,
}

/// Prepares the HTTP capability of one run (as Spin's factors prepare an instance): the
/// connector's allowlist, its rate limit (the operator's `override_rate`, else the
/// manifest's), the values of the secrets the manifest declares (any other value is
/// dropped: a version cannot use a secret the operator never approved it for), and the
/// run's scrubber, taught every secret value. The same for `check()` and `sync()`;
/// `describe()` gets no HTTP at all.
pub fn prepare(
    service: &HttpService,
    manifest: &passerelle_model::connector::Manifest,
    secrets: BTreeMap<String, String>,
    override_rate: Option<(u32, u32)>,
    limits: &passerelle_model::limits::Limits,
) -> anyhow::Result<(HttpSession, crate::scrub::Scrubber)> {
    let mut scrubber = crate::scrub::Scrubber::new().limit_patterns(limits.scrub_patterns);
    for value in secrets.values() {
        scrubber.add_secret(value);
    }
    let declared: Vec<String> = manifest.secrets.iter().map(|s| s.name.clone()).collect();
    let secrets = secrets
        .into_iter()
        .filter(|(name, _)| declared.contains(name))
        .collect();
    let session = HttpSession::new(
        service,
        SessionSpec {
            platform: &manifest.name,
            allowlist: Allowlist::parse(&manifest.allowed_hosts)?,
            rate_limit: override_rate.unwrap_or((
                manifest.rate_limit.requests_per_second,
                manifest.rate_limit.burst,
            )),
            secrets,
            declared_secrets: declared,
            limits,
        },
    );
    Ok((session, scrubber))
}

impl HttpSession {
    pub fn new(service: &HttpService, spec: SessionSpec<'_>) -> Self {
        let echo_matcher = echo_matcher(&spec.secrets);
        HttpSession {
            limiter: service
                .limiters
                .get(spec.platform, spec.rate_limit.0, spec.rate_limit.1),
            service: service.clone(),
            platform: spec.platform.to_string(),
            allowlist: spec.allowlist,
            secrets: spec.secrets,
            declared_secrets: spec.declared_secrets,
            echo_matcher,
            max_requests: spec.limits.http_requests,
            max_received: spec.limits.received_bytes(),
            max_response: spec.limits.response_bytes(),
            timeout: spec.limits.http_timeout(),
            requests: 0,
            bytes_received: 0,
            rate_limit_wait: Duration::ZERO,
            platform_wait: Duration::ZERO,
            recording: Recorder::default(),
        }
    }

    /// Charges the recording to the run's share of the memory budget from now on.
    pub(crate) fn charge_to(
        &mut self,
        memory: Arc<std::sync::Mutex<crate::sandbox::budget::RunMemory>>,
    ) {
        self.recording.charge_to(memory);
    }

    /// Performs one connector request. `Err` is a trap (a run limit was hit); the inner
    /// result is what the connector sees.
    pub async fn send(
        &mut self,
        request: wit::Request,
        templated: &[wit::SecretTemplate],
    ) -> wasmtime::Result<Result<wit::Response, wit::HttpError>> {
        let span = tracing::debug_span!(
            "http",
            endpoint = tracing::field::Empty,
            method = tracing::field::Empty,
            status = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        // Only when something takes the span (an OTLP exporter): no parse otherwise.
        if !span.is_disabled() {
            if let Ok(url) = Url::parse(&request.url) {
                span.record("endpoint", super::http_trace::endpoint_shape(&url));
            }
            span.record("method", method(request.method).as_str());
        }
        let result = self
            .send_traced(request, templated)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(Ok(response)) => span.record("status", response.status),
            Ok(Err(e)) => span.record("error", super::http_trace::error_kind(e)),
            Err(_) => span.record("error", "limit"),
        };
        result
    }

    async fn send_traced(
        &mut self,
        request: wit::Request,
        templated: &[wit::SecretTemplate],
    ) -> wasmtime::Result<Result<wit::Response, wit::HttpError>> {
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()).min(self.timeout))
            .unwrap_or(self.timeout);
        let prepared = match self.prepare(&request, templated) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let method = prepared.method.to_string();
        let request_body = self
            .recording
            .is_on()
            .then(|| request.body.clone())
            .flatten();
        let result =
            match tokio::time::timeout(timeout, self.exchange(prepared, request.body)).await {
                Ok(result) => result,
                Err(_) => Ok(Err(wit::HttpError::Timeout)),
            };
        if let (true, Ok(Ok(response))) = (self.recording.is_on(), &result) {
            self.recording.record(Recorded {
                method,
                url: request.url,
                request_body,
                status: response.status,
                headers: response.headers.clone(),
                body: response.body.clone(),
            });
        }
        result
    }

    fn prepare(
        &self,
        request: &wit::Request,
        templated: &[wit::SecretTemplate],
    ) -> Result<Prepared, wit::HttpError> {
        let url = Url::parse(&request.url)
            .map_err(|e| wit::HttpError::InvalidRequest(format!("invalid URL: {e}")))?;
        let url = canonical(url);
        if !self.allowlist.allows(&url) {
            return Err(wit::HttpError::Denied(format!(
                "{} is not on the connector's allowlist",
                origin_text(&url)
            )));
        }
        let mut plain = HeaderMap::new();
        let mut secret = HeaderMap::new();
        for h in &request.headers {
            let name = guest_header(&h.name)?;
            let (text, is_secret) = match &h.value {
                wit::HeaderValue::Text(t) => (t.clone(), false),
                wit::HeaderValue::Secret(name) => (self.secret(name)?.to_string(), true),
                wit::HeaderValue::SecretWithPrefix(r) => {
                    (format!("{}{}", r.prefix, self.secret(&r.name)?), true)
                }
            };
            let mut value = ReqHeaderValue::from_str(&text).map_err(|_| {
                wit::HttpError::InvalidRequest(format!("invalid value for header `{}`", h.name))
            })?;
            if is_secret {
                value.set_sensitive(true);
                secret.append(name, value);
            } else {
                plain.append(name, value);
            }
        }
        for t in templated {
            let name = guest_header(&t.header)?;
            let text = format!("{}{}{}", t.before, self.secret(&t.secret)?, t.after);
            let mut value = ReqHeaderValue::from_str(&text).map_err(|_| {
                wit::HttpError::InvalidRequest(format!("invalid value for header `{}`", t.header))
            })?;
            value.set_sensitive(true);
            secret.append(name, value);
        }
        Ok(Prepared {
            method: method(request.method),
            url,
            plain,
            secret,
        })
    }

    fn secret(&self, name: &str) -> Result<&str, wit::HttpError> {
        if !self.declared_secrets.iter().any(|d| d == name) {
            return Err(wit::HttpError::Denied(format!(
                "`{name}` is not a secret the connector's manifest declares"
            )));
        }
        self.secrets.get(name).map(String::as_str).ok_or_else(|| {
            wit::HttpError::Denied(format!("the account has no secret named `{name}`"))
        })
    }

    async fn exchange(
        &mut self,
        mut p: Prepared,
        mut body: Option<Vec<u8>>,
    ) -> wasmtime::Result<Result<wit::Response, wit::HttpError>> {
        let origin = p.url.origin();
        for _hop in 0..=MAX_REDIRECTS {
            if self.requests >= self.max_requests {
                return Err(LimitExceeded(format!(
                    "HTTP requests: the run may send {}",
                    self.max_requests
                ))
                .into());
            }
            let (target, overridden) = self.service.route(&p.url);
            let host = target.host_str().unwrap_or_default().to_string();
            let port = target.port_or_known_default().unwrap_or(0);
            if !overridden {
                if let Err(why) = check_destination(&host, port, self.service.allow_private).await {
                    return Ok(Err(wit::HttpError::Denied(why)));
                }
            }
            let waited = self.limiter.acquire().await;
            if waited >= Duration::from_millis(1) {
                self.service.metrics.rate_limit_wait(&self.platform, waited);
            }
            self.rate_limit_wait += waited;
            self.requests += 1;
            let mut headers = p.plain.clone();
            if p.url.origin() == origin {
                for (k, v) in &p.secret {
                    headers.append(k.clone(), v.clone());
                }
            }
            let mut builder = self
                .service
                .client
                .request(p.method.clone(), target)
                .headers(headers);
            if let Some(b) = &body {
                builder = builder.body(b.clone());
            }
            let asked = std::time::Instant::now();
            let response = match builder.send().await {
                Ok(r) => r,
                Err(e) => {
                    self.platform_wait += asked.elapsed();
                    self.service.metrics.http_request(&self.platform, None);
                    return Ok(Err(transport_error(e, &p.url)));
                }
            };
            let status = response.status();
            self.service
                .metrics
                .http_request(&self.platform, Some(status.as_u16()));
            if status.as_u16() == 429 {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
                    .unwrap_or(Duration::from_secs(1));
                self.limiter.back_off(wait);
            }
            if status.is_redirection() {
                if let Some(location) = response.headers().get("location") {
                    self.refuse_echo(location.as_bytes(), "redirect location", &p.url)?;
                    let next = location
                        .to_str()
                        .ok()
                        .and_then(|l| p.url.join(l).ok())
                        .map(canonical)
                        .ok_or_else(|| wit::HttpError::Connection("invalid redirect".into()));
                    let next = match next {
                        Ok(n) => n,
                        Err(e) => return Ok(Err(e)),
                    };
                    if !self.allowlist.allows(&next) {
                        return Ok(Err(wit::HttpError::Denied(format!(
                            "redirect to {} is not on the connector's allowlist",
                            origin_text(&next)
                        ))));
                    }
                    if status.as_u16() == 303
                        || (matches!(status.as_u16(), 301 | 302)
                            && p.method == reqwest::Method::POST)
                    {
                        p.method = reqwest::Method::GET;
                        body = None;
                    }
                    p.url = next;
                    self.platform_wait += asked.elapsed();
                    continue;
                }
            }
            let answer = self.read(p.url, response).await;
            self.platform_wait += asked.elapsed();
            return answer;
        }
        Ok(Err(wit::HttpError::Connection(format!(
            "more than {MAX_REDIRECTS} redirects"
        ))))
    }

    async fn read(
        &mut self,
        url: Url,
        response: reqwest::Response,
    ) -> wasmtime::Result<Result<wit::Response, wit::HttpError>> {
        let status = response.status().as_u16();
        self.refuse_echo(url.as_str().as_bytes(), "final URL", &url)?;
        for (name, value) in response.headers() {
            self.refuse_echo(value.as_bytes(), &format!("response header `{name}`"), &url)?;
        }
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if let Some(len) = response.content_length() {
            if len > self.max_response {
                return Ok(Err(wit::HttpError::TooLarge(self.max_response)));
            }
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    return Ok(Err(wit::HttpError::Connection(format!(
                        "response body truncated: {}",
                        error_chain(&e.without_url())
                    ))))
                }
            };
            self.bytes_received += chunk.len() as u64;
            if self.bytes_received > self.max_received {
                return Err(LimitExceeded(format!(
                    "bytes received: the run may receive {} bytes",
                    self.max_received
                ))
                .into());
            }
            if (body.len() + chunk.len()) as u64 > self.max_response {
                return Ok(Err(wit::HttpError::TooLarge(self.max_response)));
            }
            body.extend_from_slice(&chunk);
        }
        self.refuse_echo(&body, "response body", &url)?;
        Ok(Ok(wit::Response {
            status,
            headers,
            body,
            url: url.to_string(),
        }))
    }

    /// Ends the run if `bytes` (part of an answer from `url`) carries a secret back.
    fn refuse_echo(&self, bytes: &[u8], place: &str, url: &Url) -> wasmtime::Result<()> {
        let Some((matcher, names)) = &self.echo_matcher else {
            return Ok(());
        };
        match matcher.find(bytes) {
            Some(m) => Err(SecretEchoed {
                secret: names[m.pattern().as_usize()].clone(),
                place: place.to_string(),
                origin: origin_text(url),
            }
            .into()),
            None => Ok(()),
        }
    }
}

struct Prepared {
    method: reqwest::Method,
    url: Url,
    plain: HeaderMap,
    secret: HeaderMap,
}

fn method(m: wit::Method) -> reqwest::Method {
    match m {
        wit::Method::Get => reqwest::Method::GET,
        wit::Method::Head => reqwest::Method::HEAD,
        wit::Method::Post => reqwest::Method::POST,
        wit::Method::Put => reqwest::Method::PUT,
        wit::Method::Patch => reqwest::Method::PATCH,
        wit::Method::Delete => reqwest::Method::DELETE,
    }
}

/// The `http` import's view of a run: its session, or none (while describing).
pub struct HttpView<'a>(pub &'a mut Option<HttpSession>);

impl crate::contract::bindings::passerelle::connector::http::Host for HttpView<'_> {
    async fn send(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::HttpError>> {
        self.send_templated(request, Vec::new()).await
    }

    async fn send_templated(
        &mut self,
        request: wit::Request,
        templated: Vec<wit::SecretTemplate>,
    ) -> wasmtime::Result<Result<wit::Response, wit::HttpError>> {
        match self.0 {
            Some(session) => session.send(request, &templated).await,
            None => Ok(Err(wit::HttpError::Denied(
                "HTTP is not available while describing a connector".into(),
            ))),
        }
    }
}

fn origin_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What the connector is told about a failed exchange with `asked` (the URL it wrote,
/// never where an operator override sent it: reqwest's own text names the real target).
fn transport_error(e: reqwest::Error, asked: &Url) -> wit::HttpError {
    if e.is_timeout() {
        return wit::HttpError::Timeout;
    }
    let e = e.without_url();
    let chain = format!("{}: {}", origin_text(asked), error_chain(&e));
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.is::<PrivateAddress>() {
            return wit::HttpError::Denied(chain);
        }
        source = s.source();
    }
    wit::HttpError::Connection(chain)
}

#[cfg(test)]
mod tests {
    use crate::capabilities::http::*;

    /// A name that resolves to loopback at connect time (the rebinding case, past the
    /// pre-flight check) is `denied`, recognised by the resolver's typed error.
    #[tokio::test]
    async fn a_private_address_at_connect_time_is_denied() {
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: false,
                trusted_hosts: Arc::default(),
            }))
            .build()
            .unwrap();
        let err = client
            .get("http://localhost:9/")
            .send()
            .await
            .expect_err("refused");
        match transport_error(err, &Url::parse("https://platform.example/x").unwrap()) {
            wit::HttpError::Denied(reason) => {
                assert!(reason.contains("private addresses"), "{reason}");
                assert!(reason.starts_with("https://platform.example: "), "{reason}");
                assert!(!reason.contains(":9"), "the real target shows: {reason}");
            }
            other => panic!("not denied: {other:?}"),
        }
    }
}
