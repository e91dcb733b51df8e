import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { Button } from '@/components/ui/button';
import { Modal } from '@/components/ui/dialog';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { usePublishTemplate } from '../api/publish-template';

type Props = {
  snapshot: { id: string; complete: boolean };
  /** A suggested template name. */
  defaultName: string;
};

/** "Publish as template…" for a snapshot: name and description, then a read-only template. */
export function PublishTemplateButton({ snapshot, defaultName }: Props) {
  const publish = usePublishTemplate();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(defaultName);
  const [description, setDescription] = useState('');
  const [error, setError] = useState<string>();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim() === '') {
      setError('Give the template a name.');
      return;
    }
    setError(undefined);
    publish.mutate({ snapshot_id: snapshot.id, name: name.trim(), description: description.trim() || null });
  };

  return (
    <section aria-labelledby={`publish-${snapshot.id}`} className="space-y-2">
      <h4 id={`publish-${snapshot.id}`} className="font-medium">
        Template
      </h4>
      <p className="text-sm text-slate-800">
        Publish this snapshot read-only so your lab, and labs you share it with, can start new environments from it.
      </p>
      <Button
        variant="secondary"
        disabled={!snapshot.complete}
        onClick={() => {
          publish.reset();
          setOpen(true);
        }}
      >
        Publish as template…
      </Button>
      {open && (
        <Modal title="Publish as template" onClose={() => setOpen(false)}>
          {publish.data ? (
            <div className="space-y-3 text-sm">
              <p role="status" className="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-emerald-950">
                Published “{publish.data.name}”. The snapshot cannot be deleted while the template is published.
              </p>
              <div className="flex items-center justify-between gap-2">
                <Link to="/collaboration" className="font-medium text-sky-800 underline">
                  See your templates
                </Link>
                <Button onClick={() => setOpen(false)}>Done</Button>
              </div>
            </div>
          ) : (
            <form aria-label="Publish as template" noValidate onSubmit={submit} className="space-y-4">
              <Field label="Template name" error={error}>
                {(p) => (
                  <input {...p} className={inputClass} value={name} maxLength={100} onChange={(e) => setName(e.target.value)} />
                )}
              </Field>
              <Field label="Description (optional)" hint="What it is good for; others see this.">
                {(p) => (
                  <textarea
                    {...p}
                    rows={3}
                    className={inputClass}
                    value={description}
                    onChange={(e) => setDescription(e.target.value)}
                  />
                )}
              </Field>
              {publish.error && <ErrorMessage error={publish.error} />}
              <div className="flex justify-end gap-2">
                <Button variant="secondary" onClick={() => setOpen(false)}>
                  Cancel
                </Button>
                <Button type="submit" busy={publish.isPending}>
                  Publish
                </Button>
              </div>
            </form>
          )}
        </Modal>
      )}
    </section>
  );
}
