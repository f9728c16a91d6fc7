//! One run for one account, end to end: open the run in the sync log, give the
//! connector its capabilities, call `sync`, commit or discard, close the run.
//!
//! What reaches the database: everything committed at the connector's checkpoints, and
//! on success the rest with the final cursor (plus tombstones for a full sync). A
//! failed run keeps its earlier checkpoints and discards the rest.

use anyhow::{Context, Result};
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use tracing::Instrument as _;

use crate::alerts::DriftAlert;
use crate::app::Passerelle;
use crate::recorder::RunOf;
use crate::{ServiceError, ServiceResult};
use passerelle_model::connector::Manifest;
use passerelle_model::pause::Pause;
use passerelle_model::records::{Finish, Scope};
use passerelle_model::run::{
    DriftReport, ErrorKind, Mode, PauseReason, Run, RunCounts, RunEnd, Status, Trigger,
};
use passerelle_runtime::capabilities::http::{self, HttpSession};
use passerelle_runtime::capabilities::records::{self, LastCommitOf, RecordsSession};
use passerelle_runtime::contract::{describe_error, wit, wit_account};
use passerelle_runtime::sandbox::{Call, CallOutput, RunParts};
use passerelle_runtime::scrub::Scrubber;
use passerelle_store::pauses::PauseEffect;
use passerelle_store::practices::Account;
use passerelle_store::runs::StartError;

/// How to run.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub trigger: Trigger,
    pub mode: Mode,
    /// The run's clock: its window is computed around it and availability before it is
    /// not stored. None is the wall clock; `connector test --now` replays recorded
    /// responses at the time they were recorded.
    pub now: Option<DateTime<Utc>>,
    /// Keep every HTTP exchange of the run here (`passerelle sync --record`).
    pub record: Option<passerelle_runtime::capabilities::http::Recording>,
}

/// A run the daemon claimed, with what the claim read for it (the queue's
/// [`passerelle_store::queue::Claimed`]).
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub run_id: i64,
    /// The version the claim chose for it (and recorded in its row).
    pub connector_version: String,
    pub connector_sha256: String,
    /// The cursor it starts from, as the claim recorded it.
    pub cursor: Option<String>,
    /// Whether the account was paused when claimed (pauses are written only by the end of
    /// a run, and an account runs one run at a time).
    pub paused: bool,
    /// When the claim's statement started and ended, for the run's trace.
    pub claimed: Option<(std::time::SystemTime, std::time::SystemTime)>,
    /// The account's stored slots as the claim read them (its last commit then need
    /// not read them).
    pub stored_slots: Option<std::sync::Arc<std::collections::HashSet<String>>>,
}

impl Passerelle {
    /// One run of one account. Errors are the host's own (database down, connector not
    /// installed); everything the connector does wrong ends up in the returned run.
    pub async fn sync_account(
        &self,
        account: &Account,
        options: SyncOptions,
    ) -> ServiceResult<Run> {
        self.sync_account_as(account, options, None).await
    }

