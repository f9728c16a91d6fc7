//! Ids chosen by operators (practices, accounts, connectors, secrets): they appear in
//! URLs, logs and file names, so they stay plain.

/// An id that is not 1-64 characters among `a-z A-Z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id `{id}`: use 1-64 characters among a-z A-Z 0-9 - _ .")]
pub struct InvalidId {
    pub kind: &'static str,
    pub id: String,
}

/// The pattern the API documents for ids.
pub const ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// Checks that `id` is a valid `kind` id (`"practice"`, `"account"`…).
pub fn validate_id(kind: &'static str, id: &str) -> Result<(), InvalidId> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(InvalidId {
            kind,
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::ids::*;

    #[test]
    fn plain_ids_pass_and_others_are_refused() {
        for ok in ["p001", "a.b-c_D", &"x".repeat(64)] {
            assert!(validate_id("practice", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "é", "a/b", &"x".repeat(65)] {
            let e = validate_id("account", bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid account id"), "{e}");
        }
    }
}
