import { describe, expect, it } from 'vitest';
import {
  checkShare,
  dueExpiryWarning,
  effectiveAutoAssign,
  tokenState,
  tokenUsableIn,
} from '../src/core/tokens.ts';

// L1 ─ L2 ─ L3 ─ L4, and a sibling S2 under L1
const groups = [
  { id: 'L1', parentId: null },
  { id: 'L2', parentId: 'L1' },
  { id: 'L3', parentId: 'L2' },
  { id: 'L4', parentId: 'L3' },
  { id: 'S2', parentId: 'L1' },
];
const token = { tokenId: 't1', registeredGroupId: 'L2', sharedGroupIds: ['L3'] };

describe('token sharing and auto-assign inheritance', () => {
  it('a token is usable where it is registered and where it is shared, nowhere else', () => {
    expect(['L1', 'L2', 'L3', 'L4', 'S2'].filter((g) => tokenUsableIn(token, g))).toEqual(['L2', 'L3']);
  });

  it('shares only to descendants, once, and only from the registered group', () => {
    expect(checkShare(groups, token, 'L4')).toBeNull();
    expect(checkShare(groups, token, 'S2')).toBe('share_not_descendant');
    expect(checkShare(groups, token, 'L1')).toBe('share_not_descendant');
    expect(checkShare(groups, token, 'L2')).toBe('share_self');
    expect(checkShare(groups, token, 'L3')).toBe('share_already');
    expect(checkShare(groups, token, 'L4', 'L3')).toBe('share_from_shared');
  });

  it('auto-assign is inherited by descendants and says from where', () => {
    const settings = new Map([['L2', 't1']]);
    expect(effectiveAutoAssign(groups, settings, 'L4')).toEqual({
      groupId: 'L4',
      tokenId: 't1',
      inheritedFrom: 'L2',
    });
    expect(effectiveAutoAssign(groups, settings, 'L2')).toEqual({
      groupId: 'L2',
      tokenId: 't1',
      inheritedFrom: null,
    });
    expect(effectiveAutoAssign(groups, settings, 'S2')).toEqual({
      groupId: 'S2',
      tokenId: null,
      inheritedFrom: null,
    });
    settings.set('L3', 't2');
    expect(effectiveAutoAssign(groups, settings, 'L4')).toEqual({
      groupId: 'L4',
      tokenId: 't2',
      inheritedFrom: 'L3',
    });
  });
});

describe('token state and expiry warnings', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const inDays = (d: number) => new Date(now.getTime() + d * 86_400_000);

  it('derives the state the console shows', () => {
    expect(tokenState({ expiresAt: inDays(200), claim: 'ours', appleState: null }, now)).toBe('active');
    expect(tokenState({ expiresAt: inDays(10), claim: 'ours', appleState: null }, now)).toBe('expiring');
    expect(tokenState({ expiresAt: inDays(-1), claim: 'ours', appleState: null }, now)).toBe('expired');
    expect(tokenState({ expiresAt: inDays(200), claim: 'other_mdm', appleState: null }, now)).toBe(
      'other_mdm',
    );
    expect(tokenState({ expiresAt: inDays(200), claim: 'legacy_unmigrated', appleState: null }, now)).toBe(
      'legacy_unmigrated',
    );
    expect(tokenState({ expiresAt: inDays(200), claim: 'ours', appleState: 'revoked' }, now)).toBe('revoked');
    expect(tokenState({ expiresAt: inDays(-5), claim: 'other_mdm', appleState: 'invalid' }, now)).toBe(
      'invalid',
    );
  });

  it('warns 30, 14, 7 and 1 days before, each once', () => {
    expect(dueExpiryWarning(inDays(45), null, now)).toBeNull();
    expect(dueExpiryWarning(inDays(29.5), null, now)).toBe(30);
    expect(dueExpiryWarning(inDays(29.5), 30, now)).toBeNull();
    expect(dueExpiryWarning(inDays(13), 30, now)).toBe(14);
    expect(dueExpiryWarning(inDays(6), 30, now)).toBe(7);
    expect(dueExpiryWarning(inDays(0.5), 7, now)).toBe(1);
    expect(dueExpiryWarning(inDays(0.5), 1, now)).toBeNull();
    expect(dueExpiryWarning(inDays(-1), null, now)).toBeNull();
  });
});
