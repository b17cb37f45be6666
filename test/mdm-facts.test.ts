// Device facts read as typed values in src/mdm/facts.ts (issue 14, item 3): the one place that knows
// Apple's field names in the stored DeviceInformation, InstalledApplicationList, UserList and
// ManagedApplicationList answers.
import { describe, expect, it } from 'vitest';
import {
  deviceInformation,
  installedApps,
  installedVersions,
  managedAppStatuses,
  users,
} from '../src/mdm/facts.ts';

describe('device facts', () => {
  it('InstalledApplicationList: ShortVersion before Version, Installing and DownloadWaiting, no identifier skipped', () => {
    const list = [
      { Identifier: 'jp.example.a', ShortVersion: '2.1', Version: '210', Name: 'A' },
      { Identifier: 'jp.example.b', Version: '77', Installing: true },
      { Identifier: 'jp.example.c', ShortVersion: ' ', DownloadWaiting: true, Installing: true },
      { Name: 'no identifier' },
      'not a dictionary',
    ];
    expect(installedApps(list)).toEqual([
      { bundleId: 'jp.example.a', version: '2.1', installing: false, downloadWaiting: false },
      { bundleId: 'jp.example.b', version: '77', installing: true, downloadWaiting: false },
      { bundleId: 'jp.example.c', version: null, installing: true, downloadWaiting: true },
    ]);
    expect(installedVersions(list).map((a) => a.installing)).toEqual([false, true, true]);
    expect(installedApps({ not: 'a list' })).toEqual([]);
  });

  it('DeviceInformation, UserList and ManagedApplicationList read as types; malformed reads as absent', () => {
    expect(
      deviceInformation({
        AvailableDeviceCapacity: 12.5,
        IsMultiUser: true,
        CellularTechnology: 0,
        OSVersion: '17.5',
      }),
    ).toEqual({ availableCapacityGb: 12.5, isMultiUser: true, cellularTechnology: 0 });
    expect(deviceInformation({ AvailableDeviceCapacity: '12.5' })).toEqual({
      availableCapacityGb: null,
      isMultiUser: null,
      cellularTechnology: null,
    });
    expect(users([{ UserName: 'student1', IsLoggedIn: true }, { UserName: 'student2' }])).toEqual([
      { userName: 'student1', loggedIn: true },
      { userName: 'student2', loggedIn: false },
    ]);
    expect(users(null)).toBeNull();
    expect([...managedAppStatuses({ 'jp.example.a': { Status: 'Managed' }, 'jp.example.b': 3 })]).toEqual([
      ['jp.example.a', 'Managed'],
      ['jp.example.b', null],
    ]);
  });
});
