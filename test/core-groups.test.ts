import { describe, expect, it } from 'vitest';
import { ancestry, checkMove, isDescendant, subtreeIds } from '../src/core/groups.ts';

// root ─ board ─ schoolA ─ class1
//              └ schoolB
const tree = [
  { id: 'root', parentId: null },
  { id: 'board', parentId: 'root' },
  { id: 'schoolA', parentId: 'board' },
  { id: 'class1', parentId: 'schoolA' },
  { id: 'schoolB', parentId: 'board' },
];

describe('group tree', () => {
  it('finds subtrees and ancestry', () => {
    expect([...subtreeIds(tree, 'board')].sort()).toEqual(['board', 'class1', 'schoolA', 'schoolB']);
    expect(ancestry(tree, 'class1')).toEqual(['class1', 'schoolA', 'board', 'root']);
    expect(isDescendant(tree, 'class1', 'board')).toBe(true);
    expect(isDescendant(tree, 'schoolB', 'schoolA')).toBe(false);
    expect(isDescendant(tree, 'board', 'board')).toBe(false);
  });

  it('refuses moves that would break the tree', () => {
    expect(checkMove(tree, 'board', 'class1')).toBe('into_descendant');
    expect(checkMove(tree, 'schoolA', 'schoolA')).toBe('into_itself');
    expect(checkMove(tree, 'root', 'board')).toBe('root_cannot_move');
    expect(checkMove(tree, 'class1', 'nowhere')).toBe('unknown_parent');
    expect(checkMove(tree, 'class1', 'schoolB')).toBeNull();
  });

  it('does not loop on corrupted (cyclic) data', () => {
    const cyclic = [
      { id: 'a', parentId: 'b' },
      { id: 'b', parentId: 'a' },
    ];
    expect(ancestry(cyclic, 'a')).toEqual(['a', 'b']);
    expect([...subtreeIds(cyclic, 'a')].sort()).toEqual(['a', 'b']);
  });
});
