import type { SimDevice } from './device/device.ts';

/** Runs `work` over `items` with at most `limit` in flight — enough to enroll thousands without a stampede. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/**
 * Many simulated iPads in one process. A push for a device's token starts one command session;
 * pushes arriving during a session cause exactly one more session afterwards (like a real device,
 * which coalesces wake-ups).
 */
export class SimFleet {
  readonly devices: SimDevice[] = [];
  readonly #byToken = new Map<string, SimDevice>();
  readonly #running = new Map<SimDevice, Promise<void>>();
  readonly #again = new Set<SimDevice>();
  sessions = 0;
  sessionErrors = 0;

  add(device: SimDevice): SimDevice {
    this.devices.push(device);
    this.#byToken.set(device.pushToken.toString('hex'), device);
    return device;
  }

  byToken(tokenHex: string): SimDevice | undefined {
    return this.#byToken.get(tokenHex.toLowerCase());
  }

  async enrollAll(enrollUrlOf: (device: SimDevice, index: number) => string, concurrency = 8): Promise<void> {
    await mapLimit(this.devices, concurrency, (device, index) => device.enroll(enrollUrlOf(device, index)));
  }

  /** What APNs delivery does: wake the device that owns the token, if it is on. */
  wake(tokenHex: string): boolean {
    const device = this.byToken(tokenHex);
    if (!device || !device.online || !device.enrolled) return false;
    if (this.#running.has(device)) {
      this.#again.add(device);
      return true;
    }
    const run = async () => {
      do {
        this.#again.delete(device);
        this.sessions++;
        try {
          await device.connect();
        } catch {
          this.sessionErrors++;
        }
      } while (this.#again.has(device));
      this.#running.delete(device);
    };
    this.#running.set(device, run());
    return true;
  }

  /** Resolves when no session is running (bounded: sessions end when the server has nothing more). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running.values()]);
  }
}
