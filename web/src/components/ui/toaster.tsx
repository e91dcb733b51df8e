import { Link } from 'react-router';
import { useUiStore, type Toast } from '@/stores/ui';

const TONE: Record<Toast['severity'], string> = {
  CRITICAL: 'border-red-400 bg-red-50 text-red-950',
  MINOR: 'border-amber-400 bg-amber-50 text-amber-950',
  INFO: 'border-sky-400 bg-sky-50 text-sky-950',
  OK: 'border-emerald-400 bg-emerald-50 text-emerald-950',
};

/** Live alerts, announced politely (critical ones assertively) and dismissable. */
export function Toaster() {
  const toasts = useUiStore((s) => s.toasts);
  const dismiss = useUiStore((s) => s.dismissToast);
  // Beside the docked chat panel when it is open, not over its question box.
  const chatOpen = useUiStore((s) => s.chatOpen);
  return (
    <div
      className={`pointer-events-none fixed bottom-4 z-50 flex w-96 max-w-[calc(100vw-2rem)] flex-col gap-2 ${chatOpen ? 'right-4 sm:right-[29rem]' : 'right-4'}`}
    >
      <div aria-live="polite" className="contents">
        {toasts.map((t) => (
          <div
            key={t.id}
            role={t.severity === 'CRITICAL' ? 'alert' : 'status'}
            className={`pointer-events-auto rounded-md border p-3 text-sm break-words shadow-lg ${TONE[t.severity]}`}
          >
            <p className="font-semibold">{t.title}</p>
            <p>{t.body}</p>
            <div className="mt-2 flex gap-3">
              {t.href && (
                <Link to={t.href} className="font-medium underline" onClick={() => dismiss(t.id)}>
                  View
                </Link>
              )}
              <button type="button" className="font-medium underline" onClick={() => dismiss(t.id)}>
                Dismiss
              </button>
            </div>
          </div>
        ))}
      </div>
    </div>
  );
}
