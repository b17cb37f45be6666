// Issue 14, item 3: command results parsed once, in src/mdm, into typed values.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPlist } from '../src/mdm/plist.ts';
import { parseCommandResult, parseStoredAnswer } from '../src/mdm/results.ts';

const fixtures = path.resolve(import.meta.dirname, '../../shared/fixtures/mdm');
const fixture = (name: string) => readFileSync(path.join(fixtures, name), 'utf8');

describe('typed command results', () => {
  it("reads a device's captured Error with its ErrorChain (nanocmd fixture)", () => {
    const parsed = parseStoredAnswer(fixture('nanocmd/resp-error.plist'))!;
    expect(parsed.result).toMatchObject({
      status: 'Error',
      commandUuid: 'D053EE3A-EE0E-4E82-87D2-BB3624186694',
      errorChain: [
        { code: -909, domain: 'NSOSStatusErrorDomain', description: ' <NSOSStatusErrorDomain:-909>' },
      ],
      rejectionReason: null,
      managedApps: null,
    });
    expect(parsed.report.UDID).toBe('6362F867-FFF2-4EA6-905C-3C796DF4EF68');
  });

  it('takes USEnglishDescription when LocalizedDescription is missing, and codes sent as strings', () => {
    const result = parseCommandResult({
      Status: 'Error',
      CommandUUID: 'C1',
      ErrorChain: [
        {
          ErrorCode: '12064',
          ErrorDomain: 'MCMDMErrorDomain',
          USEnglishDescription: 'The app could not be installed.',
        },
        { ErrorDomain: 'ASDErrorDomain' },
      ],
      RejectionReason: 'CouldNotVerifyAppID',
    })!;
    expect(result.errorChain).toEqual([
      { code: 12064, domain: 'MCMDMErrorDomain', description: 'The app could not be installed.' },
      { code: null, domain: 'ASDErrorDomain', description: null },
    ]);
    expect(result.rejectionReason).toBe('CouldNotVerifyAppID');
  });

  it("InstallApplication's Identifier and State, ManagedApplicationList's entries by bundle id", () => {
    expect(
      parseCommandResult({
        Status: 'Acknowledged',
        CommandUUID: 'C2',
        Identifier: 'jp.example.a',
        State: 'Queued',
      }),
    ).toMatchObject({ identifier: 'jp.example.a', state: 'Queued', managedApps: null });
    const list = parseCommandResult({
      Status: 'Acknowledged',
      CommandUUID: 'C3',
      ManagedApplicationList: {
        'jp.example.a': { Status: 'Managed', ExternalVersionIdentifier: 874_213_211, ManagementFlags: 1 },
        'jp.example.b': { Status: 'Installing' },
        'jp.example.c': 'not a dictionary',
      },
    })!;
    expect([...list.managedApps!]).toEqual([
      ['jp.example.a', { status: 'Managed', externalVersionId: 874_213_211 }],
      ['jp.example.b', { status: 'Installing', externalVersionId: null }],
      ['jp.example.c', { status: null, externalVersionId: null }],
    ]);
  });

  it('is null for what is not an answer to a command, and for stored bytes that are not a plist', () => {
    expect(parseCommandResult({ Status: 'Idle', CommandUUID: 'C4' })).toBeNull();
    expect(parseCommandResult({ Status: 'Acknowledged' })).toBeNull();
    expect(parseStoredAnswer('<plist><dict><key>Status</key>')).toBeNull();
    expect(parseStoredAnswer(buildPlist({ Status: 'NotNow', CommandUUID: 'C5' }))!.result.status).toBe(
      'NotNow',
    );
  });
});
