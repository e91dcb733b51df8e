import { useCallback, useDeferredValue, useId, useState } from 'react';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { inputClass } from '@/components/ui/field';
import { Spinner } from '@/components/ui/spinner';
import { useEnvironments } from '../api/get-environments';
import { EnvironmentTable } from './environment-table';

/** The lab's environments with a name filter; pages load as the list scrolls. */
export function EnvironmentList() {
  const searchId = useId();
  const [search, setSearch] = useState('');
  const q = useDeferredValue(search.trim());
  const list = useEnvironments(q);
  const items = list.data?.pages.flatMap((p) => p.items) ?? [];
  const total = list.data?.pages[0]?.total ?? 0;
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = list;
  const more = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);

  return (
    <section aria-labelledby="envs-heading" className="min-w-0 space-y-3">
      <div className="flex flex-wrap items-end justify-between gap-3">
        <h2 id="envs-heading" className="text-lg font-semibold">
          All environments {list.data && <span className="font-normal text-slate-700">({total})</span>}
        </h2>
        <div className="w-64">
          <label htmlFor={searchId} className="sr-only">
            Filter environments by name
          </label>
          <input
            id={searchId}
            type="search"
            className={inputClass}
            placeholder="Filter by name"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
        </div>
      </div>
      {list.isPending ? (
        <Spinner label="Loading environments…" />
      ) : list.isError && !list.data ? (
        <ErrorMessage error={list.error} onRetry={() => void list.refetch()} />
      ) : total === 0 ? (
        <EmptyState title={q ? `No environment matches “${q}”.` : 'No environments yet.'}>
          {!q && 'Create one with “New environment”: it gets its own Python, JupyterLab and your packages.'}
        </EmptyState>
      ) : (
        <>
          {list.isError && <ErrorMessage error={list.error} onRetry={() => void list.refetch()} />}
          <EnvironmentTable items={items} total={total} onNeedMore={more} />
        </>
      )}
    </section>
  );
}
