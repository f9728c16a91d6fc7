//! Named admin-API tokens: created with scopes (the token shown once; only its SHA-256
//! is kept), listed, revoked; and who a presented bearer token is. The daemon's own
//! token (`daemon.token` or the data directory's `admin-token`) is the `admin` principal.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::principal::{Principal, Scope};
use super::{ServiceError, ServiceResult};
use crate::app::Passerelle;
use passerelle_model::ids::validate_id;
use passerelle_model::token::ApiToken;

/// Every named token starts so, to tell them from the admin token and to be found by
/// secret scanners.
const PREFIX: &str = "pst_";

/// A token just created: the only time its value is shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    /// The bearer token. Not stored: keep it now.
    pub secret: String,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Passerelle {
    /// Creates a token named `name` holding `scopes`.
    pub async fn create_token(&self, name: &str, scopes: &[String]) -> ServiceResult<CreatedToken> {
        validate_id("token", name)?;
        if name == "admin" {
            return Err(ServiceError::invalid(
                "`admin` names the daemon's own token: choose another name",
            ));
        }
        if scopes.is_empty() {
            return Err(ServiceError::invalid(
                "give the token at least one scope (admin, read, patients:read)",
            ));
        }
        let mut parsed: Vec<Scope> = Vec::new();
        for s in scopes {
            let scope = Scope::parse(s)?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        let names: Vec<String> = parsed.iter().map(|s| s.to_string()).collect();
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("{PREFIX}{}", hex::encode(bytes));
        let mut w = self.audited().await?;
        self.store
            .add_token_in(&mut w, name, &hash(&secret), &names)
            .await?;
        self.commit_audited(
            w,
            "token.create",
            name,
            serde_json::json!({"scopes": names}),
        )
        .await?;
        let token = self
            .store
            .tokens()
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| anyhow::anyhow!("the token just stored is missing"))?;
        Ok(CreatedToken { token, secret })
    }

    /// Every named token (revoked ones included), never their values.
    pub async fn tokens(&self) -> ServiceResult<Vec<ApiToken>> {
        Ok(self.store.tokens().await?)
    }

    /// Revokes a token at once.
    pub async fn revoke_token(&self, name: &str) -> ServiceResult<()> {
        let mut w = self.audited().await?;
        if !self.store.revoke_token_in(&mut w, name).await? {
            return Err(ServiceError::not_found(format!(
                "no live token named `{name}`"
            )));
        }
        self.commit_audited(w, "token.revoke", name, serde_json::json!({}))
            .await
    }

    /// Who `presented` is: the daemon's `admin_token` (compared in constant time), a
    /// live named token, or nobody.
    pub async fn principal_for(
        &self,
        admin_token: &str,
        presented: &str,
    ) -> ServiceResult<Option<Principal>> {
        if presented.is_empty() {
            return Ok(None);
        }
        if bool::from(presented.as_bytes().ct_eq(admin_token.as_bytes())) {
            return Ok(Some(Principal::trusted("token:admin")));
        }
        if !presented.starts_with(PREFIX) {
            return Ok(None);
        }
        Ok(self
            .store
            .token_by_hash(&hash(presented))
            .await?
            .map(|t| Principal {
                name: format!("token:{}", t.name),
                scopes: t
                    .scopes
                    .iter()
                    .filter_map(|s| Scope::parse(s).ok())
                    .collect(),
            }))
    }

    /// Who a bearer token presented by `from` (the client's address, when known) is:
    /// the address past its allowance of wrong tokens is refused before the token is
    /// looked at ([`crate::auth_limit`]); a wrong token counts against it and is recorded
    /// in the audit trail (`auth.refused`, with the address, never the token), as is the
    /// moment an address is held back (`auth.throttled`). `via`: `api` or `console`.
    pub async fn authenticate(
        &self,
        admin_token: &str,
        presented: &str,
        from: Option<std::net::IpAddr>,
        via: &str,
    ) -> ServiceResult<Authenticated> {
        // An address unknown (a caller without a socket) shares one allowance.
        let address = from.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if let Some(wait) = self.auth_limiter.blocked_for(address) {
            return Ok(Authenticated::Throttled(wait));
        }
        if let Some(p) = self.principal_for(admin_token, presented).await? {
            return Ok(Authenticated::Principal(p));
        }
        if presented.is_empty() {
            return Ok(Authenticated::Unknown);
        }
        let held_back = self.auth_limiter.failed(address);
        let anonymous = Principal {
            name: "anonymous".into(),
            scopes: Vec::new(),
        };
        super::principal::as_principal(anonymous, async {
            self.audit(
                "auth.refused",
                via,
                serde_json::json!({"address": address.to_string()}),
            )
            .await?;
            if let Some(wait) = held_back {
                tracing::warn!(%address, via, "too many wrong tokens: this address is held back");
                self.audit(
                    "auth.throttled",
                    via,
                    serde_json::json!({"address": address.to_string(), "seconds": wait.as_secs_f64().ceil()}),
                )
                .await?;
            }
            Ok::<_, ServiceError>(())
        })
        .await?;
        Ok(Authenticated::Unknown)
    }

    /// A console login: the token's principal if it may use the console (`read`),
    /// recorded in the audit trail whether it was let in or not (`console.login`,
    /// `console.login-refused`; never the token itself). Wrong tokens count against the
    /// client's address as the API's do ([`Passerelle::authenticate`]).
    pub async fn console_login(
        &self,
        admin_token: &str,
        presented: &str,
        from: Option<std::net::IpAddr>,
    ) -> ServiceResult<Result<Principal, LoginRefused>> {
        let outcome = match self
            .authenticate(admin_token, presented, from, "console")
            .await?
        {
            Authenticated::Throttled(wait) => return Ok(Err(LoginRefused::Throttled(wait))),
            Authenticated::Principal(p) if p.allows(Scope::Read) => Ok(p),
            Authenticated::Principal(p) => Err((LoginRefused::NoReadScope, p.name)),
            Authenticated::Unknown => Err((LoginRefused::UnknownToken, "anonymous".to_string())),
        };
        match outcome {
            Ok(p) => {
                let who = p.clone();
                super::principal::as_principal(who, async {
                    self.audit("console.login", "console", serde_json::json!({}))
                        .await
                })
                .await?;
                Ok(Ok(p))
            }
            Err((refused, name)) => {
                let actor = Principal {
                    name,
                    scopes: Vec::new(),
                };
                super::principal::as_principal(actor, async {
                    self.audit(
                        "console.login-refused",
                        "console",
                        serde_json::json!({"reason": refused.as_str()}),
                    )
                    .await
                })
                .await?;
                Ok(Err(refused))
            }
        }
    }

    /// A console logout, recorded under the session's principal.
    pub async fn console_logout(&self, principal: Principal) -> ServiceResult<()> {
        super::principal::as_principal(principal, async {
            self.audit("console.logout", "console", serde_json::json!({}))
                .await
        })
        .await
    }
}

/// Who a presented token is.
#[derive(Debug, Clone, PartialEq)]
pub enum Authenticated {
    Principal(Principal),
    /// No token, or neither the admin token nor a named token's.
    Unknown,
    /// The client's address presented too many wrong tokens: it waits this long.
    Throttled(std::time::Duration),
}

/// Why a console login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// Neither the admin token nor a named token's.
    UnknownToken,
    /// A named token without the `read` scope.
    NoReadScope,
    /// Too many wrong tokens from this address: it waits this long.
    Throttled(std::time::Duration),
}

impl LoginRefused {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginRefused::UnknownToken => "unknown token",
            LoginRefused::NoReadScope => "no read scope",
            LoginRefused::Throttled(_) => "too many wrong tokens",
        }
    }
}
