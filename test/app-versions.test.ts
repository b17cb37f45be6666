// Issue 14, item 5 — the pure parts of app updates (decision 0018): version order, the installed
// list as versions, the inherited "keep apps up to date", the verdict on a Managed app, the rule.
import { describe, expect, it } from 'vitest';
import { compareAppVersions, effectiveKeepUpdated, isOlderVersion } from '../src/core/app-versions.ts';
import { installedVersions } from '../src/mdm/facts.ts';
import { diagnose } from '../src/diagnosis/index.ts';
import { updateNotAppliedRule } from '../src/diagnosis/rules/index.ts';
import { checkVersion } from '../src/engine/app-verify.ts';
import type { VersionFacts } from '../src/engine/app-verify.ts';

describe('compareAppVersions', () => {
  it.each([
    ['1.0', '1.1', -1],
    ['1.9', '1.10', -1],
    ['2.0', '2.0.0', 0],
    ['2', '2.0', 0],
    ['3.2.1', '3.2', 1],
    ['10.0', '9.9.9', 1],
    ['1.0b3', '1.0b10', -1],
    ['1.0', '1.0a', -1],
    [' 4.1 ', '4.1', 0],
  ] as const)('%s vs %s → %i', (a, b, sign) => {
    expect(Math.sign(compareAppVersions(a, b))).toBe(sign);
    expect(Math.sign(compareAppVersions(b, a))).toBe(-sign || 0);
  });

  it('isOlderVersion needs both versions', () => {
    expect(isOlderVersion('1.0', '1.1')).toBe(true);
    expect(isOlderVersion('1.1', '1.1')).toBe(false);
    expect(isOlderVersion(null, '1.1')).toBe(false);
    expect(isOlderVersion('1.0', undefined)).toBe(false);
  });
});

describe('installedVersions', () => {
  it('reads ShortVersion, else Version, and the download state; skips entries without an identifier', () => {
    expect(
      installedVersions([
        { Identifier: 'a', ShortVersion: '2.3', Version: '230' },
        { Identifier: 'b', Version: '17' },
        { Identifier: 'c', ShortVersion: '1.0', Installing: true },
        { Identifier: 'd', DownloadWaiting: true },
        { Name: 'no id', ShortVersion: '9' },
        'junk',
      ]),
    ).toEqual([
      { bundleId: 'a', version: '2.3', installing: false },
      { bundleId: 'b', version: '17', installing: false },
      { bundleId: 'c', version: '1.0', installing: true },
      { bundleId: 'd', version: null, installing: true },
    ]);
    expect(installedVersions(null)).toEqual([]);
    expect(installedVersions({ Identifier: 'x' })).toEqual([]);
  });
});

describe('effectiveKeepUpdated', () => {
  const groups = [
    { id: 'root', parentId: null },
    { id: 'board', parentId: 'root' },
    { id: 'school', parentId: 'board' },
    { id: 'exam', parentId: 'school' },
  ];
  it('is off when nothing is set', () => {
    expect(effectiveKeepUpdated(groups, new Map(), 'exam')).toEqual({ enabled: false, fromGroupId: null });
  });
  it('inherits the nearest setting, and an explicit off opts a subgroup out', () => {
    const settings = new Map([
      ['board', true],
      ['exam', false],
    ]);
    expect(effectiveKeepUpdated(groups, settings, 'school')).toEqual({ enabled: true, fromGroupId: 'board' });
    expect(effectiveKeepUpdated(groups, settings, 'exam')).toEqual({ enabled: false, fromGroupId: 'exam' });
    expect(effectiveKeepUpdated(groups, settings, 'root')).toEqual({ enabled: false, fromGroupId: null });
  });
});

