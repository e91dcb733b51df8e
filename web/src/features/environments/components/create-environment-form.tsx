import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { Button, buttonClass } from '@/components/ui/button';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { JobProgress } from '@/components/ui/job-progress';
import { toApiError } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import { useCreateEnvironment, type CreateEnvironmentRequest } from '../api/create-environment';
import {
  packageLines,
  validateCreateEnvironment,
  type CreateEnvironmentErrors,
  type CreateEnvironmentValues,
} from '../validation';

const EMPTY: CreateEnvironmentValues = {
  name: '',
  packages: '',
  pythonVersion: '',
  criticality: 'medium',
  experimentId: '',
  fundingSource: '',
};

type Props = { onClose?: () => void };

/** Create an environment (name, packages, Python, metadata) and follow its build live. */
export function CreateEnvironmentForm({ onClose }: Props) {
  const [values, setValues] = useState(EMPTY);
  const [errors, setErrors] = useState<CreateEnvironmentErrors>({});
  const create = useCreateEnvironment();
  const qc = useQueryClient();
  const lab = useLabId();

  const set = (k: keyof CreateEnvironmentValues) => (e: { target: { value: string } }) =>
    setValues((v) => ({ ...v, [k]: e.target.value }));

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const found = validateCreateEnvironment(values);
    setErrors(found);
    if (Object.keys(found).length > 0) {
      const first = Object.keys(found)[0];
      document.querySelector<HTMLElement>(`[name="${first}"]`)?.focus();
      return;
    }
    const body: CreateEnvironmentRequest = {
      name: values.name.trim(),
      packages: packageLines(values.packages),
      python_version: values.pythonVersion.trim() || null,
      metadata: {
        criticality: values.criticality,
        experiment_id: values.experimentId.trim() || null,
        funding_source: values.fundingSource.trim() || null,
      },
    };
    create.mutate(body);
  };

  // The server's validation errors land on the field they name.
  const serverError = create.error ? toApiError(create.error) : undefined;
  const fieldError = (k: keyof CreateEnvironmentValues, apiField: string) =>
    errors[k] ?? (serverError?.field === apiField ? serverError.message : undefined);

  if (create.data) {
    const envId = create.data.environment_id;
    return (
      <section aria-labelledby="building-heading" className="space-y-3">
        <h2 id="building-heading" className="text-lg font-semibold">
          Building “{values.name.trim()}”
        </h2>
        <JobProgress
          jobId={create.data.job_id}
          label="Building environment"
          onFinished={() => void qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) })}
        />
        <div className="flex gap-2">
          {envId && (
            <Link to={`/environments/${envId}`} className={buttonClass('primary')}>
              Open the environment
            </Link>
          )}
          <Button
            variant="secondary"
            onClick={() => {
              create.reset();
              setValues(EMPTY);
            }}
          >
            Create another
          </Button>
          {onClose && (
            <Button variant="secondary" onClick={onClose}>
              Close
            </Button>
          )}
        </div>
      </section>
    );
  }

  return (
    <form onSubmit={submit} noValidate aria-labelledby="create-heading" className="space-y-4">
      <h2 id="create-heading" className="text-lg font-semibold">
        New environment
      </h2>
      {serverError && !serverError.field && <ErrorMessage error={serverError} />}
      <div className="grid gap-4 md:grid-cols-2">
        <Field label="Name" hint="Letters, digits, “-”, “_”, “.”; unique in the lab." error={fieldError('name', 'name')}>
          {(p) => (
            <input {...p} name="name" className={inputClass} value={values.name} onChange={set('name')} autoComplete="off" />
          )}
        </Field>
        <Field
          label="Python version"
          hint="For example 3.11. Empty: the platform's default."
          error={fieldError('pythonVersion', 'python_version')}
        >
          {(p) => (
            <input
              {...p}
              name="pythonVersion"
              className={inputClass}
              value={values.pythonVersion}
              onChange={set('pythonVersion')}
              inputMode="decimal"
              placeholder="default"
            />
          )}
        </Field>
      </div>
      <Field
        label="Packages"
        hint="One per line, optionally with a version: numpy, pandas>=2,<3, scipy==1.13.1. JupyterLab and ipykernel are always installed."
        error={fieldError('packages', 'packages')}
      >
        {(p) => (
          <textarea
            {...p}
            name="packages"
            rows={4}
            className={`${inputClass} font-mono`}
            value={values.packages}
            onChange={set('packages')}
            spellCheck={false}
          />
        )}
      </Field>
      <fieldset className="grid gap-4 md:grid-cols-3">
        <legend className="mb-2 text-sm font-medium text-slate-900">About it (optional)</legend>
        <Field label="Criticality" error={fieldError('criticality', 'metadata.criticality')}>
          {(p) => (
            <select {...p} name="criticality" className={inputClass} value={values.criticality} onChange={set('criticality')}>
              <option value="low">Low</option>
              <option value="medium">Medium</option>
              <option value="high">High</option>
              <option value="critical">Critical</option>
            </select>
          )}
        </Field>
        <Field label="Experiment id" error={fieldError('experimentId', 'metadata.experiment_id')}>
          {(p) => (
            <input {...p} name="experimentId" className={inputClass} value={values.experimentId} onChange={set('experimentId')} />
          )}
        </Field>
        <Field label="Funding source" error={fieldError('fundingSource', 'metadata.funding_source')}>
          {(p) => (
            <input {...p} name="fundingSource" className={inputClass} value={values.fundingSource} onChange={set('fundingSource')} />
          )}
        </Field>
      </fieldset>
      <div className="flex gap-2">
        <Button type="submit" busy={create.isPending}>
          Create environment
        </Button>
        {onClose && (
          <Button variant="secondary" onClick={onClose}>
            Cancel
          </Button>
        )}
      </div>
    </form>
  );
}
