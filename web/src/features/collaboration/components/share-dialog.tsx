import { useRef, useState, type FormEvent } from 'react';
import { Button } from '@/components/ui/button';
import { Modal } from '@/components/ui/dialog';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { dateInputFromNow, dateTime, endOfDay } from '@/lib/format';
import { useCreateShare } from '../api/create-share';
import { PERMISSION_WORDS } from '../api/get-shares';

export type Shareable = { type: 'environment' | 'snapshot' | 'template'; id: string; name: string };

type Values = { targetLab: string; permission: 'read' | 'clone'; expires: string };
type Errors = Partial<Record<keyof Values, string>>;

export function validateShare(v: Values, now: Date = new Date()): Errors {
  const e: Errors = {};
  if (v.targetLab.trim() === '') e.targetLab = 'Name the lab to share with (its name or id).';
  if (v.expires !== '') {
    const end = endOfDay(v.expires);
    if (!end) e.expires = 'Pick a date, or leave it empty for no expiry.';
    else if (Date.parse(end) <= now.getTime()) e.expires = 'Pick a date after today, or leave it empty.';
  }
  return e;
}

const WHAT: Record<Shareable['type'], string> = { environment: 'environment', snapshot: 'snapshot', template: 'template' };

/** Shares an environment, snapshot or template with another lab: read or clone, until a date or revoked. */
export function ShareDialog({ resource, onClose }: { resource: Shareable; onClose: () => void }) {
  const create = useCreateShare();
  const [v, setV] = useState<Values>({ targetLab: '', permission: 'read', expires: '' });
  const [errors, setErrors] = useState<Errors>({});
  const form = useRef<HTMLFormElement>(null);
  const set = <K extends keyof Values>(k: K, value: Values[K]) => {
    setV((old) => ({ ...old, [k]: value }));
    // A corrected field drops its message; the rest stay until the next try.
    setErrors((old) => ({ ...old, [k]: undefined }));
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validateShare(v);
    setErrors(found);
    if (Object.keys(found).length > 0) {
      form.current?.querySelector<HTMLElement>(`[name="${Object.keys(found)[0]}"]`)?.focus();
      return;
    }
    create.mutate({
      resource_type: resource.type,
      resource_id: resource.id,
      target_lab: v.targetLab.trim(),
      permission: v.permission,
      expires_at: v.expires ? endOfDay(v.expires) : null,
    });
  };

  return (
    <Modal title={`Share “${resource.name}”`} onClose={onClose}>
      {create.data ? (
        <div className="space-y-3 text-sm text-slate-800">
          <p role="status" className="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-emerald-950">
            Shared with <strong>{create.data.target_lab_name}</strong>: {PERMISSION_WORDS[create.data.permission]?.toLowerCase()}
            {create.data.expires_at ? `, until ${dateTime(create.data.expires_at)}` : ', until revoked'}.
          </p>
          <p>You can revoke it any time from Collaboration → Shares given.</p>
          <div className="flex justify-end">
            <Button onClick={onClose}>Done</Button>
          </div>
        </div>
      ) : (
        <form ref={form} aria-label={`Share ${WHAT[resource.type]}`} noValidate onSubmit={submit} className="space-y-4">
          <Field label="Lab to share with" hint="The lab’s name or id." error={errors.targetLab}>
            {(p) => (
              <input
                {...p}
                name="targetLab"
                className={inputClass}
                value={v.targetLab}
                onChange={(e) => set('targetLab', e.target.value)}
                autoComplete="off"
              />
            )}
          </Field>
          <fieldset className="space-y-1">
            <legend className="text-sm font-medium text-slate-900">They may</legend>
            <label className="flex items-center gap-2 text-sm">
              <input type="radio" name="share-permission" checked={v.permission === 'read'} onChange={() => set('permission', 'read')} />
              Read it (see it and its knowledge, change nothing)
            </label>
            <label className="flex items-center gap-2 text-sm">
              <input type="radio" name="share-permission" checked={v.permission === 'clone'} onChange={() => set('permission', 'clone')} />
              Read and clone it into their own lab
            </label>
          </fieldset>
          <Field label="Expires (optional)" hint="Access ends at the end of this day. Empty: until you revoke it." error={errors.expires}>
            {(p) => (
              <input
                {...p}
                type="date"
                name="expires"
                className={inputClass}
                value={v.expires}
                min={dateInputFromNow(1)}
                onChange={(e) => set('expires', e.target.value)}
              />
            )}
          </Field>
          {create.error && <ErrorMessage error={create.error} />}
          <div className="flex justify-end gap-2">
            <Button variant="secondary" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" busy={create.isPending}>
              Share
            </Button>
          </div>
        </form>
      )}
    </Modal>
  );
}

/** A "Share…" button that opens the share dialog. */
export function ShareButton({ resource, small = false }: { resource: Shareable; small?: boolean }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <Button variant="secondary" className={small ? 'px-2 py-1 text-xs' : ''} onClick={() => setOpen(true)}>
        Share…<span className="sr-only"> {resource.name}</span>
      </Button>
      {open && <ShareDialog resource={resource} onClose={() => setOpen(false)} />}
    </>
  );
}