describe('checkVersion: what a Managed app amounts to', () => {
  const facts = (fresh: boolean, version: string | null, installing = false): VersionFacts => ({
    fresh,
    apps: new Map([['jp.example.app', { bundleId: 'jp.example.app', version, installing }]]),
  });
  const job = (expected: string | null, isUpdate: 0 | 1) => ({
    bundle_id: 'jp.example.app',
    expected_version: expected,
    is_update: isUpdate,
  });

  it('without an expected version: a success as before, with the version when a fresh list has one', () => {
    expect(checkVersion(job(null, 0), null)).toEqual({ kind: 'success', installed: null });
    expect(checkVersion(job(null, 0), facts(true, '1.0'))).toEqual({ kind: 'success', installed: '1.0' });
    expect(checkVersion(job(null, 0), facts(false, '1.0'))).toEqual({ kind: 'success', installed: null });
  });
  it('asks for the installed list when none came after the check was asked for', () => {
    expect(checkVersion(job('1.1', 1), facts(false, '1.1'))).toEqual({ kind: 'ask' });
    expect(checkVersion(job('1.1', 0), null)).toEqual({ kind: 'ask' });
  });
  it('an update: the expected version or newer succeeds, an older one keeps verifying', () => {
    expect(checkVersion(job('1.1', 1), facts(true, '1.1'))).toEqual({ kind: 'success', installed: '1.1' });
    expect(checkVersion(job('1.1', 1), facts(true, '1.2'))).toEqual({ kind: 'success', installed: '1.2' });
    expect(checkVersion(job('1.1', 1), facts(true, '1.0'))).toEqual({ kind: 'older', installed: '1.0' });
    expect(checkVersion(job('1.1', 1), facts(true, '1.1', true))).toEqual({
      kind: 'older',
      installed: '1.1',
    });
  });
  it('a first install records what the App Store gave, older or not', () => {
    expect(checkVersion(job('1.1', 0), facts(true, '1.0'))).toEqual({ kind: 'success', installed: '1.0' });
  });
  it('no version reported for the app: nothing says it is old', () => {
    expect(checkVersion(job('1.1', 1), facts(true, null))).toEqual({ kind: 'success', installed: null });
    expect(checkVersion(job('1.1', 1), { fresh: true, apps: new Map() })).toEqual({
      kind: 'success',
      installed: null,
    });
  });
});

describe('app.update_not_applied', () => {
  const NOW = new Date('2026-12-01T09:00:00Z');
  it('is confirmed by an older version reported for an unfinished job, with both versions as evidence', () => {
    const hits = updateNotAppliedRule({
      now: NOW,
      job: {
        kind: 'install',
        status: 'session_timeout',
        isUpdate: true,
        expectedVersion: '5.0',
        installedVersion: '4.9',
      },
    });
    expect(hits).toHaveLength(1);
    expect(hits[0]!.confidence).toBe('confirmed');
    expect(hits[0]!.evidence.map((e) => [e.fact, e.value])).toEqual([
      ['job.expectedVersion', '5.0'],
      ['installedApp.version', '4.9'],
      ['job.isUpdate', true],
    ]);
  });
  it('says nothing for a success, an unknown version or one that is not older', () => {
    const base = { kind: 'install' as const, expectedVersion: '5.0' };
    expect(
      updateNotAppliedRule({ now: NOW, job: { ...base, status: 'success', installedVersion: '4.0' } }),
    ).toEqual([]);
    expect(updateNotAppliedRule({ now: NOW, job: { ...base, status: 'session_timeout' } })).toEqual([]);
    expect(
      updateNotAppliedRule({
        now: NOW,
        job: { ...base, status: 'session_timeout', installedVersion: '5.0.0' },
      }),
    ).toEqual([]);
  });
  it('a declined update (UpdateRejected) is the top cause of the device error', () => {
    const causes = diagnose({
      now: NOW,
      job: {
        kind: 'install',
        status: 'device_error',
        isUpdate: true,
        expectedVersion: '5.0',
        managedAppStatusesSeen: ['UpdateRejected'],
      },
    });
    expect(causes[0]).toMatchObject({ code: 'app.update_not_applied', confidence: 'confirmed' });
    expect(causes[0]!.title.ja.length).toBeGreaterThan(0);
    expect(causes[0]!.remedy.en).toContain('POST /api/v1/jobs/:id/retry');
  });
});
