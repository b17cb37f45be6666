import { createDeviceCa } from './identity/ca.ts';
import type { CertAndKey } from './identity/ca.ts';

export interface SettingsPort {
  getSetting(key: string): Promise<string | null>;
  setSettingIfAbsent(key: string, value: string, at: Date): Promise<string>;
}

/** Encryption at rest for the CA key, so a copied database alone does not let anyone mint device identities. */
export interface Sealer {
  seal(plaintext: string): string;
  open(sealed: string): string;
}

const CERT_KEY = 'device_ca.cert';
const SEALED_KEY_KEY = 'device_ca.key';
/**
 * After a rotation (decision 0023): the issuing CA as one value `{certPem, sealedKey}` — one write
 * switches certificate and key together — and the earlier CAs' certificates, which still verify
 * the identities they issued (their keys are not kept: they issue nothing any more).
 */
const CURRENT_KEY = 'device_ca.current';
const PREVIOUS_KEY = 'device_ca.previous';

/** The CA that issues device identities, and every CA whose identities are still accepted. */
export interface DeviceCaSet {
  issuing: CertAndKey;
  /** PEM certificates, the issuing CA first, then the earlier ones (newest first). */
  verifying: string[];
}

export interface RotatableSettings extends SettingsPort {
  putSetting(key: string, value: string, at: Date): Promise<void>;
}

/**
 * The device CA is created on first start and kept in the database (key sealed), so every
 * haishin process sharing the database verifies and issues with the same CA.
 */
export async function loadOrCreateDeviceCa(
  settings: SettingsPort,
  sealer: Sealer,
  now: Date,
): Promise<CertAndKey> {
  const rotated = await settings.getSetting(CURRENT_KEY);
  if (rotated !== null) {
    const { certPem, sealedKey } = JSON.parse(rotated) as { certPem: string; sealedKey: string };
    return { certPem, keyPem: sealer.open(sealedKey) };
  }
  const existingCert = await settings.getSetting(CERT_KEY);
  if (existingCert === null) {
    const fresh = createDeviceCa({ now });
    // The key goes in first: a reader that finds the certificate always finds its key.
    const sealedKey = await settings.setSettingIfAbsent(SEALED_KEY_KEY, sealer.seal(fresh.keyPem), now);
    const keyPem = sealer.open(sealedKey);
    if (keyPem === fresh.keyPem) {
      await settings.setSettingIfAbsent(CERT_KEY, fresh.certPem, now);
      return fresh;
    }
    // Another process won the race: use what it stored.
  }
  const certPem = await settings.getSetting(CERT_KEY);
  const sealedKey = await settings.getSetting(SEALED_KEY_KEY);
  if (certPem === null || sealedKey === null) throw new Error('the device CA in the database is incomplete');
  return { certPem, keyPem: sealer.open(sealedKey) };
}

/** The issuing CA (created on first start) and the CAs that still verify devices (decision 0023). */
export async function loadDeviceCaSet(
  settings: SettingsPort,
  sealer: Sealer,
  now: Date,
): Promise<DeviceCaSet> {
  const issuing = await loadOrCreateDeviceCa(settings, sealer, now);
  const previous = await previousCas(settings);
  const verifying = [issuing.certPem, ...previous.filter((pem) => !sameCert(pem, issuing.certPem))];
  return { issuing, verifying };
}

async function previousCas(settings: SettingsPort): Promise<string[]> {
  const stored = await settings.getSetting(PREVIOUS_KEY);
  if (stored === null) return [];
  const list = JSON.parse(stored) as unknown;
  return Array.isArray(list) ? list.filter((p): p is string => typeof p === 'string') : [];
}

const sameCert = (a: string, b: string): boolean => a.replace(/\s+/g, '') === b.replace(/\s+/g, '');

/**
 * `haishin ca rotate`: a new CA issues every identity from now on (new enrollments and renewals);
 * the current one joins the verifying CAs, so devices keep checking in with the identities it
 * issued, and renewal moves them over to the new CA within one identity lifetime. The processes
 * that serve load the CAs at start: restart them afterwards.
 */
export async function rotateDeviceCa(
  settings: RotatableSettings,
  sealer: Sealer,
  now: Date,
  opts: { commonName?: string; validYears?: number } = {},
): Promise<{ issuing: CertAndKey; verifying: string[] }> {
  const before = await loadDeviceCaSet(settings, sealer, now);
  const fresh = createDeviceCa({
    now,
    commonName: opts.commonName ?? `haishin device CA ${now.toISOString().slice(0, 10)}`,
    ...(opts.validYears !== undefined ? { validYears: opts.validYears } : {}),
  });
  // The old CA is listed as verifying before the new one issues: a crash in between leaves the old
  // CA issuing and listed twice, never a device whose CA is unknown.
  await settings.putSetting(PREVIOUS_KEY, JSON.stringify(before.verifying), now);
  await settings.putSetting(
    CURRENT_KEY,
    JSON.stringify({ certPem: fresh.certPem, sealedKey: sealer.seal(fresh.keyPem) }),
    now,
  );
  return { issuing: fresh, verifying: [fresh.certPem, ...before.verifying] };
}
