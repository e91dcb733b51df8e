import { Link } from 'react-router';
import { Spinner } from '@/components/ui/spinner';
import { AdminDashboard } from '@/features/admin/components/admin-dashboard';
import { useMe } from '@/features/auth/api/get-me';
import { useTitle } from '@/lib/use-title';

/** `/admin`: the IT-admin dashboard; others are told it is not for them. */
export function AdminRoute() {
  useTitle('IT admin');
  const me = useMe();
  if (me.isPending) return <Spinner label="Checking your session…" />;
  if (!me.data?.it_admin) {
    return (
      <div className="space-y-2">
        <h1 className="text-2xl font-semibold">Not allowed</h1>
        <p>
          This page is for IT admins.{' '}
          <Link to="/" className="text-sky-800 underline">
            Go to your environments
          </Link>
          .
        </p>
      </div>
    );
  }
  return <AdminDashboard />;
}