    /// [`Self::sync_account`] for a run already recorded as queued and claimed (the
    /// daemon's), or a new one when `claimed` is None.
    pub async fn sync_account_as(
        &self,
        account: &Account,
        options: SyncOptions,
        claimed: Option<ClaimedRun>,
    ) -> ServiceResult<Run> {
        let (version, loaded, manifest) = match &claimed {
            Some(c) => {
                self.claimed_connector(account, &c.connector_version, &c.connector_sha256)
                    .await?
            }
            None => self.connector_for(account).await?,
        };
        let cursor_before = match (options.mode, &claimed) {
            (_, Some(c)) => c.cursor.clone(),
            (Mode::Incremental, None) => self.store.cursor(&account.id).await?,
            (Mode::Full, None) => None,
        };
        // Only a paused account has a pause for a successful run to lift.
        let may_be_paused = claimed.as_ref().is_none_or(|c| c.paused);
        let claim_window = claimed.as_ref().and_then(|c| c.claimed);
        let stored_slots = claimed.as_ref().and_then(|c| c.stored_slots.clone());
        let queued_run = claimed.map(|c| c.run_id);
        let recorder = self.recorder();
        let run_of = RunOf {
            account,
            version: (&version).into(),
            trigger: options.trigger,
            mode: options.mode,
        };
        let run_id = match recorder
            .start(run_of, cursor_before.as_deref(), queued_run)
            .await
        {
            Ok(id) => id,
            Err(busy @ StartError::Busy { .. }) => match queued_run {
                // The daemon's queued run meets a run of another process: it does not
                // happen, and says why.
                Some(id) => {
                    return recorder
                        .end_without_work(id, Status::Skipped, ErrorKind::Busy, busy.to_string())
                        .await
                        .context("recording a busy run")
                        .map_err(Into::into);
                }
                None => return Err(ServiceError::conflict("already-running", busy.to_string())),
            },
            Err(StartError::Store(e)) => return Err(e.into()),
        };
        let span = tracing::info_span!(
            "run",
            run = run_id,
            practice = %account.practice_id,
            account = %account.id,
            connector = %version.name,
            version = %version.version,
            trigger = %options.trigger.as_str(),
            mode = %options.mode.as_str(),
        );
        if let Some((from, to)) = claim_window {
            crate::trace::past_span(&span, "claim", from, to);
        }
        let started = std::time::Instant::now();
        let Executed { end, last } = match manifest.missing_configuration(account) {
            Some(problem) => Executed {
                end: RunEnd::without_work(Status::Failed, ErrorKind::InvalidConfig, problem),
                last: None,
            },
            None => {
                self.execute_sync(
                    account,
                    &manifest,
                    &loaded,
                    run_id,
                    cursor_before,
                    stored_slots,
                    options,
                    span.clone(),
                )
                .await?
            }
        };
        let end = RunEnd {
            duration_ms: started.elapsed().as_millis() as i64,
            ..end
        };
        // A drifted run pauses its account; a successful run lifts a pause. Written with
        // the run's end, so nobody sees one without the other.
        // A security event (a secret came back) pauses it until the operator resumes it.
        let paused = |reason, drift: DriftReport| Pause {
            account_id: account.id.clone(),
            reason,
            connector: version.name.clone(),
            run_id,
            version: version.version.clone(),
            sha256: version.sha256.clone(),
            drift,
            paused_at: String::new(),
        };
        // Past a quota (or the disk guard): paused the same way, for the operator.
        let over_quota = |detail: String| {
            paused(
                PauseReason::Security,
                DriftReport {
                    endpoint: String::new(),
                    path: String::new(),
                    expected: "the account within its quotas ([quotas])".into(),
                    found: detail,
                    shape: None,
                },
            )
        };
        let mut pause = match (&end.status, &end.drift, end.error_kind) {
            (Status::Drift, Some(drift), _) => Some(paused(PauseReason::Drift, drift.clone())),
            (_, _, Some(ErrorKind::Security)) => Some(paused(
                PauseReason::Security,
                DriftReport {
                    endpoint: String::new(),
                    path: String::new(),
                    expected: "no secret value in a platform's answer".into(),
                    found: end.error_detail.clone().unwrap_or_default(),
                    shape: None,
                },
            )),
            (_, _, Some(ErrorKind::Quota)) => {
                Some(over_quota(end.error_detail.clone().unwrap_or_default()))
            }
            _ => None,
        };
        let effect = match (&pause, end.status) {
            (Some(p), _) => PauseEffect::Pause(p),
            (None, Status::Succeeded) if may_be_paused => PauseEffect::Lift(&account.id),
            _ => PauseEffect::Keep,
        };
        let (run, lifted) = match last {
            // A successful run's last commit and its end are one transaction.
            Some(mut last) => match match last.records.last_commit(last.commit) {
                Ok(commit) => {
                    recorder
                        .finish_with_records(last.records.scope(), commit, &end, effect)
                        .instrument(tracing::debug_span!(parent: &span, "finish", records = true))
                        .await
                }
                Err(e) => Err(e),
            } {
                Ok(ended) => ended,
                Err(e) => {
                    // Nothing of it was written: the run failed to store its records —
                    // past a quota (the account is paused), or the database failed.
                    let quota = match e.downcast_ref::<passerelle_store::error::StoreError>() {
                        Some(passerelle_store::error::StoreError::Quota(q)) => Some(q.to_string()),
                        _ => None,
                    };
                    let (kind, detail) = match &quota {
                        Some(q) => (ErrorKind::Quota, q.clone()),
                        None => (ErrorKind::Storage, format!("{e:#}")),
                    };
                    let failed = RunEnd {
                        status: Status::Failed,
                        error_kind: Some(kind),
                        error_detail: Some(last.scrubber.scrub(&detail)),
                        message: None,
                        ..end.clone()
                    };
                    pause = quota.map(|q| over_quota(last.scrubber.scrub(&q)));
                    let effect = match &pause {
                        Some(p) => PauseEffect::Pause(p),
                        None => PauseEffect::Keep,
                    };
                    recorder
                        .finish(run_id, &failed, effect)
                        .instrument(tracing::debug_span!(parent: &span, "finish", records = false))
                        .await?
                }
            },
            None => {
                recorder
                    .finish(run_id, &end, effect)
                    .instrument(tracing::debug_span!(parent: &span, "finish", records = false))
                    .await?
            }
        };
        if let Some(pause) = pause {
            self.alert_drift(account, pause);
        } else if lifted {
            tracing::info!(
                account = %account.id,
                connector = %version.name,
                version = %version.version,
                run = run_id,
                "drift pause lifted: the run succeeded"
            );
        }
        {
            let _e = span.enter();
            tracing::info!(
                status = %end.status,
                error = end.error_kind.map(ErrorKind::as_str).unwrap_or(""),
                added = end.counts.appointments_added,
                changed = end.counts.appointments_changed,
                tombstoned = end.counts.appointments_tombstoned,
                duration_ms = end.duration_ms,
                "run finished"
            );
        }
        Ok(run)
    }

