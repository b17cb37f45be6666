/** The group tree as plain data: one root (parentId null), every other group under exactly one parent. */
export interface GroupNode {
  id: string;
  parentId: string | null;
}

/** Index of children by parent id, built once per operation. */
export function childrenIndex(groups: readonly GroupNode[]): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const g of groups) {
    if (g.parentId === null) continue;
    const list = index.get(g.parentId);
    if (list) list.push(g.id);
    else index.set(g.parentId, [g.id]);
  }
  return index;
}

/** The group and every group below it (iterative, so a deep tree cannot overflow the stack). */
export function subtreeIds(groups: readonly GroupNode[], rootId: string): Set<string> {
  const index = childrenIndex(groups);
  const out = new Set<string>([rootId]);
  const stack = [rootId];
  while (stack.length > 0) {
    const id = stack.pop()!;
    for (const child of index.get(id) ?? []) {
      if (!out.has(child)) {
        out.add(child);
        stack.push(child);
      }
    }
  }
  return out;
}

/** Ids from the group up to the root, the group first. Stops on a cycle instead of looping. */
export function ancestry(groups: readonly GroupNode[], id: string): string[] {
  const byId = new Map(groups.map((g) => [g.id, g]));
  const chain: string[] = [];
  const seen = new Set<string>();
  let current = byId.get(id);
  while (current && !seen.has(current.id)) {
    chain.push(current.id);
    seen.add(current.id);
    current = current.parentId === null ? undefined : byId.get(current.parentId);
  }
  return chain;
}

export function isDescendant(groups: readonly GroupNode[], candidateId: string, ancestorId: string): boolean {
  return candidateId !== ancestorId && ancestry(groups, candidateId).includes(ancestorId);
}

export type MoveRefusal = 'root_cannot_move' | 'into_itself' | 'into_descendant' | 'unknown_parent';

/** Why moving `id` under `newParentId` would break the tree, or null when it is fine. */
export function checkMove(groups: readonly GroupNode[], id: string, newParentId: string): MoveRefusal | null {
  const group = groups.find((g) => g.id === id);
  if (!group || group.parentId === null) return 'root_cannot_move';
  if (!groups.some((g) => g.id === newParentId)) return 'unknown_parent';
  if (id === newParentId) return 'into_itself';
  if (isDescendant(groups, newParentId, id)) return 'into_descendant';
  return null;
}

/**
 * The deepest group that is an ancestor-or-self of every given group: where something spanning
 * these groups belongs (a distribution's place in the tree, decision 0029). Unknown ids are
 * ignored; with none known, null.
 */
export function commonAncestor(groups: readonly GroupNode[], ids: Iterable<string>): string | null {
  let common: string[] | null = null;
  for (const id of new Set(ids)) {
    const line = ancestry(groups, id).reverse(); // root first
    if (line.length === 0) continue;
    if (common === null) {
      common = line;
      continue;
    }
    let n = 0;
    while (n < common.length && n < line.length && common[n] === line[n]) n++;
    common = common.slice(0, n);
  }
  return common && common.length > 0 ? common[common.length - 1]! : null;
}
