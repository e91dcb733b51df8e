import type { Me } from '@/features/auth/api/get-me';

/** What the signed-in user may do where: lab admins (and IT admins) act for their labs. */
export function viewerOf(me: Me) {
  const isLabAdmin = (labId: string) => me.it_admin || me.labs.some((l) => l.lab_id === labId && l.role === 'lab_admin');
  return {
    userId: me.user_id,
    isLabAdmin,
    /** The environment's researcher or a lab admin may operate it (sync, hand over, share). */
    canOperate: (env: { lab_id: string; researcher_id: string }) => env.researcher_id === me.user_id || isLabAdmin(env.lab_id),
  };
}
