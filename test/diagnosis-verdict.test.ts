import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tokenReachGap } from '../src/core/tokens.ts';
import {
  causeOfVppErrorKind,
  CAUSE_CODES,
  diagnose,
  diagnoseErrorText,
  parseErrorText,
  verdictOfReason,
} from '../src/diagnosis/index.ts';
import type { Evidence } from '../src/diagnosis/index.ts';
import { VPP_ERROR_KINDS } from '../src/apple/vpp/errors.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.resolve(repoRoot, '../shared/fixtures');
const NOW = new Date('2025-06-01T09:00:00Z');

describe("the engine's verdict is evidence", () => {
  it('every cause code the engine can give as a reason is confirmed, with the reason as evidence', () => {
    for (const code of CAUSE_CODES) {
      const causes = diagnose({ now: NOW, job: { status: 'license_failed', reason: code } });
      const found = causes.find((c) => c.code === code);
      expect(found, code).toMatchObject({ confidence: 'confirmed' });
      expect(found!.evidence).toContainEqual({ fact: 'job.reason', value: code, source: 'job' });
    }
  });

  it('manual mode without a licence: license.not_assigned first, never license.apple_refused alone', () => {
    const causes = diagnose({
      now: NOW,
      job: { status: 'license_failed', licenseMode: 'manual', reason: 'license.not_assigned' },
      licence: { assignmentState: null, availableCount: 10, neededCount: 1, lastVppError: null },
    });
    expect(causes[0]).toMatchObject({ code: 'license.not_assigned', confidence: 'confirmed' });
    expect(causes.map((c) => c.code)).not.toContain('license.apple_refused');
  });

  it('a root cause the evidence confirms too may come first, the verdict stays confirmed right behind', () => {
    const causes = diagnose({
      now: NOW,
      job: { status: 'license_failed', licenseMode: 'manual', reason: 'license.not_assigned' },
      token: { state: 'expired', expiresAt: new Date('2025-05-01T00:00:00Z') },
    });
    expect(causes.map((c) => [c.code, c.confidence])).toEqual([
      ['token.expired', 'confirmed'],
      ['license.not_assigned', 'confirmed'],
    ]);
  });

  it('reads the plainer reasons the engine gives, and leaves steps alone', () => {
    expect(verdictOfReason('device.deactivated')).toBe('device.unenrolled');
    expect(verdictOfReason('device has no serial number')).toBe('license.not_assigned');
    expect(verdictOfReason('license.asset_not_found')).toBe('license.insufficient');
    expect(verdictOfReason('token.not_found')).toBe('token.not_registered');
    expect(verdictOfReason('license refused')).toBe('license.apple_refused');
    expect(verdictOfReason('license token_revoked')).toBe('token.revoked');
    expect(verdictOfReason('license transient')).toBe('device.store_transient');
    // Apple's numbers are the VPP rule's to read; steps and timeouts are no verdict.
    for (const step of ['license 9709', 'NotNow', 'push timeout', 'request timeout', 'submitted', null])
      expect(verdictOfReason(step)).toBeNull();
  });

  it('every Apps and Books error kind names a cause; the token kinds name the token', () => {
    for (const kind of VPP_ERROR_KINDS) expect(CAUSE_CODES).toContain(causeOfVppErrorKind(kind));
    expect(causeOfVppErrorKind('token_revoked')).toBe('token.revoked');
    expect(causeOfVppErrorKind('token_invalid')).toBe('token.invalid');
    expect(causeOfVppErrorKind('token_expired')).toBe('token.expired');
  });

  it('a transient error not retried because of the deadline shows both moments', () => {
    const e: Evidence = {
      now: NOW,
      job: {
        status: 'device_error',
        reason: 'device.store_transient',
        errorChain: [{ code: 506, domain: 'ASDErrorDomain', description: 'Duplicate request' }],
        retryWouldMiss: {
          deadline: 'request',
          at: new Date('2025-06-01T10:00:00Z'),
          retryAt: new Date('2025-06-01T09:40:00Z'),
        },
      },
    };
    const [top] = diagnose(e);
    expect(top).toMatchObject({ code: 'device.store_transient', confidence: 'confirmed' });
    expect(top!.evidence.map((x) => x.fact)).toEqual(
      expect.arrayContaining(['job.reason', 'retry.wouldStartAt', 'job.requestDeadline', 'error_chain[0]']),
    );
  });
});

