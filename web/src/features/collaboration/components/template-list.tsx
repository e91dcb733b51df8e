import { useState } from 'react';
import { Badge } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { ConfirmDialog } from '@/components/ui/dialog';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { dateTime, timeAgo } from '@/lib/format';
import { isSharedIn, useTemplates, type Template } from '../api/get-templates';
import { useWithdrawTemplate } from '../api/withdraw-template';
import { CloneAction } from './clone-action';
import { ShareButton } from './share-dialog';

function TemplateRow({ t, onWithdraw }: { t: Template; onWithdraw: (t: Template) => void }) {
  const shared = isSharedIn(t);
  return (
    <li className="space-y-2 p-3 text-sm" data-testid="template">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0 space-y-1">
          <p className="flex flex-wrap items-center gap-2">
            <span className="font-medium break-words">{t.name}</span>
            {shared ? <Badge tone="blue">Shared with your lab</Badge> : <Badge tone="gray">Your lab’s</Badge>}
          </p>
          {t.description && <p className="break-words text-slate-800">{t.description}</p>}
          <p className="text-slate-700">
            Python {t.python_version} · {t.packages.length} package{t.packages.length === 1 ? '' : 's'} · published{' '}
            <span title={dateTime(t.published_at)}>{timeAgo(t.published_at)}</span>
          </p>
          {t.packages.length > 0 && (
            <details>
              <summary className="cursor-pointer text-slate-900">Packages</summary>
              <p className="mt-1 font-mono text-xs break-words text-slate-800">{t.packages.join(', ')}</p>
            </details>
          )}
        </div>
        {!shared && (
          <div className="flex flex-wrap gap-2">
            <ShareButton small resource={{ type: 'template', id: t.id, name: t.name }} />
            <Button variant="danger" className="px-2 py-1 text-xs" onClick={() => onWithdraw(t)}>
              Withdraw<span className="sr-only"> {t.name}</span>
            </Button>
          </div>
        )}
      </div>
      <CloneAction kind="template" id={t.id} what={t.name} />
    </li>
  );
}

/** Templates: the lab's own (share, withdraw) and those shared with it; any can be cloned. */
export function TemplateList() {
  const templates = useTemplates();
  const withdraw = useWithdrawTemplate();
  const [withdrawing, setWithdrawing] = useState<Template | null>(null);
  return (
    <section aria-labelledby="templates-heading" className="space-y-3 rounded-md border border-slate-300 bg-white p-4">
      <h2 id="templates-heading" className="text-lg font-semibold">
        Templates
      </h2>
      <p className="text-sm text-slate-800">
        A template is a snapshot published read-only, for others to start new environments from. Publish one from a
        snapshot’s details on its environment’s page.
      </p>
      {templates.isPending ? (
        <Spinner label="Loading templates…" />
      ) : templates.isError ? (
        <ErrorMessage error={templates.error} onRetry={() => void templates.refetch()} />
      ) : templates.data.length === 0 ? (
        <EmptyState title="No templates yet." />
      ) : (
        <ul aria-label="Templates" className="divide-y divide-slate-200 rounded-md border border-slate-200">
          {templates.data.map((t) => (
            <TemplateRow key={t.id} t={t} onWithdraw={(x) => (withdraw.reset(), setWithdrawing(x))} />
          ))}
        </ul>
      )}
      {withdrawing && (
        <ConfirmDialog
          title={`Withdraw “${withdrawing.name}”?`}
          confirmLabel="Withdraw"
          busy={withdraw.isPending}
          error={withdraw.error}
          onConfirm={() => withdraw.mutate(withdrawing.id, { onSuccess: () => setWithdrawing(null) })}
          onCancel={() => setWithdrawing(null)}
        >
          <p>It is listed nowhere and nobody can clone it any more, including labs it was shared with.</p>
          <p>Environments already cloned from it stay. Its snapshot may be deleted again.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}
