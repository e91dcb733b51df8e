//! Shares, templates and handovers on SQLite (tables of `0004_collab.sql`).
//! Writes go through `commit` (with their audit entries); these are the
//! reads. Whether a share is active depends on the time asked about, so that
//! filter is applied to the documents, not in SQL.

use super::{from_doc, internal, to_doc, SqliteStore};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use westtek_domain::audit::format_time;
use westtek_domain::{
    DomainError, Handover, HandoverFilter, HandoverId, LabId, Result, Share, ShareFilter, ShareId,
    SnapshotId, Template, TemplateId,
};

fn resource_name(s: &Share) -> Result<String> {
    super::enum_name(&s.resource)
}

impl SqliteStore {
    pub(super) async fn put_share(tx: &mut Transaction<'_, Sqlite>, s: &Share) -> Result<()> {
        sqlx::query(
            "INSERT INTO shares (id, owner_lab, target_lab, resource, resource_id, created_at, doc)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET owner_lab = excluded.owner_lab, target_lab = excluded.target_lab,
                 resource = excluded.resource, resource_id = excluded.resource_id,
                 created_at = excluded.created_at, doc = excluded.doc",
        )
        .bind(s.id.to_string())
        .bind(s.owner_lab.to_string())
        .bind(s.target_lab.to_string())
        .bind(resource_name(s)?)
        .bind(&s.resource_id)
        .bind(format_time(s.created_at))
        .bind(to_doc(s)?)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(internal)
    }

    pub(super) async fn put_template(tx: &mut Transaction<'_, Sqlite>, t: &Template) -> Result<()> {
        sqlx::query(
            "INSERT INTO templates (id, lab_id, snapshot_id, published_at, withdrawn, doc)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET lab_id = excluded.lab_id, snapshot_id = excluded.snapshot_id,
                 published_at = excluded.published_at, withdrawn = excluded.withdrawn, doc = excluded.doc",
        )
        .bind(t.id.to_string())
        .bind(t.lab_id.to_string())
        .bind(t.snapshot_id.to_string())
        .bind(format_time(t.published_at))
        .bind(i64::from(t.withdrawn_at.is_some()))
        .bind(to_doc(t)?)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(internal)
    }

    pub(super) async fn put_handover(tx: &mut Transaction<'_, Sqlite>, h: &Handover) -> Result<()> {
        sqlx::query(
            "INSERT INTO handovers (id, lab_id, environment_id, from_user, to_user, created_at, doc)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET lab_id = excluded.lab_id, environment_id = excluded.environment_id,
                 from_user = excluded.from_user, to_user = excluded.to_user,
                 created_at = excluded.created_at, doc = excluded.doc",
        )
        .bind(h.id.to_string())
        .bind(h.lab_id.to_string())
        .bind(h.environment_id.to_string())
        .bind(h.from_user.to_string())
        .bind(h.to_user.to_string())
        .bind(format_time(h.created_at))
        .bind(to_doc(h)?)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(internal)
    }

    pub(super) async fn get_share_impl(&self, id: ShareId) -> Result<Share> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM shares WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "share" })?)
    }

    pub(super) async fn list_shares_impl(&self, f: &ShareFilter) -> Result<Vec<Share>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT doc FROM shares WHERE 1 = 1");
        if let Some(l) = f.owner_lab {
            q.push(" AND owner_lab = ").push_bind(l.to_string());
        }
        if let Some(l) = f.target_lab {
            q.push(" AND target_lab = ").push_bind(l.to_string());
        }
        if let Some(r) = &f.resource {
            q.push(" AND resource = ").push_bind(super::enum_name(r)?);
        }
        if let Some(r) = &f.resource_id {
            q.push(" AND resource_id = ").push_bind(r.clone());
        }
        q.push(" ORDER BY created_at DESC, id DESC");
        let docs: Vec<String> = q
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let mut out = Vec::with_capacity(docs.len());
        for d in &docs {
            let s: Share = from_doc(d)?;
            if f.active_at.is_none_or(|t| s.is_active(t)) {
                out.push(s);
            }
        }
        Ok(out)
    }

    pub(super) async fn get_template_impl(&self, id: TemplateId) -> Result<Template> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM templates WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "template" })?)
    }

    pub(super) async fn list_templates_impl(
        &self,
        lab: Option<LabId>,
        snapshot: Option<SnapshotId>,
        include_withdrawn: bool,
    ) -> Result<Vec<Template>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT doc FROM templates WHERE 1 = 1");
        if let Some(l) = lab {
            q.push(" AND lab_id = ").push_bind(l.to_string());
        }
        if let Some(s) = snapshot {
            q.push(" AND snapshot_id = ").push_bind(s.to_string());
        }
        if !include_withdrawn {
            q.push(" AND withdrawn = 0");
        }
        q.push(" ORDER BY published_at DESC, id DESC");
        let docs: Vec<String> = q
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    pub(super) async fn get_handover_impl(&self, id: HandoverId) -> Result<Handover> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM handovers WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "handover" })?)
    }

    pub(super) async fn list_handovers_impl(&self, f: &HandoverFilter) -> Result<Vec<Handover>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT doc FROM handovers WHERE 1 = 1");
        if let Some(l) = f.lab_id {
            q.push(" AND lab_id = ").push_bind(l.to_string());
        }
        if let Some(e) = f.environment_id {
            q.push(" AND environment_id = ").push_bind(e.to_string());
        }
        if let Some(u) = f.user {
            q.push(" AND (from_user = ")
                .push_bind(u.to_string())
                .push(" OR to_user = ")
                .push_bind(u.to_string())
                .push(")");
        }
        q.push(" ORDER BY created_at DESC, id DESC");
        let docs: Vec<String> = q
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }
}
