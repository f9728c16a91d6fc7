//! What an operator on duty looks at first, as data: the last 24 hours' runs by platform
//! and status and per quarter-hour, the last 14 days' durations per platform (p50/p95),
//! accounts paused (with what drifted), the quarantine's size, each connector's active,
//! pending and canary versions; a searchable page of practices; a practice's accounts
//! with their last run and pause. The console renders these; it decides nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::connectors::ConnectorView;
use super::practices::PracticeView;
use super::ServiceResult;
use crate::app::Passerelle;
use passerelle_model::connector::Escalation;
use passerelle_model::pause::Pause;
use passerelle_model::run::{Run, Status};
use passerelle_store::durations::DayDurations;
use passerelle_store::practices::Account;

/// The overview's time spans.
pub const DAY: Duration = Duration::hours(24);
pub const FORTNIGHT: Duration = Duration::days(14);

/// The last day, the last fortnight, and what needs attention.
#[derive(Debug, Clone)]
pub struct Overview {
    pub now: DateTime<Utc>,
    /// Per platform, runs started in the last 24 h by status.
    pub platforms: Vec<PlatformRuns>,
    /// 96 quarter-hours, oldest first, ending with the current one.
    pub quarter_hours: Vec<QuarterHour>,
    /// Per platform, one entry per day of the last 14 that had finished runs.
    pub durations: BTreeMap<String, Vec<DayDurations>>,
    pub paused: Vec<Pause>,
    pub quarantined: i64,
    pub connectors: Vec<ConnectorSummary>,
}

/// One platform's runs of the last 24 h.
#[derive(Debug, Clone)]
pub struct PlatformRuns {
    pub connector: String,
    pub by_status: BTreeMap<&'static str, i64>,
    pub total: i64,
}

impl PlatformRuns {
    pub fn count(&self, status: Status) -> i64 {
        self.by_status.get(status.as_str()).copied().unwrap_or(0)
    }
}

/// Runs started in one quarter-hour: those that ended well, badly, and the rest
/// (queued, running, skipped, cancelled).
#[derive(Debug, Clone, Default)]
pub struct QuarterHour {
    pub start: DateTime<Utc>,
    pub succeeded: i64,
    /// Failed or drifted.
    pub failed: i64,
    pub other: i64,
}

/// A connector as the overview lists it.
#[derive(Debug, Clone)]
pub struct ConnectorSummary {
    pub name: String,
    pub active: Option<String>,
    /// Versions waiting for approval, with what each asks for.
    pub pending: Vec<(String, Escalation)>,
    /// The version running as a canary and for how many practices.
    pub canary: Option<(String, usize)>,
    pub versions: usize,
}

/// Groups the installed versions by connector.
pub fn summarise(views: &[ConnectorView]) -> Vec<ConnectorSummary> {
    let mut by_name: BTreeMap<&str, ConnectorSummary> = BTreeMap::new();
    for v in views {
        let entry = by_name
            .entry(v.name.as_str())
            .or_insert_with(|| ConnectorSummary {
                name: v.name.clone(),
                active: None,
                pending: Vec::new(),
                canary: None,
                versions: 0,
            });
        entry.versions += 1;
        if v.active {
            entry.active = Some(v.version.clone());
        }
        if let Some(e) = &v.pending_approval {
            entry.pending.push((v.version.clone(), e.clone()));
        }
        if let Some(practices) = &v.canary {
            entry.canary = Some((v.version.clone(), practices.len()));
        }
    }
    by_name.into_values().collect()
}

/// A page of practices.
#[derive(Debug, Clone)]
pub struct PracticePage {
    pub practices: Vec<PracticeView>,
    /// How many practices match the search.
    pub total: i64,
    /// The id to continue after, when there are more.
    pub next: Option<String>,
}

/// An account as its practice's page shows it.
#[derive(Debug, Clone)]
pub struct AccountState {
    pub account: Account,
    pub last_run: Option<Run>,
    pub paused: Option<Pause>,
}

