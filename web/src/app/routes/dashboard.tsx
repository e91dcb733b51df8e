import { useMemo, useState } from 'react';
import { Button } from '@/components/ui/button';
import { useMe } from '@/features/auth/api/get-me';
import { RecentDriftEvents } from '@/features/drift/components/recent-drift-events';
import { useEnvironments } from '@/features/environments/api/get-environments';
import { CreateEnvironmentForm } from '@/features/environments/components/create-environment-form';
import { EnvironmentList } from '@/features/environments/components/environment-list';
import { OpenHandovers } from '@/features/knowledge/components/open-handovers';
import { useTitle } from '@/lib/use-title';

export function DashboardRoute() {
  useTitle('Environments');
  const [creating, setCreating] = useState(false);
  const me = useMe();
  const all = useEnvironments('');
  const names = useMemo(
    () => new Map(all.data?.pages.flatMap((p) => p.items.map((e) => [e.id, e.name] as const)) ?? []),
    [all.data],
  );
  return (
    <div className="space-y-6">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h1 className="text-2xl font-semibold">Environments</h1>
        {!creating && <Button onClick={() => setCreating(true)}>New environment</Button>}
      </div>
      {me.data && <OpenHandovers userId={me.data.user_id} />}
      {creating && (
        <div className="rounded-md border border-slate-300 bg-white p-4">
          <CreateEnvironmentForm onClose={() => setCreating(false)} />
        </div>
      )}
      <div className="grid items-start gap-6 xl:grid-cols-[minmax(0,1fr)_22rem]">
        <EnvironmentList />
        <RecentDriftEvents environmentNames={names} />
      </div>
    </div>
  );
}
