import { useState } from 'react';
import { Link } from 'react-router';
import { Badge, type Tone } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { ConfirmDialog } from '@/components/ui/dialog';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { dateTime, timeAgo } from '@/lib/format';
import { PERMISSION_WORDS, RESOURCE_WORDS, shareState, useShares, type Direction, type Share } from '../api/get-shares';
import { useRevokeShare } from '../api/revoke-share';
import { CloneAction } from './clone-action';

const STATE_TONE: Record<string, Tone> = { active: 'green', expired: 'gray', revoked: 'red' };

function ShareRow({ s, direction, onRevoke }: { s: Share; direction: Direction; onRevoke: (s: Share) => void }) {
  const state = shareState(s);
  const other = direction === 'given' ? s.target_lab_name : s.owner_lab_name;
  const type = RESOURCE_WORDS[s.resource_type] ?? s.resource_type;
  const canOpen = direction === 'received' && s.resource_type === 'environment' && state.kind === 'active';
  return (
    <li className="space-y-2 p-3 text-sm" data-testid="share">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0 space-y-1">
          <p className="font-medium break-words">
            {canOpen ? (
              <Link to={`/environments/${s.resource_id}`} className="text-sky-800 underline">
                {s.resource_name}
              </Link>
            ) : (
              s.resource_name
            )}{' '}
            <span className="font-normal text-slate-700">({type.toLowerCase()})</span>
          </p>
          <p className="text-slate-800">
            {direction === 'given' ? 'Shared with' : 'Shared by'} <strong>{other}</strong> ·{' '}
            {PERMISSION_WORDS[s.permission] ?? s.permission} ·{' '}
            <span title={dateTime(s.created_at)}>{timeAgo(s.created_at)}</span>
          </p>
        </div>
        <div className="flex flex-wrap items-center gap-2">
          <Badge
            tone={STATE_TONE[state.kind]!}
            title={s.revoked_at ? `Revoked ${dateTime(s.revoked_at)}` : s.expires_at ? `Until ${dateTime(s.expires_at)}` : undefined}
          >
            {state.words}
          </Badge>
          {direction === 'given' && state.kind !== 'revoked' && (
            <Button variant="danger" className="px-2 py-1 text-xs" onClick={() => onRevoke(s)}>
              Revoke<span className="sr-only"> the share of {s.resource_name} with {other}</span>
            </Button>
          )}
        </div>
      </div>
      {direction === 'received' && s.permission === 'clone' && state.kind === 'active' && (
        <CloneAction kind="share" id={s.id} what={s.resource_name} />
      )}
    </li>
  );
}

/** Shares the lab gave (with revoke) or received (with clone). */
export function ShareList({ direction }: { direction: Direction }) {
  const shares = useShares(direction);
  const revoke = useRevokeShare();
  const [revoking, setRevoking] = useState<Share | null>(null);
  const title = direction === 'given' ? 'Shares given' : 'Shares received';
  const headingId = `shares-${direction}-heading`;
  return (
    <section aria-labelledby={headingId} className="space-y-3 rounded-md border border-slate-300 bg-white p-4">
      <h2 id={headingId} className="text-lg font-semibold">
        {title}
      </h2>
      {shares.isPending ? (
        <Spinner label={`Loading ${title.toLowerCase()}…`} />
      ) : shares.isError ? (
        <ErrorMessage error={shares.error} onRetry={() => void shares.refetch()} />
      ) : shares.data.length === 0 ? (
        <EmptyState title={direction === 'given' ? 'Your lab has not shared anything.' : 'Nothing is shared with your lab.'}>
          {direction === 'given'
            ? 'Share an environment from its page, or a template from the list below.'
            : 'When another lab shares an environment, snapshot or template with yours, it appears here.'}
        </EmptyState>
      ) : (
        <ul aria-label={title} className="divide-y divide-slate-200 rounded-md border border-slate-200">
          {shares.data.map((s) => (
            <ShareRow key={s.id} s={s} direction={direction} onRevoke={(x) => (revoke.reset(), setRevoking(x))} />
          ))}
        </ul>
      )}
      {revoking && (
        <ConfirmDialog
          title="Revoke this share?"
          confirmLabel="Revoke"
          busy={revoke.isPending}
          error={revoke.error}
          onConfirm={() => revoke.mutate(revoking.id, { onSuccess: () => setRevoking(null) })}
          onCancel={() => setRevoking(null)}
        >
          <p>
            <strong>{revoking.target_lab_name}</strong> loses access to {revoking.resource_name} at once. Environments they
            already cloned stay theirs.
          </p>
          <p>To share it again, make a new share.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
