import { useRef, useState, type FormEvent } from 'react';
import { Button } from '@/components/ui/button';
import { ConfirmDialog } from '@/components/ui/dialog';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { Spinner } from '@/components/ui/spinner';
import { dateInputFromNow, dateTime, endOfDay } from '@/lib/format';
import { useCreateHandover } from '../api/create-handover';
import { useLabUsers, userName } from '../api/get-lab-users';

type Props = {
  environment: { id: string; name: string; labId: string; researcherId: string };
  /** Called after the handover is made. */
  onDone?: () => void;
};

type Errors = { to?: string; readUntil?: string; note?: string };

export function validateHandover(v: { to: string; readUntil: string; note: string }, now: Date = new Date()): Errors {
  const e: Errors = {};
  if (!v.to) e.to = 'Pick the researcher who takes the environment over.';
  const until = endOfDay(v.readUntil);
  if (!until) e.readUntil = 'Pick a date.';
  else if (Date.parse(until) <= now.getTime()) e.readUntil = 'Pick a date after today.';
  else if (Date.parse(until) > now.getTime() + 365 * 24 * 3600_000) e.readUntil = 'At most a year from today.';
  if (new TextEncoder().encode(v.note).length > 4000) e.note = 'At most 4,000 characters.';
  return e;
}

/** Hands the environment over to another researcher of its lab, after saying what will happen. */
export function HandoverForm({ environment, onDone }: Props) {
  const users = useLabUsers(environment.labId);
  const create = useCreateHandover();
  const [to, setTo] = useState('');
  const [note, setNote] = useState('');
  const [readUntil, setReadUntil] = useState(() => dateInputFromNow(30));
  const [errors, setErrors] = useState<Errors>({});
  const [confirming, setConfirming] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  const candidates = (users.data ?? []).filter((u) => u.id !== environment.researcherId);
  const owner = userName(users.data, environment.researcherId);
  const newOwner = userName(users.data, to);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validateHandover({ to, readUntil, note });
    setErrors(found);
    if (Object.keys(found).length > 0) {
      form.current?.querySelector<HTMLElement>(`[name="${Object.keys(found)[0]}"]`)?.focus();
      return;
    }
    create.reset();
    setConfirming(true);
  };
  const confirm = () =>
    create.mutate(
      { environment_id: environment.id, to, note: note.trim() || null, read_until: endOfDay(readUntil) },
      {
        onSuccess: () => {
          setConfirming(false);
          setTo('');
          setNote('');
          onDone?.();
        },
      },
    );

  if (users.isPending) return <Spinner label="Loading the lab’s researchers…" />;
  if (users.isError) return <ErrorMessage error={users.error} onRetry={() => void users.refetch()} />;
  return (
    <form ref={form} aria-label="Hand over" noValidate onSubmit={submit} className="space-y-3">
      <p className="text-sm text-slate-800">
        Now owned by <strong>{owner}</strong>.
      </p>
      {candidates.length === 0 ? (
        <p className="text-sm text-slate-700">
          Nobody else is in this lab yet. A lab admin can add the new researcher first.
        </p>
      ) : (
        <>
          <div className="grid gap-3 sm:grid-cols-2">
            <Field label="New researcher" error={errors.to}>
              {(p) => (
                <select {...p} name="to" className={inputClass} value={to} onChange={(e) => (setTo(e.target.value), setErrors((x) => ({ ...x, to: undefined })))}>
                  <option value="">Choose…</option>
                  {candidates.map((u) => (
                    <option key={u.id} value={u.id}>
                      {userName(users.data, u.id)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field
              label="Previous owner may read until"
              hint="They keep read-only access until the end of this day (default: 30 days)."
              error={errors.readUntil}
            >
              {(p) => (
                <input
                  {...p}
                  type="date"
                  name="readUntil"
                  className={inputClass}
                  value={readUntil}
                  min={dateInputFromNow(1)}
                  max={dateInputFromNow(365)}
                  onChange={(e) => (setReadUntil(e.target.value), setErrors((x) => ({ ...x, readUntil: undefined })))}
                />
              )}
            </Field>
          </div>
          <Field label="Note for the new researcher (optional)" error={errors.note}>
            {(p) => (
              <textarea
                {...p}
                rows={3}
                name="note"
                className={inputClass}
                value={note}
                onChange={(e) => (setNote(e.target.value), setErrors((x) => ({ ...x, note: undefined })))}
                placeholder="e.g. run the notebooks in order; the raw data is on the lab share"
              />
            )}
          </Field>
          <Button type="submit">Hand over…</Button>
        </>
      )}
      {!confirming && create.error && <ErrorMessage error={create.error} />}
      {confirming && (
        <ConfirmDialog
          title={`Hand over “${environment.name}”?`}
          confirmLabel="Hand over"
          tone="primary"
          busy={create.isPending}
          error={create.error}
          onConfirm={confirm}
          onCancel={() => setConfirming(false)}
        >
          <p>
            Ownership of <strong>{environment.name}</strong> moves from {owner} to <strong>{newOwner}</strong> now.
          </p>
          <p>
            {owner} keeps read-only access until {dateTime(endOfDay(readUntil))}, even after leaving the lab; after that
            only {newOwner} and lab admins can use it.
          </p>
          <p>The transfer package is regenerated and {newOwner} gets an onboarding checklist to work through.</p>
        </ConfirmDialog>
      )}
    </form>
  );
}
