import { Link } from 'react-router';
import { useTitle } from '@/lib/use-title';

export function NotFoundRoute() {
  useTitle('Not found');
  return (
    <div className="space-y-2">
      <h1 className="text-2xl font-semibold">Page not found</h1>
      <p>
        There is nothing at this address.{' '}
        <Link to="/" className="text-sky-800 underline">
          Go to your environments
        </Link>
        .
      </p>
    </div>
  );
}
