//! The WIT contract `passerelle:connector` as the host sees it: the generated bindings
//! ([`bindings`]), the short name the rest of the host uses for its types ([`wit`]), and
//! their conversions to model types.
//! Components built against every 0.1.x version load (see [`bindings`]).

pub mod bindings;

pub use bindings::passerelle::connector::types as wit;
pub use bindings::{Connector, ConnectorPre};

use passerelle_model::connector::{Manifest, Parameter, RateLimit};

impl From<wit::Manifest> for Manifest {
    fn from(m: wit::Manifest) -> Self {
        let params = |ps: Vec<wit::Parameter>| {
            ps.into_iter()
                .map(|p| Parameter {
                    name: p.name,
                    description: p.description,
                    required: p.required,
                })
                .collect()
        };
        Manifest {
            name: m.name,
            version: m.version,
            platform: m.platform,
            allowed_hosts: m.allowed_hosts,
            rate_limit: RateLimit {
                requests_per_second: m.rate_limit.requests_per_second,
                burst: m.rate_limit.burst,
            },
            settings: params(m.settings),
            secrets: params(m.secrets),
        }
    }
}

/// The account as the connector sees it (secret names, never values).
pub fn wit_account(account: &passerelle_model::practice::Account) -> wit::Account {
    wit::Account {
        practice_id: account.practice_id.clone(),
        account_id: account.id.clone(),
        settings: account
            .settings
            .iter()
            .map(|(k, v)| wit::Setting {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        secrets: account.secrets.clone(),
    }
}

/// Run status, error kind and a one-line detail for a connector's error.
pub fn describe_error(
    e: &wit::SyncError,
) -> (
    passerelle_model::run::Status,
    passerelle_model::run::ErrorKind,
    String,
) {
    use passerelle_model::run::{ErrorKind, Status};
    match e {
        wit::SyncError::SchemaDrift(d) => (
            Status::Drift,
            ErrorKind::SchemaDrift,
            format!(
                "{}: at {} expected {}, found {}",
                d.endpoint, d.path, d.expected, d.found
            ),
        ),
        wit::SyncError::Unauthorized(m) => (Status::Failed, ErrorKind::Unauthorized, m.clone()),
        wit::SyncError::RateLimited(after) => (
            Status::Failed,
            ErrorKind::RateLimited,
            match after {
                Some(s) => format!("the platform asked to retry after {s} s"),
                None => "the platform asked to slow down".into(),
            },
        ),
        wit::SyncError::Unavailable(m) => (Status::Failed, ErrorKind::Unavailable, m.clone()),
        wit::SyncError::InvalidConfig(m) => (Status::Failed, ErrorKind::InvalidConfig, m.clone()),
        wit::SyncError::Internal(m) => (Status::Failed, ErrorKind::Internal, m.clone()),
    }
}
