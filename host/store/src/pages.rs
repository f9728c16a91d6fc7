//! Reading records back a page at a time: [`RecordFilter`] (whose, when, from which
//! position) over appointments and slots, in the stable order (start, account, external
//! id) the read API and the CLI page through.

use sqlx::Row;

use super::error::{DbContext, StoreResult};
use super::records::{appointment_from_row, slot_from_row};
use super::Store;
use passerelle_model::records::{SlotRecord, StoredAppointment};

/// What [`Store::appointments_page`] and [`Store::slots_page`] select: whose, when, and
/// where a page starts (keyset: after this start, account and external id).
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub practice: Option<String>,
    pub account: Option<String>,
    pub connector: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Appointments only.
    pub status: Option<String>,
    /// Appointments only: tombstoned and deleted ones too.
    pub all: bool,
    pub after: Option<(i64, String, String)>,
    pub limit: i64,
}

impl RecordFilter {
    /// The WHERE clause and its text parameters (in order from `$1`), and the integer
    /// ones after them.
    fn clause(&self, deleted_column: bool) -> (String, Vec<String>, Vec<i64>) {
        let mut sql = vec!["1 = 1".to_string()];
        let mut texts = Vec::new();
        let mut ints = Vec::new();
        for (column, value) in [
            ("practice_id", &self.practice),
            ("account_id", &self.account),
            ("connector", &self.connector),
            ("status", if deleted_column { &self.status } else { &None }),
        ] {
            if let Some(v) = value {
                texts.push(v.clone());
                sql.push(format!("{column} = ${}", texts.len()));
            }
        }
        if deleted_column && !self.all {
            sql.push("deleted_at IS NULL".into());
        }
        let cursor_texts = self.after.as_ref().map(|(_, a, e)| (a.clone(), e.clone()));
        if let Some((account, external)) = &cursor_texts {
            texts.push(account.clone());
            texts.push(external.clone());
        }
        let n = texts.len();
        let mut next = n;
        let mut int = |v: i64, ints: &mut Vec<i64>| {
            ints.push(v);
            next += 1;
            next
        };
        if let Some(from) = self.from_ms {
            let i = int(from, &mut ints);
            sql.push(format!("starts_at_ms >= ${i}"));
        }
        if let Some(to) = self.to_ms {
            let i = int(to, &mut ints);
            sql.push(format!("starts_at_ms < ${i}"));
        }
        if let Some((ms, _, _)) = &self.after {
            let i = int(*ms, &mut ints);
            sql.push(format!(
                "(starts_at_ms > ${i} OR (starts_at_ms = ${i} AND (account_id > ${a} OR (account_id = ${a} AND external_id > ${e}))))",
                a = n - 1,
                e = n
            ));
        }
        (sql.join(" AND "), texts, ints)
    }
}

impl Store {
    /// One page of `table` (appointments or slots) under `f`, by (start, account,
    /// external id).
    async fn page(&self, table: &str, f: &RecordFilter) -> StoreResult<Vec<sqlx::any::AnyRow>> {
        let (clause, texts, ints) = f.clause(table == "appointments");
        let sql = format!(
            "SELECT * FROM {table} WHERE {clause}
             ORDER BY starts_at_ms, account_id, external_id LIMIT {}",
            f.limit.max(0)
        );
        let mut query = sqlx::query(&sql);
        for t in &texts {
            query = query.bind(t);
        }
        for i in &ints {
            query = query.bind(i);
        }
        query
            .fetch_all(&self.pool)
            .await
            .context("reading a page of records")
    }

    /// One page of appointments, by (start, account, external id).
    pub async fn appointments_page(&self, f: &RecordFilter) -> StoreResult<Vec<StoredAppointment>> {
        let rows = self.page("appointments", f).await?;
        Ok(rows.iter().map(appointment_from_row).collect())
    }

    /// One page of slots, by (start, account, external id), with whose they are.
    pub async fn slots_page(&self, f: &RecordFilter) -> StoreResult<Vec<StoredSlot>> {
        let rows = self.page("slots", f).await?;
        Ok(rows
            .iter()
            .map(|r| StoredSlot {
                practice_id: r.get("practice_id"),
                account_id: r.get("account_id"),
                connector: r.get("connector"),
                record: slot_from_row(r),
            })
            .collect())
    }
}

/// A stored slot with whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSlot {
    pub practice_id: String,
    pub account_id: String,
    pub connector: String,
    pub record: SlotRecord,
}
