//! Who a request is for: its [`Principal`] (a name for the audit trail and the scopes it
//! holds), set by the front end for the request's duration ([`as_principal`]: the admin
//! API from the token presented, the CLI as the machine's user with every scope) and
//! read by the service where a rule depends on it ([`require`]: appointments need
//! `appointments:read`, patient fields `patients:read`). Outside any request — the daemon's own work — it is `daemon`, with
//! every scope.

use std::future::Future;

use super::{ServiceError, ServiceResult};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub enum Scope {
    /// Everything, changes included.
    #[serde(rename = "admin")]
    Admin,
    /// Practices, accounts, runs, slots (public availability), connectors: no
    /// appointment and no patient field.
    #[serde(rename = "read")]
    Read,
    /// Appointments (times, status, practitioner, visit motive, patients' initials):
    /// health data about people, each read audited; implies `read`.
    #[serde(rename = "appointments:read")]
    AppointmentsRead,
    /// Patient fields (appointments with patients, quarantined items); implies
    /// `appointments:read`.
    #[serde(rename = "patients:read")]
    PatientsRead,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Admin,
        Scope::Read,
        Scope::AppointmentsRead,
        Scope::PatientsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Read => "read",
            Scope::AppointmentsRead => "appointments:read",
            Scope::PatientsRead => "patients:read",
        }
    }

    pub fn parse(text: &str) -> ServiceResult<Scope> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                ServiceError::invalid(format!(
                    "unknown scope `{text}` (one of: admin, read, appointments:read, patients:read)"
                ))
            })
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// As the audit trail names them: `token:<name>`, `local:<user>`, `daemon`.
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// A principal with every scope (the CLI on the machine, the daemon, tests).
    pub fn trusted(name: impl Into<String>) -> Principal {
        Principal {
            name: name.into(),
            scopes: vec![Scope::Admin],
        }
    }

    /// Whether it holds `needed`: `admin` holds all; `patients:read` holds
    /// `appointments:read`, which holds `read`.
    pub fn allows(&self, needed: Scope) -> bool {
        let implied = |held: Scope| match held {
            Scope::Admin => true,
            Scope::PatientsRead => needed != Scope::Admin,
            Scope::AppointmentsRead => matches!(needed, Scope::AppointmentsRead | Scope::Read),
            Scope::Read => needed == Scope::Read,
        };
        self.scopes.iter().any(|&s| implied(s))
    }
}

tokio::task_local! {
    static PRINCIPAL: Principal;
}

/// Runs `work` on behalf of `principal`.
pub async fn as_principal<F: Future>(principal: Principal, work: F) -> F::Output {
    PRINCIPAL.scope(principal, work).await
}

/// Runs `work` on behalf of a principal named `name` with every scope.
pub async fn as_actor<F: Future>(name: String, work: F) -> F::Output {
    as_principal(Principal::trusted(name), work).await
}

/// The current request's principal.
pub fn current() -> Principal {
    PRINCIPAL
        .try_with(Clone::clone)
        .unwrap_or_else(|_| Principal::trusted("daemon"))
}

/// Refuses the current request unless its principal holds `needed`.
pub fn require(needed: Scope, what: &str) -> ServiceResult<()> {
    let p = current();
    if p.allows(needed) {
        return Ok(());
    }
    Err(ServiceError::Forbidden(format!(
        "{what} needs the `{needed}` scope, which `{}` does not hold",
        p.name
    )))
}

/// The CLI's principal on this machine: `local:<user name>`, every scope. The name is
/// the process's effective user's (its uid looked up in the user database; `uid:<n>`
/// when it has none), never an environment variable anyone can set.
pub fn local() -> Principal {
    let uid = nix::unistd::geteuid();
    let user = match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid:{uid}"),
    };
    Principal::trusted(format!("local:{user}"))
}
