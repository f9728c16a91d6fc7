//! The run-duration rollup behind the overview's 14-day chart: as each run ends, by the
//! statement that ends it (the run's row gets its bucket, a trigger counts it), its
//! duration is counted in its platform's UTC day, in buckets growing by 2^(1/4) (about
//! 19 %); percentiles are read back from those few rows instead of the runs themselves.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::error::StoreResult;
use super::Store;
use passerelle_model::run::{RunEnd, Status};

/// One platform's finished runs of one UTC day: how many and their median and 95th
/// percentile durations (nearest rank, to the upper bound of the bucket it falls in:
/// within 19 %).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayDurations {
    pub connector: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub runs: i64,
    pub p50_ms: i64,
    pub p95_ms: i64,
}

/// The duration bucket of `ms`: bucket `b` holds `[2^(b/4) - 1, 2^((b+1)/4) - 1)` ms.
pub fn duration_bucket(ms: i64) -> i64 {
    ((ms.max(0) as f64 + 1.0).log2() * 4.0).floor() as i64
}

/// The largest duration bucket `b` holds, in ms.
pub fn bucket_upper_ms(b: i64) -> i64 {
    ((2f64.powf((b + 1) as f64 / 4.0) - 1.0).ceil() as i64 - 1).max(0)
}

/// The `pct`th percentile (nearest rank) of `runs` durations counted in `buckets`
/// (ascending), as its bucket's upper bound.
fn percentile(buckets: &[(i64, i64)], runs: i64, pct: i64) -> i64 {
    let rank = (pct * runs + 99) / 100;
    let mut seen = 0;
    for (bucket, n) in buckets {
        seen += n;
        if seen >= rank.max(1) {
            return bucket_upper_ms(*bucket);
        }
    }
    buckets.last().map_or(0, |(b, _)| bucket_upper_ms(*b))
}

/// The duration bucket an ending run is counted in, written into its row with its end:
/// the database's trigger (`runs_count_duration`, migration 0019) counts it in its
/// platform's UTC day in the same statement. Runs that did not run (skipped, cancelled
/// before starting) are not counted: None.
pub(super) fn counted_bucket(end: &RunEnd) -> Option<i64> {
    let counted = matches!(
        end.status,
        Status::Succeeded | Status::Failed | Status::Drift
    );
    counted.then(|| duration_bucket(end.duration_ms))
}

impl Store {
    /// Per connector and UTC day from `since`'s day: finished runs and their p50/p95
    /// durations, from the buckets counted as runs ended ([`count_duration_in`]).
    pub async fn duration_percentiles(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<DayDurations>> {
        let rows = sqlx::query(
            "SELECT connector, day, bucket, runs FROM run_durations WHERE day >= $1
             ORDER BY connector, day, bucket",
        )
        .bind(since.format("%Y-%m-%d").to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<DayDurations> = Vec::new();
        let mut buckets: Vec<(i64, i64)> = Vec::new();
        let mut key: Option<(String, String)> = None;
        let flush = |key: &Option<(String, String)>,
                     buckets: &[(i64, i64)],
                     out: &mut Vec<DayDurations>| {
            if let Some((connector, day)) = key {
                let runs = buckets.iter().map(|(_, n)| n).sum();
                out.push(DayDurations {
                    connector: connector.clone(),
                    day: day.clone(),
                    runs,
                    p50_ms: percentile(buckets, runs, 50),
                    p95_ms: percentile(buckets, runs, 95),
                });
            }
        };
        for r in &rows {
            let this = (r.get::<String, _>("connector"), r.get::<String, _>("day"));
            if key.as_ref() != Some(&this) {
                flush(&key, &buckets, &mut out);
                buckets.clear();
                key = Some(this);
            }
            buckets.push((r.get("bucket"), r.get("runs")));
        }
        flush(&key, &buckets, &mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_falls_in_a_bucket_whose_bound_is_within_a_fifth() {
        for ms in [0, 1, 2, 9, 10, 77, 999, 1_000, 12_345, 3_600_000] {
            let upper = bucket_upper_ms(duration_bucket(ms));
            assert!(upper >= ms, "{ms} > {upper}");
            assert!(upper as f64 <= ms as f64 * 1.19 + 1.0, "{ms}: {upper}");
        }
        // Nearest rank: of 1..=100 ms, p50 is about 50 and p95 about 95.
        let mut counts = std::collections::BTreeMap::new();
        for ms in 1..=100 {
            *counts.entry(duration_bucket(ms)).or_insert(0) += 1;
        }
        let buckets: Vec<(i64, i64)> = counts.into_iter().collect();
        let p50 = percentile(&buckets, 100, 50);
        let p95 = percentile(&buckets, 100, 95);
        assert!((50..=60).contains(&p50), "{p50}");
        assert!((95..=113).contains(&p95), "{p95}");
    }
}
