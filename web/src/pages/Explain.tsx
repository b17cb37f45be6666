import { useState } from 'react';
import type { FormEvent } from 'react';
import { post } from '../api.ts';
import type { Explained } from '../api.ts';
import { CauseList, ChainTable, ErrorLine, useT } from '../ui.tsx';

/** POST /diagnose/error: an error pasted from anywhere, read into a chain and ranked causes. */
export function ExplainPage() {
  const { t } = useT();
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<Explained | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setResult(await post<Explained>('/diagnose/error', { text }));
    } catch (err) {
      setResult(null);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section>
      <h1>{t('explainTitle')}</h1>
      <p className="muted">{t('explainHelp')}</p>
      <form onSubmit={(e) => void submit(e)} className="explain">
        <textarea
          name="text"
          rows={8}
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="ErrorChain=ErrorCode[0]=12064, ErrorDomain[0]=MCMDMErrorDomain, …"
        />
        <button type="submit" disabled={busy}>
          {t('explain')}
        </button>
      </form>
      <ErrorLine error={error} />
      {result && (
        <>
          <h2>{t('parsedChain')}</h2>
          <ChainTable chain={result.chain} />
          <h2>{t('diagnosis')}</h2>
          <CauseList causes={result.causes} />
        </>
      )}
    </section>
  );
}
