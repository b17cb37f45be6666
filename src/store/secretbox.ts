import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const VERSION = 'v1';

/**
 * Encrypts secrets at rest (device CA key, VPP sTokens) with AES-256-GCM under HAISHIN_SECRET_KEY.
 * The key text is hashed to 32 bytes so any sufficiently random string works.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(secretKey: string) {
    if (secretKey.length < 16) throw new Error('HAISHIN_SECRET_KEY must be at least 16 characters');
    this.#key = createHash('sha256').update(secretKey, 'utf8').digest();
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      VERSION,
      iv.toString('base64'),
      cipher.getAuthTag().toString('base64'),
      body.toString('base64'),
    ].join(':');
  }

  open(sealed: string): string {
    const [version, iv, tag, body] = sealed.split(':');
    if (version !== VERSION || !iv || !tag || body === undefined)
      throw new Error('sealed secret has an unknown format');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(
        'a stored secret cannot be decrypted: HAISHIN_SECRET_KEY is not the key it was sealed with',
      );
    }
  }
}