describe('registered vs shared', () => {
  //        root
  //      /  |   \
  //  board annex other
  //   /  \
  // east west
  const groups = [
    { id: 'root', parentId: null },
    { id: 'board', parentId: 'root' },
    { id: 'east', parentId: 'board' },
    { id: 'west', parentId: 'board' },
    { id: 'annex', parentId: 'root' },
    { id: 'other', parentId: 'root' },
  ];
  const boardToken = { tokenId: 'B', registeredGroupId: 'board', sharedGroupIds: ['east'] };
  const otherToken = { tokenId: 'O', registeredGroupId: 'other', sharedGroupIds: [] };
  const all = [boardToken, otherToken];

  it('nothing in the group or above: not_registered; a token above it: not_shared', () => {
    expect(tokenReachGap(groups, all, boardToken, 'east')).toBeNull();
    expect(tokenReachGap(groups, all, boardToken, 'board')).toBeNull();
    expect(tokenReachGap(groups, all, boardToken, 'west')).toBe('not_shared');
    // A token beside the group (a sibling school's) can never be shared to it.
    expect(tokenReachGap(groups, all, otherToken, 'annex')).toBe('not_registered');
    expect(tokenReachGap(groups, all, boardToken, 'annex')).toBe('not_registered');
    // West has the board's token above it: sharing that one is the fix, whichever token was used.
    expect(tokenReachGap(groups, all, otherToken, 'west')).toBe('not_shared');
  });

  it('the rule says the same from the evidence', () => {
    const base = (tokensWithinReach: number): Evidence => ({
      now: NOW,
      job: { status: 'license_failed' },
      token: { registeredGroupId: 'other', sharedToDeviceGroup: false },
      groups: { deviceGroupId: 'annex', tokenReachable: false, tokensUsableInGroup: 0, tokensWithinReach },
    });
    const none = diagnose(base(0));
    expect(none[0]).toMatchObject({ code: 'token.not_registered', confidence: 'confirmed' });
    const some = diagnose(base(1));
    expect(some[0]).toMatchObject({ code: 'token.not_shared', confidence: 'confirmed' });
    expect(some.map((c) => c.code)).not.toContain('token.not_registered');
  });
});

describe("explain an error: Apple's token errors", () => {
  it.each([
    ['{"errorNumber":9625,"errorMessage":"The server has revoked the sToken."}', 'token.revoked', 9625],
    ['{"errorNumber": 9621, "errorMessage": "The token has expired."}', 'token.expired', 9621],
    ['{"errorNumber":"9622","errorMessage":"Invalid authentication token"}', 'token.invalid', 9622],
    ['HTTP/1.1 401 Unauthorized\n{"errorNumber":9625,"errorMessage":"revoked"}', 'token.revoked', 9625],
    ['Apps and Books error 9625', 'token.revoked', 9625],
    ['VPPトークンのエラー 9621 が出ました', 'token.expired', 9621],
    ['9622', 'token.invalid', 9622],
    // Apple's messages alone, as a console shows them.
    ['The server has revoked the sToken.', 'token.revoked', 9625],
    ['Invalid authentication token', 'token.invalid', 9622],
    [
      "The token has expired. You need to generate a new token online using your organization's account at either school.apple.com or business.apple.com.",
      'token.expired',
      9621,
    ],
  ] as const)('%s → %s', (text, code, number) => {
    expect(parseErrorText(text).vppError?.errorNumber).toBe(number);
    const { chain, causes } = diagnoseErrorText(text, NOW);
    expect(chain).toEqual([]);
    expect(causes[0]).toMatchObject({ code, confidence: 'confirmed' });
  });

  it("Apple's HTTP 200 body for an invalid token (fixture) names token.invalid", () => {
    const body = fs.readFileSync(path.join(fixtures, 'vpp/v2-error-9622-invalid-token-http200.json'), 'utf8');
    expect(diagnoseErrorText(body, NOW).causes[0]).toMatchObject({
      code: 'token.invalid',
      confidence: 'confirmed',
    });
  });
});
