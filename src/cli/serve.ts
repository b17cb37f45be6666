import { consoleUrl } from '../api/console.ts';
import { createHaishin } from '../app/haishin.ts';
import type { Haishin } from '../app/haishin.ts';
import { systemClock } from '../core/clock.ts';
import { ConfigError, parseConfig } from '../core/config.ts';

/**
 * `haishin serve`: the production server, configured by HAISHIN_* variables only. Whatever cannot
 * work (no push certificate, a key that does not match, a database that does not open, a port in
 * use, an APNs host the configured CAs do not trust) stops it with one line naming the variable.
 */
export async function serve(env: NodeJS.ProcessEnv): Promise<void> {
  const config = parseConfig(env);
  const haishin = await createHaishin({
    config,
    clock: systemClock,
    logger: { level: env.HAISHIN_LOG_LEVEL ?? 'info' },
  });
  try {
    await checkApns(haishin);
    await haishin.listen();
  } catch (err) {
    await haishin.close();
    throw err;
  }
  const { push } = haishin;
  const root = await haishin.store.rootGroup();
  console.log(
    `haishin listening on ${config.tls ? 'https' : 'http'}://${config.listen.host}:${config.listen.port} (public URL ${config.publicUrl})`,
  );
  console.log(`push topic ${push.topic}, certificate valid until ${push.notAfter.toISOString()}`);
  if (config.enrollOpenGroups) {
    console.log(`enrollment link for the root group: ${config.publicUrl}/mdm/enroll?group=${root?.id}`);
    console.warn(
      'haishin: warning: HAISHIN_ENROLL_OPEN_GROUPS=true — anyone who knows a group id can enroll a device and obtain an identity signed by this server; use it in a lab only',
    );
  } else {
    // Enrollment needs a link with a secret (decision 0022); the secret is shown once, where it is made.
    console.log(
      `root group ${root?.id}: devices enroll with an enrollment link — haishin enrollment-links create --group ${root?.id} (or the console's group page)`,
    );
  }
  // A generated admin token is stored only hashed: this link is the one time it is shown.
  console.log(`admin console: ${consoleUrl(config.publicUrl, haishin.generatedAdminToken)}`);
  // After the start, so a configuration error stays the one line printed.
  if (!config.publicUrl.startsWith('https://')) {
    console.warn(
      config.tls
        ? `haishin: warning: HAISHIN_PUBLIC_URL=${config.publicUrl} is not https:// although haishin serves HTTPS (HAISHIN_TLS_CERT) — enrollment profiles carry this URL; make it https://<the name in the certificate>`
        : `haishin: warning: HAISHIN_PUBLIC_URL=${config.publicUrl} is not https:// — Apple devices enroll only with an MDM server URL over HTTPS with a trusted certificate (put haishin behind a TLS reverse proxy, or set HAISHIN_TLS_CERT/HAISHIN_TLS_KEY)`,
    );
  }
  const stop = async () => {
    await haishin.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/**
 * Connects to APNs once before serving: a CA that does not match the APNs host, or a push
 * certificate APNs refuses, would make every push fail. A network failure may pass, so it only warns.
 */
async function checkApns(haishin: Haishin): Promise<void> {
  const { url } = haishin.config.apns;
  const check = await haishin.apns.check();
  if (check.ok) return;
  switch (check.kind) {
    case 'untrusted_server':
      throw new ConfigError(
        `HAISHIN_APNS_CA: the APNs server at ${url} presents a certificate that is not trusted (${check.reason}); leave HAISHIN_APNS_CA unset for Apple's APNs, or give the CA that signed this server's certificate`,
      );
    case 'certificate_refused':
      throw new ConfigError(
        `HAISHIN_APNS_CERT: APNs at ${url} refused the push certificate for topic ${haishin.push.topic} (${check.reason}); it may be revoked or not an MDM push certificate — renew it in Apple's Push Certificates Portal`,
      );
    case 'network':
      console.warn(
        `haishin: warning: APNs at ${url} cannot be reached now (${check.reason}); pushes are retried, check HAISHIN_APNS_URL and the firewall if this lasts`,
      );
  }
}
