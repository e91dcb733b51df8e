/**
 * UI state (never server data): the lab the user works in, the live alert
 * toasts waiting to be read, and whether the agent chat panel is docked
 * open. The lab choice survives reloads.
 */
import { create } from 'zustand';
import { persist } from 'zustand/middleware';

export type Toast = {
  id: string;
  severity: 'CRITICAL' | 'MINOR' | 'INFO' | 'OK';
  title: string;
  body: string;
  /** Where "View" goes (a portal path). */
  href?: string;
};

type UiState = {
  /** The selected lab; null before the user's labs are known. */
  labId: string | null;
  setLab: (labId: string | null) => void;
  toasts: Toast[];
  pushToast: (t: Toast) => void;
  dismissToast: (id: string) => void;
  /** The docked agent chat panel is open (pages and toasts make room for it). */
  chatOpen: boolean;
  setChatOpen: (open: boolean) => void;
};

const MAX_TOASTS = 5;

export const useUiStore = create<UiState>()(
  persist(
    (set) => ({
      labId: null,
      setLab: (labId) => set({ labId }),
      toasts: [],
      pushToast: (t) =>
        set((s) => ({ toasts: [t, ...s.toasts.filter((x) => x.id !== t.id)].slice(0, MAX_TOASTS) })),
      dismissToast: (id) => set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) })),
      chatOpen: false,
      setChatOpen: (chatOpen) => set({ chatOpen }),
    }),
    { name: 'westtek-ui', partialize: (s) => ({ labId: s.labId }) },
  ),
);

/** The lab requests should work in. */
export const useLabId = () => useUiStore((s) => s.labId);
