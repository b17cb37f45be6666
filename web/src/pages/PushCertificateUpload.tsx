import { useState } from 'react';
import { api, ApiError } from '../api.ts';
import type { Bilingual } from '../messages.ts';
import { ErrorLine, useT } from '../ui.tsx';

// This form's words, here rather than in messages.ts: they are used nowhere else.
const W = {
  title: { ja: '更新したプッシュ証明書に置き換える', en: 'Replace with a renewed push certificate' },
  help: {
    ja: 'Apple Push Certificates Portal で「更新（Renew）」した証明書をアップロードします。再起動は不要で、以後のプッシュは新しい証明書で送られます。',
    en: "Upload the certificate you renewed in Apple's Push Certificates Portal (Renew). No restart: pushes use it from now on.",
  },
  pem: { ja: 'PEM（証明書と秘密鍵）', en: 'PEM (certificate and private key)' },
  p12: { ja: '.p12（証明書と鍵を含むファイル）', en: '.p12 (certificate and key in one file)' },
  cert: { ja: '証明書（.pem）', en: 'Certificate (.pem)' },
  key: { ja: '秘密鍵（.pem / .key）', en: 'Private key (.pem / .key)' },
  file: { ja: '.p12 ファイル', en: '.p12 file' },
  password: { ja: 'パスワード', en: 'Password' },
  force: {
    ja: 'トピックが違っても置き換える（登録済みのすべての端末が応答しなくなり、登録し直しが必要です）',
    en: 'Replace even though the topic differs (every enrolled device stops answering and must enroll again)',
  },
  upload: { ja: 'アップロード', en: 'Upload' },
  done: {
    ja: 'プッシュ証明書を置き換えました。有効期限: {date}',
    en: 'Push certificate replaced. Valid until {date}',
  },
  doneTopic: {
    ja: 'プッシュ証明書を置き換えました。トピックが変わりました: すべての端末を登録し直してください。',
    en: 'Push certificate replaced. Its topic changed: every device must enroll again.',
  },
} satisfies Record<string, Bilingual>;

function base64(buffer: ArrayBuffer): string {
  let binary = '';
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** Upload of a renewed push certificate (PUT /push-certificate, decision 0022). */
export function PushCertificateUpload({ onReplaced }: { onReplaced: () => void }) {
  const { pick, lang } = useT();
  const [kind, setKind] = useState<'pem' | 'p12'>('pem');
  const [cert, setCert] = useState<File | null>(null);
  const [key, setKey] = useState<File | null>(null);
  const [p12, setP12] = useState<File | null>(null);
  const [password, setPassword] = useState('');
  const [force, setForce] = useState(false);
  const [topicRefused, setTopicRefused] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    setError(null);
    setDone('');
    setBusy(true);
    try {
      let body: Record<string, unknown>;
      if (kind === 'pem') {
        if (!cert || !key) return;
        body = { certPem: await cert.text(), keyPem: await key.text() };
      } else {
        if (!p12) return;
        body = { pkcs12: base64(await p12.arrayBuffer()), password };
      }
      if (force) body.force = true;
      const r = await api<{ notAfter: string; topicChanged: boolean }>('PUT', '/push-certificate', body);
      setDone(
        r.topicChanged
          ? pick(W.doneTopic)
          : pick(W.done).replace(
              '{date}',
              new Date(r.notAfter).toLocaleDateString(lang === 'ja' ? 'ja-JP' : 'en-GB'),
            ),
      );
      setTopicRefused(false);
      setForce(false);
      onReplaced();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'push_certificate.topic_changed') setTopicRefused(true);
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="push-upload" data-push-upload>
      <h3>{pick(W.title)}</h3>
      <p className="muted">{pick(W.help)}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <p>
          <label>
            <input type="radio" name="kind" checked={kind === 'pem'} onChange={() => setKind('pem')} />{' '}
            {pick(W.pem)}
          </label>{' '}
          <label>
            <input type="radio" name="kind" checked={kind === 'p12'} onChange={() => setKind('p12')} />{' '}
            {pick(W.p12)}
          </label>
        </p>
        {kind === 'pem' ? (
          <p>
            <label>
              {pick(W.cert)}{' '}
              <input
                type="file"
                name="cert"
                accept=".pem,.crt,.cer"
                onChange={(e) => setCert(e.target.files?.[0] ?? null)}
              />
            </label>{' '}
            <label>
              {pick(W.key)}{' '}
              <input
                type="file"
                name="key"
                accept=".pem,.key"
                onChange={(e) => setKey(e.target.files?.[0] ?? null)}
              />
            </label>
          </p>
        ) : (
          <p>
            <label>
              {pick(W.file)}{' '}
              <input
                type="file"
                name="p12"
                accept=".p12,.pfx"
                onChange={(e) => setP12(e.target.files?.[0] ?? null)}
              />
            </label>{' '}
            <label>
              {pick(W.password)}{' '}
              <input
                type="password"
                name="password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            </label>
          </p>
        )}
        {topicRefused && (
          <p className="warning">
            <label>
              <input
                type="checkbox"
                name="force"
                checked={force}
                onChange={(e) => setForce(e.target.checked)}
              />{' '}
              {pick(W.force)}
            </label>
          </p>
        )}
        <button type="submit" disabled={busy || (kind === 'pem' ? !cert || !key : !p12)}>
          {pick(W.upload)}
        </button>
      </form>
      <ErrorLine error={error} />
      {done && (
        <p className="note ok" data-push-replaced>
          {done}
        </p>
      )}
    </div>
  );
}
