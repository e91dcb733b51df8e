import { useState } from 'react';
import { ErrorMessage } from '@/components/ui/error-message';
import { Progress } from '@/components/ui/progress';
import { dateTime } from '@/lib/format';
import type { ChecklistItem } from '../api/get-transfer';
import type { Handover } from '../api/get-handovers';
import { useUpdateChecklist } from '../api/update-checklist';

type Props = {
  /** The handover whose checklist this is; without one, a read-only preview of `items`. */
  handover?: Handover;
  items: ChecklistItem[];
  /** The new researcher (or a lab admin) may tick the steps. */
  canTick: boolean;
  /** Opens a step's source document. */
  onOpenDocument: (path: string, title: string) => void;
  /** Names the list for assistive technology. */
  label?: string;
};

/** The onboarding steps with progress; ticking one saves it at once. */
export function OnboardingChecklist({ handover, items, canTick, onOpenDocument, label = 'Onboarding checklist' }: Props) {
  const update = useUpdateChecklist();
  // The ticks being saved, shown at once; dropped when the server answers (its answer is the list then).
  const [saving, setSaving] = useState<Record<string, boolean>>({});
  const done = handover?.done ?? 0;
  const total = handover?.total ?? 0;
  const tickable = canTick && !!handover;
  return (
    <div className="space-y-3">
      {handover && (
        <Progress
          value={total === 0 ? 0 : done / total}
          label={`${label}: ${done} of ${total} done`}
          tone={total > 0 && done === total ? 'success' : 'normal'}
        />
      )}
      {handover && !canTick && (
        <p className="text-sm text-slate-700">Only the new researcher or a lab admin ticks these steps.</p>
      )}
      {update.error && <ErrorMessage error={update.error} />}
      <ul aria-label={label} className="divide-y divide-slate-200 rounded-md border border-slate-200">
        {items.map((item) => {
          const id = `check-${handover?.id ?? 'preview'}-${item.key}`;
          return (
            <li key={item.key} className="flex flex-wrap items-start justify-between gap-2 p-3 text-sm">
              <div className="flex min-w-0 flex-1 items-start gap-3">
                <input
                  id={id}
                  type="checkbox"
                  className="mt-0.5 h-4 w-4 shrink-0 accent-sky-700"
                  checked={saving[item.key] ?? item.done}
                  disabled={!tickable || item.key in saving}
                  onChange={(e) => {
                    if (!handover) return;
                    const done = e.target.checked;
                    setSaving((s) => ({ ...s, [item.key]: done }));
                    update.mutate(
                      { handoverId: handover.id, key: item.key, done },
                      {
                        onSettled: () =>
                          setSaving((s) => {
                            const { [item.key]: _saved, ...rest } = s;
                            return rest;
                          }),
                      },
                    );
                  }}
                />
                <label htmlFor={id} className={`min-w-0 break-words ${item.done ? 'text-slate-700' : 'text-slate-900'}`}>
                  {item.text}
                  {item.done && item.done_at && (
                    <span className="block text-xs text-slate-700">Done {dateTime(item.done_at)}</span>
                  )}
                </label>
              </div>
              {item.source && (
                <button
                  type="button"
                  className="shrink-0 text-sky-800 underline"
                  aria-label={`Open source of “${item.text}”`}
                  onClick={() => onOpenDocument(item.source!, item.source!.split('/').pop() ?? item.source!)}
                >
                  Open source
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}
