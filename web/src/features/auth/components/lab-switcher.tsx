import { useId } from 'react';
import { useUiStore } from '@/stores/ui';
import type { Me } from '../api/get-me';

/** Picks the lab the portal works in; shown only to users in several labs. */
export function LabSwitcher({ me }: { me: Me }) {
  const id = useId();
  const labId = useUiStore((s) => s.labId);
  const setLab = useUiStore((s) => s.setLab);
  if (me.labs.length < 2) {
    const only = me.labs[0];
    return only ? <span className="text-sm text-slate-200">{only.lab_name ?? only.lab_id}</span> : null;
  }
  return (
    <div className="flex items-center gap-2">
      <label htmlFor={id} className="text-sm text-slate-200">
        Lab
      </label>
      <select
        id={id}
        className="rounded-md border border-slate-500 bg-slate-800 px-2 py-1 text-sm text-white"
        value={labId ?? ''}
        onChange={(e) => setLab(e.target.value)}
      >
        {me.labs.map((l) => (
          <option key={l.lab_id} value={l.lab_id}>
            {l.lab_name ?? l.lab_id} ({l.role.replace('_', ' ')})
          </option>
        ))}
      </select>
    </div>
  );
}
