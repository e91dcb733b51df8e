import { useEffect, useRef } from 'react';
import { explainJobError, isTerminal, useJob, type Job } from '@/lib/jobs';
import { ErrorMessage } from './error-message';
import { Progress } from './progress';

type Props = {
  jobId: string;
  /** What the job does, e.g. "Building environment". */
  label: string;
  /** Called once when the job succeeds or fails. */
  onFinished?: (job: Job) => void;
};

/** Live progress of a job: bar, message, and the outcome in words. */
export function JobProgress({ jobId, label, onFinished }: Props) {
  const { data: job, error } = useJob(jobId);
  const finished = useRef(false);
  const callback = useRef(onFinished);
  useEffect(() => {
    callback.current = onFinished;
  });
  useEffect(() => {
    if (job && isTerminal(job) && !finished.current) {
      finished.current = true;
      callback.current?.(job);
    }
  }, [job]);

  if (error && !job) return <ErrorMessage error={error} />;
  if (!job) return <Progress value={undefined} label={label} message="Starting…" />;
  if (job.status === 'failed') {
    return (
      <div className="space-y-2">
        <Progress value={job.progress} label={label} tone="error" />
        <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900">
          <p className="font-semibold">{label} failed</p>
          <p>{explainJobError(job)}</p>
        </div>
      </div>
    );
  }
  const done = job.status === 'succeeded';
  return (
    <Progress
      value={done ? 1 : job.progress}
      label={label}
      tone={done ? 'success' : 'normal'}
      message={done ? `${label}: done.` : job.message || (job.status === 'queued' ? 'Waiting to start…' : 'Working…')}
    />
  );
}
