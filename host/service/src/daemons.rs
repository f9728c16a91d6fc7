//! The daemons sharing this database, as `passerelle daemons`, `GET /v1/daemons` and
//! `/healthz` show them: the live ones (lease not ended), each with the runs it holds.

use chrono::Utc;

use super::ServiceResult;
use crate::app::Passerelle;
use passerelle_model::daemon::DaemonRow;
use passerelle_store::runs::time_text;

/// Daemons gone for longer than this are forgotten.
const FORGET_AFTER: chrono::Duration = chrono::Duration::days(1);

impl Passerelle {
    /// The live daemons on this database.
    pub async fn daemons(&self) -> ServiceResult<Vec<DaemonRow>> {
        let now = Utc::now();
        Ok(self
            .store
            .live_daemons(&time_text(now), &time_text(now - FORGET_AFTER))
            .await?)
    }
}
