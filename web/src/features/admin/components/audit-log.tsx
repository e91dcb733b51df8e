import { useState, type FormEvent } from 'react';
import { Button } from '@/components/ui/button';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { Spinner } from '@/components/ui/spinner';
import { dateTime, shortId } from '@/lib/format';
import { AUDIT_PAGE_SIZE, useAudit, type AuditEntry, type AuditFilters } from '../api/get-audit';
import { useExportAudit, type ExportFormat } from '../api/export-audit';
import type { Lab } from '../api/get-labs';
import { useAuditVerify } from '../api/verify-audit';

/** The chain check, in words: intact, or every problem it found. */
export function AuditVerifyResult() {
  const verify = useAuditVerify();
  return (
    <div className="space-y-2" data-testid="audit-verify">
      {verify.isPending ? (
        <Spinner label="Verifying the audit chain…" />
      ) : verify.isError ? (
        <ErrorMessage error={verify.error} onRetry={() => void verify.refetch()} />
      ) : verify.data.ok ? (
        <div role="status" className="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950">
          <p className="font-semibold">Audit chain verified</p>
          <p>
            All {verify.data.entries} entries are intact: none was edited, deleted or reordered.
          </p>
        </div>
      ) : (
        <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900">
          <p className="font-semibold">The audit chain is broken</p>
          <p>
            {verify.data.problems.length} problem{verify.data.problems.length === 1 ? '' : 's'} in {verify.data.entries} entries:
          </p>
          <ul className="mt-1 list-disc pl-5">
            {verify.data.problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      )}
      <Button variant="secondary" busy={verify.isFetching && !verify.isPending} onClick={() => void verify.refetch()}>
        Verify again
      </Button>
    </div>
  );
}

/** `details` in a line: `key: value, …`. */
export function detailsText(d: Record<string, unknown>): string {
  return Object.entries(d)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ');
}

/** A date input's day as RFC 3339 (the start of that day, local time); `endOfDay` for an inclusive "until". */
export function dayToRfc3339(day: string, endOfDay = false): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T00:00:00`);
  if (Number.isNaN(d.getTime())) return undefined;
  if (endOfDay) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

type Draft = { lab_id: string; actor: string; action: string; target_id: string; since: string; until: string };
const EMPTY: Draft = { lab_id: '', actor: '', action: '', target_id: '', since: '', until: '' };

function toFilters(d: Draft): AuditFilters {
  const f: AuditFilters = {};
  if (d.lab_id) f.lab_id = d.lab_id;
  if (d.actor.trim()) f.actor = d.actor.trim();
  if (d.action.trim()) f.action = d.action.trim();
  if (d.target_id.trim()) f.target_id = d.target_id.trim();
  const since = dayToRfc3339(d.since);
  const until = dayToRfc3339(d.until, true);
  if (since) f.since = since;
  if (until) f.until = until;
  return f;
}

function Row({ e, labName }: { e: AuditEntry; labName: string }) {
  const details = detailsText(e.details);
  return (
    <tr className="border-b border-slate-200 align-top">
      <td className="py-2 pr-3 whitespace-nowrap">{dateTime(e.time)}</td>
      <td className="py-2 pr-3">{labName}</td>
      <td className="py-2 pr-3">{e.actor_name}</td>
      <td className="py-2 pr-3 font-mono text-xs">{e.action}</td>
      <td className="py-2 pr-3 text-xs">
        {e.target_kind} <span className="font-mono" title={e.target_id}>{shortId(e.target_id)}</span>
      </td>
      <td className="max-w-72 truncate py-2 pr-3 text-xs" title={details}>
        {details || '—'}
      </td>
      <td className="py-2 text-xs text-slate-700">{e.seq}</td>
    </tr>
  );
}

/** The audit trail: filters, pages, and export of what is filtered. */
export function AuditLog({ labs }: { labs: Lab[] }) {
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [filters, setFilters] = useState<AuditFilters>({});
  const [offset, setOffset] = useState(0);
  const [format, setFormat] = useState<ExportFormat>('csv');
  const audit = useAudit(filters, offset);
  const exporter = useExportAudit();
  const names = new Map(labs.map((l) => [l.id, l.display_name || l.name]));

  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilters(toFilters(draft));
    setOffset(0);
  };
  const reset = () => {
    setDraft(EMPTY);
    setFilters({});
    setOffset(0);
  };
  const set = (k: keyof Draft) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [k]: e.target.value }));
  const page = audit.data;

  return (
    <div className="space-y-4">
      <form onSubmit={apply} aria-label="Filter the audit log" className="grid gap-3 sm:grid-cols-2 lg:grid-cols-3">
        <Field label="Lab">
          {(p) => (
            <select {...p} className={inputClass} value={draft.lab_id} onChange={set('lab_id')}>
              <option value="">All labs</option>
              {labs.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.display_name || l.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Actor (username)">
          {(p) => <input {...p} className={inputClass} value={draft.actor} onChange={set('actor')} autoComplete="off" />}
        </Field>
        <Field label="Action" hint="e.g. environment.create, snapshot.restore">
          {(p) => <input {...p} className={inputClass} value={draft.action} onChange={set('action')} autoComplete="off" />}
        </Field>
        <Field label="Target id">
          {(p) => <input {...p} className={inputClass} value={draft.target_id} onChange={set('target_id')} autoComplete="off" />}
        </Field>
        <Field label="From day">
          {(p) => <input {...p} type="date" className={inputClass} value={draft.since} onChange={set('since')} />}
        </Field>
        <Field label="To day (inclusive)">
          {(p) => <input {...p} type="date" className={inputClass} value={draft.until} onChange={set('until')} />}
        </Field>
        <div className="flex flex-wrap items-end gap-2 sm:col-span-2 lg:col-span-3">
          <Button type="submit">Apply filters</Button>
          <Button variant="secondary" onClick={reset}>
            Clear
          </Button>
          <span className="grow" />
          <Field label="Export format">
            {(p) => (
              <select {...p} className={inputClass} value={format} onChange={(e) => setFormat(e.target.value as ExportFormat)}>
                <option value="csv">CSV</option>
                <option value="json">JSON</option>
              </select>
            )}
          </Field>
          <Button variant="secondary" busy={exporter.isPending} onClick={() => exporter.mutate({ filters, format })}>
            Export
          </Button>
        </div>
      </form>
      {exporter.error && <ErrorMessage error={exporter.error} />}
      {audit.isPending ? (
        <Spinner label="Loading the audit log…" />
      ) : audit.isError ? (
        <ErrorMessage error={audit.error} onRetry={() => void audit.refetch()} />
      ) : page && page.items.length === 0 ? (
        <EmptyState title="No audit entries match.">Change or clear the filters.</EmptyState>
      ) : page ? (
        <>
          <div className="overflow-x-auto">
            <table className="w-full text-left text-sm" aria-busy={audit.isPlaceholderData || undefined}>
              <caption className="sr-only">Audit entries, newest first</caption>
              <thead className="border-b border-slate-300 text-xs uppercase tracking-wide text-slate-800">
                <tr>
                  <th scope="col" className="py-2 pr-3">Time</th>
                  <th scope="col" className="py-2 pr-3">Lab</th>
                  <th scope="col" className="py-2 pr-3">Actor</th>
                  <th scope="col" className="py-2 pr-3">Action</th>
                  <th scope="col" className="py-2 pr-3">Target</th>
                  <th scope="col" className="py-2 pr-3">Details</th>
                  <th scope="col" className="py-2">#</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((e) => (
                  <Row key={e.id} e={e} labName={e.lab_id ? (names.get(e.lab_id) ?? shortId(e.lab_id)) : 'Platform'} />
                ))}
              </tbody>
            </table>
          </div>
          <nav aria-label="Audit log pages" className="flex flex-wrap items-center gap-3 text-sm">
            <Button variant="secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - AUDIT_PAGE_SIZE))}>
              Previous page
            </Button>
            <span aria-live="polite">
              Entries {page.offset + 1}–{page.offset + page.items.length} of {page.total}
            </span>
            <Button
              variant="secondary"
              disabled={page.offset + page.items.length >= page.total}
              onClick={() => setOffset(offset + AUDIT_PAGE_SIZE)}
            >
              Next page
            </Button>
          </nav>
        </>
      ) : null}
    </div>
  );
}
