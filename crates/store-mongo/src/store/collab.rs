//! Shares, templates and handovers on MongoDB, with the SQLite adapter's
//! semantics (collections `shares`, `templates`, `handovers`).
//!
//! Policy: the writes are `commit` writes, applied inside its transaction
//! with the others and the audit entries: each is a whole-document replace
//! by `_id`, upserted, so a record is inserted or replaced (revoking,
//! withdrawing and checklist progress are replaces). Two transactions
//! upserting one new `_id` at once can fail with a duplicate key; that is a
//! race, not a conflict the caller made, so the attempt is retried (and the
//! retry replaces). The reads run outside transactions. Whether a share is
//! active depends on the time asked about: the query narrows to shares that
//! may be active then and `Share::is_active` decides, as in SQLite.

use super::{MongoStore, TxError, HANDOVERS, SHARES, TEMPLATES};
use crate::codec::collab as codec;
use crate::codec::{found, from_doc};
use crate::error::is_duplicate_key;
use mongodb::bson::{doc, Document};
use mongodb::ClientSession;
use westtek_domain::{
    Handover, HandoverFilter, HandoverId, LabId, Result, Share, ShareFilter, ShareId, SnapshotId,
    Template, TemplateId,
};

impl MongoStore {
    /// Inserts or replaces the document `_id = id` of `coll` inside the
    /// session's transaction.
    async fn put_in(
        &self,
        s: &mut ClientSession,
        coll: &str,
        id: String,
        d: Document,
        what: &'static str,
    ) -> Result<(), TxError> {
        self.coll(coll)
            .replace_one(doc! { "_id": id }, d)
            .upsert(true)
            .session(&mut *s)
            .await
            .map_err(|e| {
                if is_duplicate_key(&e) {
                    TxError::Raced(what)
                } else {
                    TxError::Mongo(e)
                }
            })?;
        Ok(())
    }

    pub(super) async fn put_share(&self, s: &mut ClientSession, v: &Share) -> Result<(), TxError> {
        self.put_in(s, SHARES, v.id.to_string(), codec::share_doc(v)?, "share")
            .await
    }

    pub(super) async fn put_template(
        &self,
        s: &mut ClientSession,
        v: &Template,
    ) -> Result<(), TxError> {
        self.put_in(
            s,
            TEMPLATES,
            v.id.to_string(),
            codec::template_doc(v)?,
            "template",
        )
        .await
    }

    pub(super) async fn put_handover(
        &self,
        s: &mut ClientSession,
        v: &Handover,
    ) -> Result<(), TxError> {
        self.put_in(
            s,
            HANDOVERS,
            v.id.to_string(),
            codec::handover_doc(v)?,
            "handover",
        )
        .await
    }

    pub(super) async fn get_share_impl(&self, id: ShareId) -> Result<Share> {
        from_doc(found(
            self.find_by_id(SHARES, &id.to_string()).await?,
            "share",
        )?)
    }

    pub(super) async fn list_shares_impl(&self, f: &ShareFilter) -> Result<Vec<Share>> {
        let docs = self
            .find_all(SHARES, codec::share_filter(f)?, codec::created_sort())
            .await?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let s: Share = from_doc(d)?;
            if f.active_at.is_none_or(|t| s.is_active(t)) {
                out.push(s);
            }
        }
        Ok(out)
    }

    pub(super) async fn get_template_impl(&self, id: TemplateId) -> Result<Template> {
        from_doc(found(
            self.find_by_id(TEMPLATES, &id.to_string()).await?,
            "template",
        )?)
    }

    pub(super) async fn list_templates_impl(
        &self,
        lab: Option<LabId>,
        snapshot: Option<SnapshotId>,
        include_withdrawn: bool,
    ) -> Result<Vec<Template>> {
        self.find_all(
            TEMPLATES,
            codec::template_filter(lab, snapshot, include_withdrawn),
            codec::template_sort(),
        )
        .await?
        .into_iter()
        .map(from_doc)
        .collect()
    }

    pub(super) async fn get_handover_impl(&self, id: HandoverId) -> Result<Handover> {
        from_doc(found(
            self.find_by_id(HANDOVERS, &id.to_string()).await?,
            "handover",
        )?)
    }

    pub(super) async fn list_handovers_impl(&self, f: &HandoverFilter) -> Result<Vec<Handover>> {
        self.find_all(HANDOVERS, codec::handover_filter(f), codec::created_sort())
            .await?
            .into_iter()
            .map(from_doc)
            .collect()
    }
}