    /// Raises the alert of a run that paused its account (drift or security event).
    fn alert_drift(&self, account: &Account, pause: Pause) {
        self.alerts.drift(DriftAlert {
            event: match pause.reason {
                PauseReason::Drift => "connector.drift",
                PauseReason::Security => "connector.security",
            }
            .into(),
            connector: pause.connector,
            version: pause.version,
            sha256: pause.sha256,
            practice_id: account.practice_id.clone(),
            account_id: account.id.clone(),
            run_id: pause.run_id,
            drift: pause.drift,
            paused: true,
            at: passerelle_store::now_text(),
        });
    }

    /// The HTTP capability of a run of `account` ([`http::prepare`]) with its
    /// secrets read from the store and the operator's rate limit for its platform, and
    /// the run's scrubber that knows the secrets: the same for `check()` and `sync()`.
    pub(crate) async fn prepare_http(
        &self,
        account: &Account,
        manifest: &Manifest,
        limits: &passerelle_model::limits::Limits,
        given: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Result<(HttpSession, Scrubber)> {
        // Secrets given (an account being checked before it is stored) or the stored
        // ones; an account without secrets (public availability only) has none to read.
        let secrets = match given {
            Some(given) => given.clone(),
            None if account.secrets.is_empty() => Default::default(),
            None => self.store.secret_values(&account.id).await?,
        };
        let override_rate = self
            .config
            .http
            .rate_limits
            .get(&manifest.name)
            .map(|o| (o.requests_per_second, o.burst));
        http::prepare(&self.http, manifest, secrets, override_rate, limits)
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute_sync(
        &self,
        account: &Account,
        manifest: &Manifest,
        loaded: &passerelle_runtime::sandbox::LoadedConnector,
        run_id: i64,
        cursor_before: Option<String>,
        stored_slots: Option<std::sync::Arc<std::collections::HashSet<String>>>,
        options: SyncOptions,
        span: tracing::Span,
    ) -> Result<Executed> {
        let limits = self.config.limits.clone();
        let (mut http, scrubber) = self.prepare_http(account, manifest, &limits, None).await?;
        // The flight recorder's copy (kept only if the run ends badly), or `--record`'s.
        let flight = match (&options.record, self.config.flight_recorder.enabled) {
            (Some(given), _) => Some(given.clone()),
            (None, true) => Some(http::Recording::default()),
            (None, false) => None,
        };
        if let Some(recording) = &flight {
            // `--record` keeps everything; the flight recorder never holds more than an
            // account may keep.
            let limit = match options.record {
                Some(_) => u64::MAX,
                None => self
                    .config
                    .flight_recorder
                    .per_account_kib
                    .saturating_mul(1024),
            };
            http.recording = http::Recorder::to(recording.clone(), limit);
        }
        let scope = Scope {
            connector: manifest.name.clone(),
            practice_id: account.practice_id.clone(),
            account_id: account.id.clone(),
            run_id,
            version_sha256: loaded.sha256.clone(),
            stored_slots,
        };
        let policy = match self.config.plugins.drift_policy.get(&manifest.name) {
            Some(crate::config::DriftPolicy::Quarantine) => wit::DriftPolicy::Quarantine,
            _ => wit::DriftPolicy::Fail,
        };
        let now = options.now.unwrap_or_else(Utc::now);
        let sink = std::sync::Arc::new(crate::recorder::StoreSink(self.store.clone()));
        let window_start = now - ChronoDuration::days(self.config.sync.window_past_days.into());
        let window_end = now + ChronoDuration::days(self.config.sync.window_future_days.into());
        let records = records::prepare(
            sink,
            scope,
            &limits,
            policy,
            now.timestamp_millis(),
            window_end.timestamp_millis(),
        );
        let cursor_for_replay = flight.as_ref().and(cursor_before.clone());
        let request = wit::SyncRequest {
            account: wit_account(account),
            mode: match options.mode {
                Mode::Incremental => wit::SyncMode::Incremental,
                Mode::Full => wit::SyncMode::Full,
            },
            cursor: cursor_before,
            window: wit::TimeWindow {
                start: window_start.to_rfc3339_opts(SecondsFormat::Secs, true),
                end: window_end.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
        };
        let finished = self
            .runtime
            .execute(
                loaded,
                RunParts {
                    http: Some(http),
                    records: Some(records),
                    scrubber,
                    clock: passerelle_runtime::capabilities::clock::RunClock::at(now),
                    span: span.clone(),
                    limits,
                },
                Call::Sync(request),
            )
            .await;
        let mut scrubber = finished.scrubber;
        let records = finished.records.expect("sync runs have records");
        let http = finished.http.expect("sync runs have http");
        self.metrics
            .sandbox_time(&manifest.name, finished.elapsed, http.platform_wait);
        self.metrics
            .guest_memory(&manifest.name, finished.peak_memory_bytes);
        let mut end = RunEnd {
            status: Status::Failed,
            counts: RunCounts::default(),
            error_kind: None,
            error_detail: None,
            cursor_after: None,
            message: None,
            duration_ms: 0,
            retry_after_secs: None,
            drift: None,
        };
        let mut last_commit = None;
        match finished.output {
            Ok(CallOutput::Synced(Ok(summary))) => {
                // Committed with the run's end (sync_account_as).
                last_commit = Some(LastCommitOf {
                    cursor: summary.cursor,
                    finish: Finish {
                        window_ms: (
                            window_start.timestamp_millis(),
                            window_end.timestamp_millis(),
                        ),
                        tombstone: options.mode == Mode::Full,
                        // The records session adds the slots it saw.
                        seen_slots: Default::default(),
                    },
                });
                end.status = Status::Succeeded;
                end.message = summary.message.map(|m| scrubber.scrub(&truncate(m)));
            }
            Ok(CallOutput::Synced(Err(error))) => {
                if let wit::SyncError::RateLimited(Some(after)) = &error {
                    end.retry_after_secs = Some(i64::from(*after));
                }
                if let wit::SyncError::SchemaDrift(d) = &error {
                    let mut clean = |s: &str| scrubber.scrub(&truncate(s.to_string()));
                    end.drift = Some(DriftReport {
                        endpoint: clean(&d.endpoint),
                        path: clean(&d.path),
                        expected: clean(&d.expected),
                        found: clean(&d.found),
                        shape: None,
                    });
                }
                let (status, kind, detail) = describe_error(&error);
                end.status = status;
                end.error_kind = Some(kind);
                end.error_detail = Some(scrubber.scrub(&truncate(detail)));
            }
            Ok(other) => {
                end.error_kind = Some(ErrorKind::Host);
                end.error_detail =
                    Some(format!("unexpected answer to sync(): {}", kind_of(&other)));
            }
            Err(failure) => {
                end.error_kind = Some(failure.kind());
                end.error_detail = Some(failure.detail().to_string());
            }
        }
        // The structure the drifted response had at the path, from the recording.
        if let (Some(drift), Some(recording)) = (end.drift.as_mut(), &flight) {
            let held = recording.lock().expect("not poisoned");
            drift.shape = crate::flight::shape::around(&held, &drift.path, &mut scrubber);
        }
        end.counts = RunCounts {
            http_requests: http.requests.into(),
            bytes_received: http.bytes_received as i64,
            checkpoints: records.checkpoints,
            ..records.committed.clone()
        };
        end.cursor_after = records.last_cursor.clone();
        let flight_config = &self.config.flight_recorder;
        let reason = crate::flight::reason_to_keep(
            end.status,
            end.error_kind,
            end.counts.quarantined,
            flight_config.keeps_baseline(&manifest.name, &account.id),
        );
        if let (Some(recording), Some(reason)) = (flight, reason) {
            let exchanges = {
                let mut held = recording.lock().expect("not poisoned");
                match options.record {
                    // `sync --record` writes them too.
                    Some(_) => held.clone(),
                    None => std::mem::take(&mut *held),
                }
            };
            self.keep_flight(crate::flight::Ended {
                account,
                run_id,
                connector: &manifest.name,
                version: &manifest.version,
                reason,
                replay: crate::flight::CassetteReplay {
                    now: now.to_rfc3339_opts(SecondsFormat::Secs, true),
                    window: format!(
                        "{}:{}",
                        self.config.sync.window_past_days, self.config.sync.window_future_days
                    ),
                    settings: account.settings.clone(),
                    mode: Some(options.mode.as_str().to_string()),
                    cursor: cursor_for_replay,
                },
                exchanges,
                truncated: http.recording.truncated(),
                scrubber: &mut scrubber,
            })
            .instrument(tracing::debug_span!(parent: &span, "flight_recorder"))
            .await;
        }
        Ok(Executed {
            end,
            last: last_commit.map(|commit| LastCommit {
                records,
                commit,
                scrubber,
            }),
        })
    }
}

/// What a run's execution leaves to record: its end and, for a successful run, the last
/// commit that goes in with it.
struct Executed {
    end: RunEnd,
    last: Option<LastCommit>,
}

/// A successful run's last commit, not made yet.
struct LastCommit {
    records: RecordsSession,
    commit: LastCommitOf,
    /// Knows the run's secrets and patient values, for an error of that commit.
    scrubber: Scrubber,
}

fn kind_of(output: &CallOutput) -> &'static str {
    match output {
        CallOutput::Manifest(_) => "a manifest",
        CallOutput::Checked(_) => "a check result",
        CallOutput::Synced(_) => "a sync result",
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > 2000 {
        let mut cut = 2000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
