import { parsePlistDict, PlistReal } from './plist.ts';
import type { PlistDict, PlistValue } from './plist.ts';

/**
 * Command results as typed values, parsed once from the device's plist (the raw bytes stay beside
 * them for evidence and support bundles). Field names of Apple's protocol live here and in the
 * command builders only: the engine reads these types, also for answers stored before a restart.
 */

/** One entry of an `ErrorChain` (Apple: ErrorCode integer, ErrorDomain, LocalizedDescription, USEnglishDescription). */
export interface ErrorChainItem {
  code: number | null;
  domain: string | null;
  description: string | null;
}

/** One app of a `ManagedApplicationList` answer. */
export interface ManagedAppEntry {
  /** `Managed`, `Installing`, `Failed`, `UserRejected`, … as the device says it. */
  status: string | null;
  /** The App Store's version identifier of the installed build (integer in Apple's schema). */
  externalVersionId: number | null;
}

export interface CommandResult {
  status: 'Acknowledged' | 'Error' | 'CommandFormatError' | 'NotNow';
  commandUuid: string;
  errorChain: ErrorChainItem[];
  /** InstallApplication's refusal before any install (e.g. `AppAlreadyInstalled`). */
  rejectionReason: string | null;
  /** InstallApplication's answer: the bundle identifier and the install's state (`Queued`, …). */
  identifier: string | null;
  state: string | null;
  /** ManagedApplicationList's answer, by bundle identifier; null for other commands. */
  managedApps: ReadonlyMap<string, ManagedAppEntry> | null;
}

const STATUSES = new Set<CommandResult['status']>(['Acknowledged', 'Error', 'CommandFormatError', 'NotNow']);

/** The typed result of a report whose Status is one of a command's answers; null otherwise. */
export function parseCommandResult(message: PlistDict): CommandResult | null {
  const status = message.Status;
  const commandUuid = message.CommandUUID;
  if (typeof status !== 'string' || !STATUSES.has(status as CommandResult['status'])) return null;
  if (typeof commandUuid !== 'string') return null;
  return {
    status: status as CommandResult['status'],
    commandUuid,
    errorChain: parseErrorChain(message.ErrorChain),
    rejectionReason: text(message.RejectionReason),
    identifier: text(message.Identifier),
    state: text(message.State),
    managedApps: parseManagedApps(message.ManagedApplicationList),
  };
}

/** An answer stored as received (before a restart), parsed again; null when it cannot be read. */
export function parseStoredAnswer(raw: string): { result: CommandResult; report: PlistDict } | null {
  let report: PlistDict;
  try {
    report = parsePlistDict(raw);
  } catch {
    return null;
  }
  const result = parseCommandResult(report);
  return result ? { result, report } : null;
}

export function parseErrorChain(value: PlistValue | undefined): ErrorChainItem[] {
  if (!Array.isArray(value)) return [];
  return value.map((item) => {
    const o = isDict(item) ? item : {};
    return {
      code: integer(o.ErrorCode),
      domain: text(o.ErrorDomain),
      description: text(o.LocalizedDescription) ?? text(o.USEnglishDescription),
    };
  });
}

function parseManagedApps(value: PlistValue | undefined): Map<string, ManagedAppEntry> | null {
  if (!isDict(value)) return null;
  const apps = new Map<string, ManagedAppEntry>();
  for (const [bundleId, entry] of Object.entries(value)) {
    const o = isDict(entry) ? entry : {};
    apps.set(bundleId, { status: text(o.Status), externalVersionId: integer(o.ExternalVersionIdentifier) });
  }
  return apps;
}

function isDict(value: PlistValue | undefined): value is PlistDict {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Date) &&
    !(value instanceof Uint8Array) &&
    !(value instanceof PlistReal)
  );
}

function text(value: PlistValue | undefined): string | null {
  return typeof value === 'string' ? value : null;
}

/** Devices send integers; some tools (and old iOS) send them as strings. */
function integer(value: PlistValue | undefined): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value);
  return null;
}
