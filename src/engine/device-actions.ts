import type { Clock } from '../core/clock.ts';
import { Refusal } from '../core/refusal.ts';
import { eraseDevice } from '../mdm/commands.ts';
import type { DeviceRow } from '../store/device-repo.ts';
import type { Store } from '../store/store.ts';
import type { Commander, PushWord } from './commander.ts';
import { newCommandUuid } from './commander.ts';
import type { DistributionEngine } from './engine.ts';
import { enqueueRefresh } from './refresh.ts';
import type { VppTokens } from './vpp-tokens.ts';

/**
 * What an administrator does to one device — refresh its facts, deactivate it, wipe it, remove an
 * app — as the engine does it: commands through the commander at the priority of their purpose,
 * licences reclaimed, and the device's unfinished jobs ended with the reason, so none waits six
 * days for a device that will not answer. The routes only translate HTTP.
 */
export class DeviceActions {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #tokens: VppTokens;
  readonly #engine: DistributionEngine;
  readonly #commander: Commander;

  constructor(o: {
    store: Store;
    clock: Clock;
    tokens: VppTokens;
    engine: DistributionEngine;
    commander: Commander;
  }) {
    this.#store = o.store;
    this.#clock = o.clock;
    this.#tokens = o.tokens;
    this.#engine = o.engine;
    this.#commander = o.commander;
  }

  /** DeviceInformation, Restrictions, InstalledApplicationList (UserList on a Shared iPad), then a push. */
  async refresh(
    deviceId: string,
  ): Promise<{ commands: { uuid: string; requestType: string }[]; push: PushWord }> {
    const device = await this.#mustGet(deviceId);
    // A query still pending from before is answered once for both: only the new ones are listed.
    const commands = await enqueueRefresh(this.#commander, device, this.#clock.now());
    const push = await this.#commander.pushOne(device.id);
    return { commands: commands.map((c) => ({ uuid: c.uuid, requestType: c.requestType })), push };
  }

  /** No further commands; its licences reclaimed; its unfinished jobs cancelled. */
  async deactivate(deviceId: string): Promise<{ reclaimedLicenses: number; cancelledJobs: number }> {
    const device = await this.#mustGet(deviceId);
    await this.#store.devices.deactivate(device.id, this.#clock.now());
    const cancelledJobs = await this.#engine.cancelDeviceJobs(device.id, 'device.deactivated');
    return { reclaimedLicenses: await this.#reclaim(device), cancelledJobs };
  }

  /** EraseDevice before anything else queued; every licence reclaimed; unfinished jobs cancelled. */
  async wipe(
    deviceId: string,
  ): Promise<{ commandUuid: string; push: PushWord; reclaimedLicenses: number; cancelledJobs: number }> {
    const device = await this.#mustGet(deviceId);
    if (device.status === 'deactivated') throw new Refusal(409, 'device.deactivated', { id: device.id });
    const command = eraseDevice(newCommandUuid());
    await this.#commander.queue(
      'action',
      [{ to: { deviceId: device.id, enrollmentId: device.udid }, commands: [command] }],
      this.#clock.now(),
    );
    const push = await this.#commander.pushOne(device.id);
    // The erased iPad installs nothing more: its jobs end now, with the reason.
    const cancelledJobs = await this.#engine.cancelDeviceJobs(device.id, 'device.wiped');
    return { commandUuid: command.uuid, push, reclaimedLicenses: await this.#reclaim(device), cancelledJobs };
  }

  /** RemoveApplication as an uninstall distribution of one job (see DistributionEngine.uninstallFromDevice). */
  uninstall(
    deviceId: string,
    adamId: string,
    by: string,
  ): Promise<{ distributionId: string; jobId: string }> {
    return this.#engine.uninstallFromDevice(deviceId, adamId, by);
  }

  async #reclaim(device: DeviceRow): Promise<number> {
    if (!device.serial_number) return 0;
    const changes = await this.#tokens.reclaimForSerial(device.serial_number);
    return changes.reduce((n, c) => n + c.serials.length, 0);
  }

  async #mustGet(id: string): Promise<DeviceRow> {
    const device = await this.#store.devices.get(id);
    if (!device) throw new Refusal(404, 'device.not_found', { id });
    return device;
  }
}
