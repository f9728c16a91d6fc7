//! Named admin-API tokens (`api_tokens`): name, the SHA-256 of the token (never the token),
//! scopes, creation and revocation times.

use passerelle_model::token::ApiToken;
use sqlx::Row;

use super::error::{is_unique_violation, DbContext, StoreError, StoreResult};
use super::{now_text, Store};

impl Store {
    /// Records a token by its hash; a name or hash in use is a conflict.
    pub async fn add_token_in(
        &self,
        w: &mut super::audit::Write,
        name: &str,
        hash: &str,
        scopes: &[String],
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (name, hash, scopes, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(hash)
        .bind(scopes.join(","))
        .bind(now_text())
        .execute(&mut *w.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("a token named `{name}` exists already"))
            } else {
                StoreError::Database {
                    context: "storing a token",
                    source: e,
                }
            }
        })?;
        Ok(())
    }

    /// The live (not revoked) token with this hash.
    pub async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<ApiToken>> {
        let row = sqlx::query(
            "SELECT name, scopes, created_at, revoked_at FROM api_tokens
             WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .context("looking a token up")?;
        Ok(row.as_ref().map(token_from_row))
    }

    /// Every named token, revoked ones included, by name.
    pub async fn tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT name, scopes, created_at, revoked_at FROM api_tokens ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing tokens")?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    /// Revokes a live token; false if there is none of that name.
    pub async fn revoke_token_in(
        &self,
        w: &mut super::audit::Write,
        name: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(now_text())
        .bind(name)
        .execute(&mut *w.tx)
        .await
        .context("revoking a token")?
        .rows_affected();
        Ok(n > 0)
    }
}

fn token_from_row(r: &sqlx::any::AnyRow) -> ApiToken {
    let scopes: String = r.get("scopes");
    ApiToken {
        name: r.get("name"),
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        created_at: r.get("created_at"),
        revoked_at: r.get("revoked_at"),
    }
}
