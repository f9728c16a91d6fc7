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
