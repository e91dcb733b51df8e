import { Link } from 'react-router';
import { useEnvironmentBrief } from '../api/get-environment-name';
import { isOpen, useHandovers, type Handover } from '../api/get-handovers';

function OpenRow({ h }: { h: Handover }) {
  const env = useEnvironmentBrief(h.environment_id);
  return (
    <li className="flex flex-wrap items-center justify-between gap-2 py-2 text-sm">
      <Link to={`/environments/${h.environment_id}/knowledge`} className="font-medium text-sky-800 underline">
        {env.data?.name ?? 'Environment'}
      </Link>
      <span className="text-slate-800">
        {h.done} of {h.total} steps done
      </span>
    </li>
  );
}

/**
 * A dashboard card: the caller's unfinished onboarding; nothing when there is
 * none, or while it cannot be read (the Onboarding page explains failures; the
 * dashboard stays about environments).
 */
export function OpenHandovers({ userId }: { userId: string }) {
  const handovers = useHandovers(null);
  const list = Array.isArray(handovers.data) ? handovers.data : [];
  const open = list.filter((h) => h.to_user === userId && isOpen(h));
  if (open.length === 0) return null;
  return (
    <section aria-labelledby="open-handovers-heading" className="rounded-md border border-sky-300 bg-sky-50 p-4">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h2 id="open-handovers-heading" className="font-semibold">
          Onboarding: {open.length} environment{open.length === 1 ? '' : 's'} handed over to you
        </h2>
        <Link to="/onboarding" className="text-sm font-medium text-sky-800 underline">
          Open your checklists
        </Link>
      </div>
      <ul className="mt-2 divide-y divide-sky-200">
        {open.map((h) => (
          <OpenRow key={h.id} h={h} />
        ))}
      </ul>
    </section>
  );
}