impl Passerelle {
    /// The overview at `now`.
    pub async fn overview(&self, now: DateTime<Utc>) -> ServiceResult<Overview> {
        let day_ago = now - DAY;
        let mut platforms: BTreeMap<String, PlatformRuns> = BTreeMap::new();
        for c in self.store.run_counts_since(day_ago).await? {
            let entry = platforms
                .entry(c.connector.clone())
                .or_insert_with(|| PlatformRuns {
                    connector: c.connector.clone(),
                    by_status: BTreeMap::new(),
                    total: 0,
                });
            *entry.by_status.entry(c.status.as_str()).or_default() += c.runs;
            entry.total += c.runs;
        }
        let quarter_hours = quarter_hours(
            now,
            self.store
                .runs_per_quarter(day_ago)
                .await?
                .into_iter()
                .map(|q| {
                    let start = format!("{}:{:02}:00Z", q.hour, q.quarter * 15);
                    (start, q.status, q.runs)
                }),
        );
        let fortnight_ago = (now - FORTNIGHT)
            .duration_trunc(Duration::days(1))
            .unwrap_or(now - FORTNIGHT);
        let mut durations: BTreeMap<String, Vec<DayDurations>> = BTreeMap::new();
        for d in self.store.duration_percentiles(fortnight_ago).await? {
            durations.entry(d.connector.clone()).or_default().push(d);
        }
        Ok(Overview {
            now,
            platforms: platforms.into_values().collect(),
            quarter_hours,
            durations,
            paused: self.store.pauses(None).await?,
            quarantined: self.store.quarantine_count().await?,
            connectors: summarise(&self.connector_views().await?),
        })
    }

    /// Practices whose id or name contains `search`, `limit` at a time after `after`.
    pub async fn practice_page(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: Option<i64>,
        now: DateTime<Utc>,
    ) -> ServiceResult<PracticePage> {
        let limit = super::limit(limit, 50, 1_000)?;
        let search = search.map(str::trim).filter(|s| !s.is_empty());
        let (practices, total) = self.store.practices_page(search, after, limit + 1).await?;
        let more = practices.len() as i64 > limit;
        let practices: Vec<PracticeView> = practices
            .into_iter()
            .take(limit as usize)
            .map(|p| PracticeView::new(p, &self.config.schedule, now, None))
            .collect();
        let next = if more {
            practices.last().map(|p| p.practice.id.clone())
        } else {
            None
        };
        Ok(PracticePage {
            practices,
            total,
            next,
        })
    }

    /// An account's pause, if it is paused.
    pub async fn account_pause(&self, id: &str) -> ServiceResult<Option<Pause>> {
        Ok(self.store.pause(id).await?)
    }

    /// A practice's accounts with their last run and pause.
    pub async fn account_states(&self, practice_id: &str) -> ServiceResult<Vec<AccountState>> {
        self.practice(practice_id).await?;
        let accounts = self.store.list_accounts(Some(practice_id)).await?;
        let last_runs = self.store.last_runs(practice_id).await?;
        let mut states = Vec::with_capacity(accounts.len());
        for account in accounts {
            let last_run = last_runs
                .iter()
                .find(|r| r.account_id == account.id)
                .cloned();
            let paused = self.store.pause(&account.id).await?;
            states.push(AccountState {
                account,
                last_run,
                paused,
            });
        }
        Ok(states)
    }
}

/// The 96 quarter-hours ending with `now`'s, filled from `(start, status, runs)`.
fn quarter_hours(
    now: DateTime<Utc>,
    counts: impl Iterator<Item = (String, Status, i64)>,
) -> Vec<QuarterHour> {
    let quarter = Duration::minutes(15);
    let last = now.duration_trunc(quarter).unwrap_or(now);
    let first = last - quarter * 95;
    let mut buckets: Vec<QuarterHour> = (0..96)
        .map(|i| QuarterHour {
            start: first + quarter * i,
            ..QuarterHour::default()
        })
        .collect();
    for (start, status, runs) in counts {
        let Ok(start) = DateTime::parse_from_rfc3339(&start) else {
            continue;
        };
        let index = (start.with_timezone(&Utc) - first).num_minutes() / 15;
        let Some(bucket) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) else {
            continue;
        };
        match status {
            Status::Succeeded => bucket.succeeded += runs,
            Status::Failed | Status::Drift => bucket.failed += runs,
            _ => bucket.other += runs,
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_hours_cover_the_last_day_and_place_each_count() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T06:52:25Z")
            .unwrap()
            .with_timezone(&Utc);
        let counts = vec![
            ("2026-11-30T06:45:00Z".to_string(), Status::Succeeded, 3),
            ("2026-11-30T06:45:00Z".to_string(), Status::Drift, 1),
            ("2026-11-29T07:00:00Z".to_string(), Status::Failed, 2),
            // Before the window (a run started 24 h ago, in the quarter before).
            ("2026-11-29T06:45:00Z".to_string(), Status::Succeeded, 9),
        ];
        let q = quarter_hours(now, counts.into_iter());
        assert_eq!(q.len(), 96);
        assert_eq!(q[95].start.to_rfc3339(), "2026-11-30T06:45:00+00:00");
        assert_eq!((q[95].succeeded, q[95].failed), (3, 1));
        assert_eq!(q[0].start.to_rfc3339(), "2026-11-29T07:00:00+00:00");
        assert_eq!(q[0].failed, 2);
        assert_eq!(q.iter().map(|b| b.succeeded).sum::<i64>(), 3);
    }
}
