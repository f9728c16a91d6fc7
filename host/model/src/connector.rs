//! Connectors as the host knows them: the manifest a version declares, what a candidate
//! asks for beyond the active version ([`Escalation`]), what an installation did
//! ([`Outcome`]), why a candidate was refused ([`Rejected`]), and an activation.

use serde::{Deserialize, Serialize};

/// A connector's manifest as the host keeps it (what `describe()` returned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub platform: String,
    pub allowed_hosts: Vec<String>,
    pub rate_limit: RateLimit,
    pub settings: Vec<Parameter>,
    pub secrets: Vec<Parameter>,
}

impl Manifest {
    /// Required settings or secrets this manifest declares and `account` lacks, said in
    /// one sentence; None when nothing is missing.
    pub fn missing_configuration(&self, account: &crate::practice::Account) -> Option<String> {
        let mut missing = Vec::new();
        for p in self.settings.iter().filter(|p| p.required) {
            if !account.settings.contains_key(&p.name) {
                missing.push(format!("setting `{}` ({})", p.name, p.description));
            }
        }
        for p in self.secrets.iter().filter(|p| p.required) {
            if !account.secrets.contains(&p.name) {
                missing.push(format!("secret `{}` ({})", p.name, p.description));
            }
        }
        (!missing.is_empty()).then(|| format!("the account lacks {}", missing.join(", ")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateLimit {
    pub requests_per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Parameter {
    pub name: String,
    pub description: String,
    pub required: bool,
}

/// A candidate refused, with the reason; the active version is untouched.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("rejected {origin}: {reason}")]
pub struct Rejected {
    /// `not-a-component`, `unsupported-contract`, `wrong-world`, `describe-failed`,
    /// `invalid-manifest`, `name-mismatch`, `duplicate-version`, `not-newer`.
    pub kind: &'static str,
    pub reason: String,
    /// Where the candidate came from (as [`Candidate::source`]).
    pub origin: String,
    pub sha256: String,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// What an installation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Kept and made active.
    Activated,
    /// Kept, not active: it asks for more than the active version.
    PendingApproval,
    /// These exact bytes were installed already; nothing changed.
    AlreadyInstalled,
}

/// What a candidate asks for that needs the operator's approval: beyond the active
/// version, or, for a first install, what accounts configured before it would hand it
/// and the hosts that need consent in any version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Escalation {
    pub new_hosts: Vec<String>,
    pub new_secrets: Vec<String>,
    /// Allowed hosts that need consent (plain http, IP address, wildcard over a public
    /// suffix) and are not in `plugins.trusted_hosts`, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risky_hosts: Vec<String>,
    /// A higher rate limit than the active version's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitRaise>,
    /// A first install of a name that accounts already reference (with their settings
    /// and secrets): how many.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accounts_waiting: u64,
    /// Under `plugins.shadow_gate`: the shadow replay found unexpected differences
    /// (records different, or an error, where the active version succeeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A rate limit raised from one version to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateLimitRaise {
    pub from: RateLimit,
    pub to: RateLimit,
}

impl Escalation {
    /// What `candidate` asks for that `active` does not.
    pub fn between(active: &Manifest, candidate: &Manifest) -> Escalation {
        let new = |now: Vec<&String>, before: Vec<&String>| -> Vec<String> {
            now.into_iter()
                .filter(|x| !before.contains(x))
                .cloned()
                .collect()
        };
        let (from, to) = (&active.rate_limit, &candidate.rate_limit);
        let rate_limit = (to.requests_per_second > from.requests_per_second
            || to.burst > from.burst)
            .then(|| RateLimitRaise {
                from: from.clone(),
                to: to.clone(),
            });
        Escalation {
            rate_limit,
            risky_hosts: Vec::new(),
            accounts_waiting: 0,
            shadow: None,
            new_hosts: new(
                candidate.allowed_hosts.iter().collect(),
                active.allowed_hosts.iter().collect(),
            ),
            new_secrets: new(
                candidate.secrets.iter().map(|p| &p.name).collect(),
                active.secrets.iter().map(|p| &p.name).collect(),
            ),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.new_hosts.is_empty()
            && self.new_secrets.is_empty()
            && self.risky_hosts.is_empty()
            && self.rate_limit.is_none()
            && self.accounts_waiting == 0
            && self.shadow.is_none()
    }
}

impl std::fmt::Display for Escalation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for h in &self.new_hosts {
            parts.push(format!("+ allowed host {h}"));
        }
        for s in &self.new_secrets {
            parts.push(format!("+ secret {s}"));
        }
        for h in &self.risky_hosts {
            parts.push(format!("! host needing consent {h}"));
        }
        if let Some(r) = &self.rate_limit {
            parts.push(format!(
                "+ rate limit {}/s burst {} (was {}/s burst {})",
                r.to.requests_per_second, r.to.burst, r.from.requests_per_second, r.from.burst
            ));
        }
        if self.accounts_waiting > 0 {
            parts.push(format!(
                "first install, {} account(s) already configured for it",
                self.accounts_waiting
            ));
        }
        if let Some(shadow) = &self.shadow {
            parts.push(format!("! {shadow}"));
        }
        f.write_str(&parts.join("; "))
    }
}

/// One activation: from which version to which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Activation {
    pub name: String,
    pub from: Option<String>,
    pub to: String,
    pub sha256: String,
}

/// A candidate component that was refused, and why.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Rejection {
    pub at: String,
    /// Where it came from: `api`, `cli`, or the watched file's path.
    pub source: String,
    pub sha256: String,
    /// What `describe()` said, when it got that far.
    pub name: Option<String>,
    pub version: Option<String>,
    /// `not-a-component`, `unsupported-contract`, `wrong-world`, `describe-failed`,
    /// `invalid-manifest`, `name-mismatch`, `duplicate-version`, `not-newer`.
    pub kind: String,
    pub reason: String,
}

/// A version running for some practices only, before promotion.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Canary {
    pub name: String,
    pub version: String,
    pub practices: Vec<String>,
    pub started_at: String,
}
