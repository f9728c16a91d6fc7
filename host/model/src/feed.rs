//! The change feed's vocabulary: what changed (an appointment or a slot) and how
//! (added, changed, deleted, tombstoned, removed), as numbered in commit order.

use serde::{Deserialize, Serialize};

/// Which record a change is about.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Appointment,
    Slot,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 2] = [ChangeKind::Appointment, ChangeKind::Slot];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Appointment => "appointment",
            ChangeKind::Slot => "slot",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::str::FromStr for ChangeKind {
    type Err = String;

    fn from_str(text: &str) -> Result<ChangeKind, String> {
        ChangeKind::parse(text)
            .ok_or_else(|| format!("`{text}` is not a kind: appointment or slot"))
    }
}

/// What happened to the record. `added` and `changed` carry the record as written;
/// `deleted` (the platform said so) and `tombstoned` (a full sync no longer saw it)
/// mark an appointment that stays stored; `removed`: the record is no longer stored (a
/// slot gone from the platform; the account or practice deleted, with run 0). The last
/// three carry only the key.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Added,
    Changed,
    Deleted,
    Tombstoned,
    Removed,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Added => "added",
            ChangeOp::Changed => "changed",
            ChangeOp::Deleted => "deleted",
            ChangeOp::Tombstoned => "tombstoned",
            ChangeOp::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeOp> {
        [
            ChangeOp::Added,
            ChangeOp::Changed,
            ChangeOp::Deleted,
            ChangeOp::Tombstoned,
            ChangeOp::Removed,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// One change as the feed stores it; `record` is the record's JSON (`added`, `changed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    pub seq: i64,
    pub practice_id: String,
    pub account_id: String,
    pub connector: String,
    pub kind: ChangeKind,
    pub op: ChangeOp,
    pub external_id: String,
    pub record: Option<String>,
    pub run_id: i64,
    pub created_at: String,
}

/// Where a subscription stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionState {
    /// Delivering (or waiting for its next attempt).
    Active,
    /// Its attempts ran out: nothing is delivered until `subscriptions replay`.
    Dead,
}

impl SubscriptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionState::Active => "active",
            SubscriptionState::Dead => "dead",
        }
    }
}
