import { createBrowserRouter, RouterProvider } from 'react-router';
import { AppShell } from './routes/app-shell';
import { DashboardRoute } from './routes/dashboard';
import { NotFoundRoute } from './routes/not-found';

/**
 * Routes. The dashboard (the landing page) is in the main bundle; the other
 * pages load when first visited.
 */
export const router = createBrowserRouter([
  {
    path: '/sign-in',
    lazy: async () => ({ Component: (await import('./routes/sign-in')).SignInRoute }),
  },
  {
    element: <AppShell />,
    children: [
      { index: true, element: <DashboardRoute /> },
      {
        path: 'admin',
        lazy: async () => ({ Component: (await import('./routes/admin')).AdminRoute }),
      },
      {
        path: 'environments/:id',
        lazy: async () => ({ Component: (await import('./routes/environment')).EnvironmentRoute }),
      },
      {
        path: 'environments/:id/knowledge',
        lazy: async () => ({ Component: (await import('./routes/knowledge')).KnowledgeRoute }),
      },
      {
        path: 'onboarding',
        lazy: async () => ({ Component: (await import('./routes/onboarding')).OnboardingRoute }),
      },
      {
        path: 'collaboration',
        lazy: async () => ({ Component: (await import('./routes/collaboration')).CollaborationRoute }),
      },
      { path: '*', element: <NotFoundRoute /> },
    ],
  },
]);

export function AppRouter() {
  return <RouterProvider router={router} />;
}
