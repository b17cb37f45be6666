import { createContext, useContext } from 'react';

/** Who the signed-in token acts for (GET /api/v1/me, decision 0029). */
export interface Me {
  administrator: {
    id: string;
    name: string;
    role: 'owner' | 'admin' | 'operator' | 'viewer';
    scopeGroupId: string;
    wholeTree: boolean;
  };
  token: { id: string; name: string };
  permissions: ('read' | 'operate' | 'manage' | 'owner')[];
  scope: { groupId: string; wholeTree: boolean; path: string[] };
}

export const MeContext = createContext<Me | null>(null);

/**
 * What the signed-in administrator may do, to hide the actions their role may not (the API is the
 * guard: a hidden button is only a kindness). Until /me has answered, nothing is allowed.
 */
export function useCan(): {
  me: Me | null;
  can(permission: Me['permissions'][number]): boolean;
  wholeTree: boolean;
} {
  const me = useContext(MeContext);
  return {
    me,
    can: (permission) => me?.permissions.includes(permission) ?? false,
    wholeTree: me?.scope.wholeTree ?? false,
  };
}
