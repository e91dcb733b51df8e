import { useEffect } from 'react';

/** Sets the document title, so each page is announced and findable in tabs. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · West Tek` : 'West Tek';
  }, [title]);
}
