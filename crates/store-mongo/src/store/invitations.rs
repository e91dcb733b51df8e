//! Invitations on MongoDB, with the SQLite adapter's semantics (collection
//! `invitations`).
//!
//! Policy: the writes are `commit` writes, applied inside its transaction.
//! Inserting checks by hand that the lab and user exist (SQLite's foreign
//! keys). Closing updates the document only while its state is still
//! `pending`, so of two racing decisions one matches nothing and reports
//! `Conflict`. Whether an invitation is open depends on the time asked
//! about: the query narrows to pending ones and `Invitation::is_open`
//! decides.

use super::{MongoStore, TxError, INVITATIONS, LABS, USERS};
use crate::codec::{self, enum_name, found, from_doc};
use chrono::{DateTime, Utc};
use mongodb::bson::{self, doc, Document};
use mongodb::ClientSession;
use westtek_domain::{
    DomainError, Invitation, InvitationFilter, InvitationId, InvitationState, Result, UserId,
};

impl MongoStore {
    pub(super) async fn insert_invitation(
        &self,
        s: &mut ClientSession,
        i: &Invitation,
    ) -> Result<(), TxError> {
        if !self.exists(s, LABS, &i.lab_id.to_string()).await?
            || !self.exists(s, USERS, &i.user_id.to_string()).await?
        {
            return Err(DomainError::NotFound {
                kind: "lab or user",
            }
            .into());
        }
        self.coll(INVITATIONS)
            .insert_one(codec::invitation_doc(i)?)
            .session(&mut *s)
            .await
            .map_err(|e| {
                if crate::error::is_duplicate_key(&e) {
                    DomainError::Conflict("an invitation with this id already exists".into()).into()
                } else {
                    TxError::Mongo(e)
                }
            })?;
        Ok(())
    }

    pub(super) async fn close_invitation(
        &self,
        s: &mut ClientSession,
        id: InvitationId,
        state: InvitationState,
        at: DateTime<Utc>,
        by: UserId,
    ) -> Result<(), TxError> {
        let pending = enum_name(&InvitationState::Pending)?;
        let set = doc! {
            "state": enum_name(&state)?,
            "closed_at": bson::to_bson(&at).map_err(crate::error::internal)?,
            "closed_by": by.to_string(),
        };
        let done = self
            .coll(INVITATIONS)
            .update_one(
                doc! { "_id": id.to_string(), "state": pending },
                doc! { "$set": set },
            )
            .session(&mut *s)
            .await?;
        if done.matched_count == 0 {
            return Err(if self.exists(s, INVITATIONS, &id.to_string()).await? {
                DomainError::Conflict("the invitation is no longer pending".into()).into()
            } else {
                DomainError::NotFound { kind: "invitation" }.into()
            });
        }
        Ok(())
    }

    pub(super) async fn get_invitation_impl(&self, id: InvitationId) -> Result<Invitation> {
        from_doc(found(
            self.find_by_id(INVITATIONS, &id.to_string()).await?,
            "invitation",
        )?)
    }

    pub(super) async fn list_invitations_impl(
        &self,
        f: &InvitationFilter,
    ) -> Result<Vec<Invitation>> {
        let mut q = Document::new();
        if let Some(l) = f.lab_id {
            q.insert("lab_id", l.to_string());
        }
        if let Some(u) = f.user_id {
            q.insert("user_id", u.to_string());
        }
        if f.open_at.is_some() {
            q.insert("state", enum_name(&InvitationState::Pending)?);
        }
        let docs = self
            .find_all(INVITATIONS, q, doc! { "created_key": -1, "_id": -1 })
            .await?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let i: Invitation = from_doc(d)?;
            if f.matches(&i) {
                out.push(i);
            }
        }
        Ok(out)
    }
}
