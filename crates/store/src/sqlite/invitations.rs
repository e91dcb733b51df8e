//! Invitations on SQLite (table of `0005_invitations.sql`). Writes go
//! through `commit` (with their audit entries); closing checks the state in
//! the same transaction, so two racing decisions cannot both commit.
//! Whether an invitation is open depends on the time asked about, so that
//! filter is applied to the documents, not in SQL.

use super::{enum_name, from_doc, internal, to_doc, SqliteStore};
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use westtek_domain::audit::format_time;
use westtek_domain::{
    DomainError, Invitation, InvitationFilter, InvitationId, InvitationState, Result, UserId,
};

impl SqliteStore {
    pub(super) async fn insert_invitation(
        tx: &mut Transaction<'_, Sqlite>,
        i: &Invitation,
    ) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO invitations (id, lab_id, user_id, state, created_at, doc)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(i.id.to_string())
        .bind(i.lab_id.to_string())
        .bind(i.user_id.to_string())
        .bind(enum_name(&i.state)?)
        .bind(format_time(i.created_at))
        .bind(to_doc(i)?)
        .execute(&mut **tx)
        .await;
        match r {
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_foreign_key_violation()) =>
            {
                Err(DomainError::NotFound {
                    kind: "lab or user",
                })
            }
            Err(e) if super::is_unique_violation(&e) => Err(DomainError::Conflict(
                "an invitation with this id already exists".into(),
            )),
            r => r.map(|_| ()).map_err(internal),
        }
    }

    pub(super) async fn close_invitation(
        tx: &mut Transaction<'_, Sqlite>,
        id: InvitationId,
        state: InvitationState,
        at: DateTime<Utc>,
        by: UserId,
    ) -> Result<()> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM invitations WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(internal)?;
        let mut inv: Invitation =
            from_doc(&doc.ok_or(DomainError::NotFound { kind: "invitation" })?)?;
        if inv.state != InvitationState::Pending {
            return Err(DomainError::Conflict(format!(
                "the invitation was already {}",
                inv.state.as_str()
            )));
        }
        inv.state = state;
        inv.closed_at = Some(at);
        inv.closed_by = Some(by);
        sqlx::query("UPDATE invitations SET state = ?, doc = ? WHERE id = ?")
            .bind(enum_name(&inv.state)?)
            .bind(to_doc(&inv)?)
            .bind(id.to_string())
            .execute(&mut **tx)
            .await
            .map(|_| ())
            .map_err(internal)
    }

    pub(super) async fn get_invitation_impl(&self, id: InvitationId) -> Result<Invitation> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM invitations WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "invitation" })?)
    }

    pub(super) async fn list_invitations_impl(
        &self,
        f: &InvitationFilter,
    ) -> Result<Vec<Invitation>> {
        let mut qb = QueryBuilder::new("SELECT doc FROM invitations WHERE 1 = 1");
        if let Some(l) = f.lab_id {
            qb.push(" AND lab_id = ").push_bind(l.to_string());
        }
        if let Some(u) = f.user_id {
            qb.push(" AND user_id = ").push_bind(u.to_string());
        }
        if f.open_at.is_some() {
            qb.push(" AND state = 'pending'");
        }
        qb.push(" ORDER BY created_at DESC, id DESC");
        let docs: Vec<String> = qb
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let all = docs
            .iter()
            .map(|d| from_doc::<Invitation>(d))
            .collect::<Result<Vec<_>>>()?;
        Ok(all.into_iter().filter(|i| f.matches(i)).collect())
    }
}
