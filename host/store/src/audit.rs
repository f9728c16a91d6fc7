//! The audit trail (`audit_log`): who did what, when — every admin action and every read
//! of patient data — as a keyed hash chain. Entry `n` stores the tag of entry `n-1` and
//! its own over both — an HMAC-SHA-256 under a key derived from the secrets keyring,
//! which lives outside the database (`hmac1:<key id>:<hex>`) — so editing an entry,
//! deleting one, or reordering them shows in [`Store::verify_audit`], and someone who
//! can write the database but does not hold the key cannot rewrite an entry and re-tag
//! the chain after it. Entries written before the trail was keyed (plain SHA-256) are
//! re-tagged once, when a keyed store opens and finds their chain intact
//! ([`Store::key_audit_trail`]); an unkeyed entry found later is reported. Appends are serialised (SQLite's write lock; a transaction
//! advisory lock on PostgreSQL, where several daemons append), so the chain has one
//! order. Removing the newest entries leaves a valid shorter chain: the head (sequence
//! number and hash) is logged at every daemon start and printed by `audit verify`, to
//! compare with one kept elsewhere.

use passerelle_model::audit::{AuditEntry, AuditReport};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::error::{DbContext, StoreResult};
use super::{now_text, Backend, Store};

/// The hash before the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// An arbitrary key for PostgreSQL's transaction advisory lock on appends.
const APPEND_LOCK: i64 = 0x7061_7373_6175_6474;

/// What an entry's tag covers: its predecessor's tag and its own content.
fn canonical(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> String {
    serde_json::to_string(&(prev, seq, at, actor, action, target, detail))
        .expect("strings serialise")
}

/// The unkeyed form (entries from before the trail was keyed, and a store opened
/// without a keyring).
fn plain_hash(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

impl Store {
    /// A write transaction that holds the trail: SQLite's write lock, or on PostgreSQL
    /// an advisory lock as well (several daemons append), so the chain has one order.
    async fn begin_audit_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(APPEND_LOCK)
                .execute(&mut *tx)
                .await
                .context("locking the audit trail")?;
        }
        Ok(tx)
    }

    /// The tag of an entry's canonical text: keyed when the store has a keyring.
    fn audit_tag(&self, canonical: &str) -> String {
        match &self.keyring {
            Some(k) => k.audit_tag(canonical.as_bytes()),
            None => plain_hash(canonical),
        }
    }

    /// Whether `tag` is `canonical`'s, and if not, why.
    fn check_tag(&self, tag: &str, canonical: &str) -> Result<(), String> {
        match &self.keyring {
            Some(k) => match k.check_audit_tag(tag, canonical.as_bytes()) {
                Ok(true) => Ok(()),
                Ok(false) => Err("was altered (its content does not match its tag)".into()),
                Err(e) => Err(format!("cannot be trusted: {e}")),
            },
            None if plain_hash(canonical) == tag => Ok(()),
            None => Err("was altered (its content does not match its hash)".into()),
        }
    }
}

/// A write transaction for an action: an audited one ([`Store::audited_write`]) ends
/// with the action's entry — the action and its entry commit together, or neither does
/// ([`Store::commit_audited`]) — and holds the trail's append lock from the start; a
/// plain one ([`Store::write`], for what is not an operator's action: provisioning,
/// tests) commits alone.
pub struct Write {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Any>,
}

impl Write {
    /// Commits a plain write.
    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.context("committing")?;
        Ok(())
    }
}

/// One entry, as the service gives it.
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
}

impl Store {
    /// Begins an audited action's transaction.
    pub async fn audited_write(&self) -> StoreResult<Write> {
        Ok(Write {
            tx: self.begin_audit_write().await?,
        })
    }

    /// Begins a plain write transaction (no audit entry).
    pub async fn write(&self) -> StoreResult<Write> {
        Ok(Write {
            tx: self.begin_write().await?,
        })
    }

    /// Appends `entry` in the action's transaction and commits both; the entry's
    /// sequence number.
    pub async fn commit_audited(&self, mut w: Write, entry: Entry<'_>) -> StoreResult<i64> {
        let seq = self.append_in(&mut w.tx, &entry).await?;
        // A failure here (the tests' fail point) leaves neither the action nor its entry.
        fail::fail_point!(
            "audit-append",
            entry.target.starts_with("fail-audit-") || entry.detail.contains("fail-audit-"),
            |_| -> StoreResult<i64> {
                Err(crate::error::StoreError::Invalid(
                    "fail point audit-append".into(),
                ))
            }
        );
        w.tx.commit()
            .await
            .context("committing an audited action")?;
        Ok(seq)
    }

