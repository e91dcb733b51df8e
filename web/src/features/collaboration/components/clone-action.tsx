import { useId, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { Button } from '@/components/ui/button';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { JobProgress } from '@/components/ui/job-progress';
import { useCloneShare } from '../api/clone-share';
import { useCloneTemplate } from '../api/clone-template';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Why a new environment name is not acceptable (empty is fine: the platform picks one). */
export function cloneNameProblem(name: string): string | undefined {
  const n = name.trim();
  if (n === '' || NAME.test(n)) return undefined;
  return 'Use letters, digits, “-”, “_” and “.” only, starting with a letter or digit (at most 63).';
}

type Props = {
  /** Clone through a share, or a template. */
  kind: 'share' | 'template';
  id: string;
  /** What is cloned, for labels ("e2e-analysis"). */
  what: string;
};

/** "Clone…": asks for a name, starts the clone, follows its job and links to the new environment. */
export function CloneAction({ kind, id, what }: Props) {
  const viaShare = useCloneShare();
  const viaTemplate = useCloneTemplate();
  const clone = kind === 'share' ? viaShare : viaTemplate;
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  const [error, setError] = useState<string>();
  const [finished, setFinished] = useState(false);
  const formId = useId();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const problem = cloneNameProblem(name);
    setError(problem);
    if (problem) return;
    setFinished(false);
    clone.mutate({ id, body: { name: name.trim() || null } });
  };

  if (clone.data) {
    return (
      <div className="space-y-2">
        <JobProgress
          key={clone.data.job_id}
          jobId={clone.data.job_id}
          label={`Cloning ${what}`}
          onFinished={(job) => setFinished(job.status === 'succeeded')}
        />
        {finished && (
          <Link to={`/environments/${clone.data.environment_id}`} className="text-sm font-medium text-sky-800 underline">
            Open the new environment
          </Link>
        )}
      </div>
    );
  }
  if (!open) {
    return (
      <Button variant="secondary" className="px-2 py-1 text-xs" onClick={() => setOpen(true)}>
        Clone…<span className="sr-only"> {what}</span>
      </Button>
    );
  }
  return (
    <form id={formId} aria-label={`Clone ${what}`} noValidate onSubmit={submit} className="space-y-2">
      <Field label="Name of the new environment (optional)" hint="Left empty, the platform picks one." error={error}>
        {(p) => (
          <input
            {...p}
            className={inputClass}
            value={name}
            onChange={(e) => setName(e.target.value)}
            maxLength={63}
            autoComplete="off"
            // eslint-disable-next-line jsx-a11y/no-autofocus -- the form opens on request; focus follows the user's action
            autoFocus
          />
        )}
      </Field>
      <div className="flex gap-2">
        <Button type="submit" busy={clone.isPending}>
          Clone into my lab
        </Button>
        <Button variant="secondary" onClick={() => setOpen(false)}>
          Cancel
        </Button>
      </div>
      {clone.error && <ErrorMessage error={clone.error} />}
    </form>
  );
}
