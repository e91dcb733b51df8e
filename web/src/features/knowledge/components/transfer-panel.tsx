import { Badge } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { useDownloadPackage } from '../api/download-package';
import { useTransfer, type TransferSummary } from '../api/get-transfer';
import { useSyncKnowledge, type SyncResult } from '../api/sync-knowledge';
import { Markdown } from './markdown';
import { redactionList } from './words';

type Props = {
  environmentId: string;
  /** Whether the caller may operate the environment (owner or lab admin): "Sync now". */
  canOperate: boolean;
  /** Opens a knowledge document (the drawer). */
  onOpenDocument: (path: string, title: string) => void;
};

function SyncOutcome({ r }: { r: SyncResult }) {
  return (
    <div role="status" className="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950">
      <p className="font-semibold">Knowledge synced</p>
      <p>
        {r.documents.length} document{r.documents.length === 1 ? '' : 's'} written, {r.chunks} passage
        {r.chunks === 1 ? '' : 's'} indexed for search,{' '}
        {r.redactions === 0 ? 'nothing redacted' : `${r.redactions} secret${r.redactions === 1 ? '' : 's'} or personal detail${r.redactions === 1 ? '' : 's'} redacted`}
        .
      </p>
      {r.skipped.length > 0 && (
        <>
          <p className="mt-1">Left out:</p>
          <ul className="list-disc pl-5">
            {r.skipped.map((s) => (
              <li key={s} className="break-words">
                {s}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function Notebooks({ t, onOpenDocument }: { t: TransferSummary; onOpenDocument: Props['onOpenDocument'] }) {
  if (t.notebooks.length === 0) return <p className="text-sm text-slate-700">This environment has no notebooks.</p>;
  return (
    <ol aria-label="Notebooks in run order" className="space-y-2">
      {t.notebooks.map((nb, i) => (
        <li key={nb.path} className="rounded-md border border-slate-200 p-3 text-sm">
          <div className="flex flex-wrap items-center justify-between gap-2">
            <p className="font-medium break-all">
              <span className="text-slate-700">{i + 1}.</span> {nb.path}
            </p>
            {nb.error ? (
              <Badge tone="red">Not in the knowledge base</Badge>
            ) : nb.document ? (
              <Button variant="secondary" className="px-2 py-1 text-xs" onClick={() => onOpenDocument(nb.document!, nb.path)}>
                Open<span className="sr-only"> {nb.path} as read by the knowledge base</span>
              </Button>
            ) : null}
          </div>
          {nb.error && <p className="mt-1 text-red-900">It could not be read: {nb.error}</p>}
          <p className="mt-1 text-slate-800">
            {nb.data_files.length === 0 ? 'Reads no data files.' : `Reads ${nb.data_files.join(', ')}.`}
            {nb.imports.length > 0 && ` Imports ${nb.imports.join(', ')}.`}
          </p>
        </li>
      ))}
    </ol>
  );
}

/** The environment's transfer package: summary, notebooks in run order, redactions, download and sync. */
export function TransferPanel({ environmentId, canOperate, onOpenDocument }: Props) {
  const transfer = useTransfer(environmentId);
  const download = useDownloadPackage();
  const sync = useSyncKnowledge();
  return (
    <section aria-labelledby="transfer-heading" className="space-y-4 rounded-md border border-slate-300 bg-white p-4">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h2 id="transfer-heading" className="text-lg font-semibold">
          Transfer package
        </h2>
        {transfer.data && (
          <div className="flex flex-wrap gap-2">
            {canOperate && (
              <Button variant="secondary" busy={sync.isPending} onClick={() => sync.mutate(environmentId)}>
                Sync now
              </Button>
            )}
            <Button
              busy={download.isPending}
              onClick={() => download.mutate({ environmentId, name: transfer.data.name })}
            >
              Download package (.zip)
            </Button>
          </div>
        )}
      </div>
      <p className="text-sm text-slate-800">
        Everything a new researcher needs to take this environment over: the summary, the notebooks in the order they
        run, the package manifests and history. Secrets and personal details are redacted before anything is stored.
      </p>
      {download.error && <ErrorMessage error={download.error} />}
      {sync.error && <ErrorMessage error={sync.error} />}
      {sync.data && <SyncOutcome r={sync.data} />}
      {transfer.isPending ? (
        <Spinner label="Preparing the transfer package…" />
      ) : transfer.isError ? (
        <ErrorMessage error={transfer.error} onRetry={() => void transfer.refetch()} />
      ) : (
        <div className="grid items-start gap-6 xl:grid-cols-[minmax(0,1fr)_24rem]">
          <div className="min-w-0 space-y-2">
            <h3 className="font-medium">Summary</h3>
            {transfer.data.summary.trim() === '' ? (
              <EmptyState title="No summary yet.">Take a snapshot or sync the knowledge base to write one.</EmptyState>
            ) : (
              <div
                role="region"
                aria-label="Generated summary"
                tabIndex={0}
                data-testid="transfer-summary"
                className="max-h-[36rem] overflow-auto rounded-md border border-slate-200 bg-slate-50 p-4"
              >
                <Markdown text={transfer.data.summary} headingOffset={3} />
              </div>
            )}
            <p className="text-xs text-slate-700">
              Based on {transfer.data.snapshots} snapshot{transfer.data.snapshots === 1 ? '' : 's'} ·{' '}
              <button
                type="button"
                className="text-sky-800 underline"
                onClick={() => onOpenDocument(transfer.data.summary_path, `Summary of ${transfer.data.name}`)}
              >
                open the stored document
              </button>
            </p>
          </div>
          <div className="space-y-4">
            <div className="space-y-2">
              <h3 className="font-medium">Notebooks, in run order</h3>
              <Notebooks t={transfer.data} onOpenDocument={onOpenDocument} />
            </div>
            <div className="space-y-2">
              <h3 className="font-medium">Redactions</h3>
              <Redactions r={transfer.data.redactions} />
            </div>
          </div>
        </div>
      )}
    </section>
  );
}

export function Redactions({ r }: { r: Record<string, number> }) {
  const list = redactionList(r);
  if (list.length === 0) return <p className="text-sm text-slate-700">Nothing needed redacting.</p>;
  return (
    <div className="text-sm text-slate-800">
      <p>Removed before storing (the values are never kept):</p>
      <ul aria-label="Redactions by kind" className="list-disc pl-5">
        {list.map((x) => (
          <li key={x.kind}>{x.words}</li>
        ))}
      </ul>
    </div>
  );
}