    /// Appends an entry at the end of the chain on its own (an event that changes
    /// nothing else: a refusal, a read of patient data); returns its sequence number.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> StoreResult<i64> {
        let w = self.audited_write().await?;
        self.commit_audited(
            w,
            Entry {
                actor,
                action,
                target,
                detail,
            },
        )
        .await
    }

    /// Appends `entry` inside `tx`, which holds the trail's lock.
    async fn append_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        entry: &Entry<'_>,
    ) -> StoreResult<i64> {
        let Entry {
            actor,
            action,
            target,
            detail,
        } = *entry;
        let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await
            .context("reading the audit trail's head")?;
        let (seq, prev) = match last {
            Some(r) => (r.get::<i64, _>("seq") + 1, r.get::<String, _>("hash")),
            None => (1, GENESIS.to_string()),
        };
        let at = now_text();
        let hash = self.audit_tag(&canonical(&prev, seq, &at, actor, action, target, detail));
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, target, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(&at)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut **tx)
        .await
        .context("appending to the audit trail")?;
        Ok(seq)
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_entries(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_log
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("reading the audit trail")?;
        Ok(rows.iter().map(entry_from_row).collect())
    }

    /// Walks the whole chain and reports every break: an entry whose content does not
    /// match its hash (edited), a missing sequence number (deleted), an entry that does
    /// not name its predecessor's hash (removed, reordered or forged).
    pub async fn verify_audit(&self) -> StoreResult<AuditReport> {
        let mut report = AuditReport {
            entries: 0,
            head_seq: 0,
            head_hash: GENESIS.to_string(),
            problems: Vec::new(),
        };
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_log
                 WHERE seq > $1 ORDER BY seq LIMIT 1000",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .context("reading the audit trail")?;
            if rows.is_empty() {
                return Ok(report);
            }
            for e in rows.iter().map(entry_from_row) {
                if e.seq != report.head_seq + 1 {
                    report.problems.push(format!(
                        "entries {} to {} are missing (deleted)",
                        report.head_seq + 1,
                        e.seq - 1
                    ));
                }
                if e.prev_hash != report.head_hash {
                    report.problems.push(format!(
                        "entry {} does not follow entry {} (the chain is broken there)",
                        e.seq, report.head_seq
                    ));
                }
                let text = canonical(
                    &e.prev_hash,
                    e.seq,
                    &e.at,
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.detail,
                );
                if let Err(why) = self.check_tag(&e.hash, &text) {
                    report.problems.push(format!("entry {} {why}", e.seq));
                }
                report.entries += 1;
                report.head_seq = e.seq;
                report.head_hash = e.hash;
                after = report.head_seq;
            }
        }
    }
}

impl Store {
    /// Re-tags the trail under the current key when some of it is not (entries from
    /// before the trail was keyed, or tagged under a key about to be retired), in one
    /// transaction — only if the chain as it stands is intact: a broken trail is left as
    /// it is, for `audit verify` to show. How many entries were re-tagged.
    pub async fn key_audit_trail(&self) -> StoreResult<u64> {
        let Some(keyring) = self.keyring.clone() else {
            return Ok(0);
        };
        let mut tx = self.begin_audit_write().await?;
        // Re-tagging is all or nothing and appends follow under the current key: a head
        // tagged under it means the trail is (and an entry slipped in since is for
        // `audit verify` to report).
        let current = format!("hmac1:{}:", keyring.key_id());
        let head: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .context("reading the audit trail's head")?;
        if head.is_none_or(|h| h.starts_with(&current)) {
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_log ORDER BY seq",
        )
        .fetch_all(&mut *tx)
        .await
        .context("reading the audit trail")?;
        let mut prev_old = GENESIS.to_string();
        let mut prev_new = GENESIS.to_string();
        let mut retagged = Vec::with_capacity(rows.len());
        for (expected_seq, e) in (1..).zip(rows.iter().map(entry_from_row)) {
            let old = canonical(
                &e.prev_hash,
                e.seq,
                &e.at,
                &e.actor,
                &e.action,
                &e.target,
                &e.detail,
            );
            let intact = e.seq == expected_seq
                && e.prev_hash == prev_old
                && (plain_hash(&old) == e.hash
                    || keyring.check_audit_tag(&e.hash, old.as_bytes()) == Ok(true));
            if !intact {
                tracing::warn!(
                    seq = e.seq,
                    "the audit trail is broken here: it is not re-tagged (see `passerelle audit verify`)"
                );
                return Ok(0);
            }
            let tag = keyring.audit_tag(
                canonical(
                    &prev_new, e.seq, &e.at, &e.actor, &e.action, &e.target, &e.detail,
                )
                .as_bytes(),
            );
            prev_old = e.hash.clone();
            retagged.push((e.seq, prev_new.clone(), tag.clone()));
            prev_new = tag;
        }
        for (seq, prev, tag) in &retagged {
            sqlx::query("UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE seq = $1")
                .bind(seq)
                .bind(prev)
                .bind(tag)
                .execute(&mut *tx)
                .await
                .context("re-tagging the audit trail")?;
        }
        tx.commit().await.context("re-tagging the audit trail")?;
        tracing::info!(
            entries = retagged.len(),
            key = keyring.key_id(),
            "audit trail keyed: every entry is now tagged under the secrets key"
        );
        Ok(retagged.len() as u64)
    }
}

fn entry_from_row(r: &sqlx::any::AnyRow) -> AuditEntry {
    AuditEntry {
        seq: r.get("seq"),
        at: r.get("at"),
        actor: r.get("actor"),
        action: r.get("action"),
        target: r.get("target"),
        detail: r.get("detail"),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}
