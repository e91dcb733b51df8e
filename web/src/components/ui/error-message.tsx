import { toApiError } from '@/lib/api-client';
import { Button } from './button';

type Props = { error: unknown; onRetry?: () => void; className?: string };

/** An error in plain words, announced to screen readers. */
export function ErrorMessage({ error, onRetry, className = '' }: Props) {
  const e = toApiError(error);
  return (
    <div role="alert" className={`rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900 ${className}`}>
      <p className="font-semibold">{e.title}</p>
      <p>{e.message}</p>
      {onRetry && (
        <Button variant="secondary" className="mt-2" onClick={onRetry}>
          Try again
        </Button>
      )}
    </div>
  );
}
