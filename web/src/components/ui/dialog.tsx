import { useEffect, useId, useRef, type ReactNode } from 'react';
import { createPortal } from 'react-dom';
import { Button } from './button';
import { ErrorMessage } from './error-message';

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

type ModalProps = {
  /** Heading of the dialog; also its accessible name. */
  title: string;
  onClose: () => void;
  children: ReactNode;
  /** `dialog`: centred; `drawer`: docked to the right edge, full height. */
  variant?: 'dialog' | 'drawer';
  /** Where focus goes first (a CSS selector inside the dialog); default: the first focusable element. */
  initialFocus?: string;
};

/**
 * A modal dialog: focus moves into it and is kept there (Tab cycles),
 * Escape or the backdrop closes it, and focus returns to where it was.
 */
export function Modal({ title, onClose, children, variant = 'dialog', initialFocus }: ModalProps) {
  const titleId = useId();
  const ref = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  useEffect(() => {
    close.current = onClose;
  });
  useEffect(() => {
    const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const el = ref.current;
    const first =
      (initialFocus ? el?.querySelector<HTMLElement>(initialFocus) : null) ?? el?.querySelector<HTMLElement>(FOCUSABLE) ?? el;
    first?.focus();
    const onKeyDown = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        close.current();
        return;
      }
      if (e.key !== 'Tab' || !el) return;
      const items = [...el.querySelectorAll<HTMLElement>(FOCUSABLE)];
      if (items.length === 0) return;
      const head = items[0]!;
      const tail = items[items.length - 1]!;
      if (e.shiftKey && (document.activeElement === head || document.activeElement === el)) {
        e.preventDefault();
        tail.focus();
      } else if (!e.shiftKey && document.activeElement === tail) {
        e.preventDefault();
        head.focus();
      }
    };
    el?.addEventListener('keydown', onKeyDown);
    return () => {
      el?.removeEventListener('keydown', onKeyDown);
      previous?.focus();
    };
  }, [initialFocus]);

  const panel =
    variant === 'drawer'
      ? 'absolute inset-y-0 right-0 flex w-full max-w-2xl flex-col bg-white shadow-xl'
      : 'relative mx-auto mt-[12vh] w-[calc(100%-2rem)] max-w-lg rounded-md bg-white p-5 shadow-xl';
  return createPortal(
    <div className="fixed inset-0 z-50">
      {/* The backdrop is a convenience for pointer users; keyboard users have Escape and the buttons. */}
      {/* eslint-disable-next-line jsx-a11y/click-events-have-key-events, jsx-a11y/no-static-element-interactions */}
      <div className="absolute inset-0 bg-slate-900/50" onClick={() => close.current()} />
      <div ref={ref} role="dialog" aria-modal="true" aria-labelledby={titleId} tabIndex={-1} className={panel}>
        {variant === 'drawer' ? (
          <>
            <div className="flex items-center justify-between gap-3 border-b border-slate-300 px-5 py-3">
              <h2 id={titleId} className="truncate text-lg font-semibold">
                {title}
              </h2>
              <Button variant="secondary" onClick={() => close.current()}>
                Close
              </Button>
            </div>
            <div className="min-h-0 flex-1 overflow-auto p-5">{children}</div>
          </>
        ) : (
          <>
            <h2 id={titleId} className="text-lg font-semibold">
              {title}
            </h2>
            <div className="mt-3">{children}</div>
          </>
        )}
      </div>
    </div>,
    document.body,
  );
}

type ConfirmProps = {
  title: string;
  /** What will happen, in plain words. */
  children: ReactNode;
  confirmLabel: string;
  tone?: 'primary' | 'danger';
  busy?: boolean;
  /** A failure of the confirmed action, shown in the dialog. */
  error?: unknown;
  onConfirm: () => void;
  onCancel: () => void;
};

/** Asks before something that cannot easily be undone. Focus starts on Cancel. */
export function ConfirmDialog({ title, children, confirmLabel, tone = 'danger', busy, error, onConfirm, onCancel }: ConfirmProps) {
  return (
    <Modal title={title} onClose={onCancel} initialFocus="[data-cancel]">
      <div className="space-y-3 text-sm text-slate-800">{children}</div>
      {error ? <ErrorMessage error={error} className="mt-3" /> : null}
      <div className="mt-5 flex justify-end gap-2">
        <Button variant="secondary" data-cancel="" onClick={onCancel}>
          Cancel
        </Button>
        <Button variant={tone === 'danger' ? 'danger' : 'primary'} busy={busy} onClick={onConfirm}>
          {confirmLabel}
        </Button>
      </div>
    </Modal>
  );
}
