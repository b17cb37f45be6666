import { useEffect, useRef, useState } from 'react';
import { API, authHeaders, qs } from './api.ts';

/** What GET /events sends (src/engine/events.ts); only the fields the console reads. */
export interface LiveEvent {
  type: string;
  jobId?: string;
  distributionId?: string;
  deviceId?: string;
  to?: string;
}

export type LiveMode = 'connecting' | 'live' | 'polling';

const POLL_MS = 5_000;
const RECONNECT_MS = 30_000;
const THROTTLE_MS = 1_000;

/**
 * Server-sent events over fetch, not EventSource: EventSource cannot send the bearer header.
 * When the stream cannot be opened or breaks (a proxy that buffers, an old server), the page
 * is refreshed every 5 s instead and the stream is tried again every 30 s.
 */
export function watchEvents(
  filter: { distributionId?: string | undefined; deviceId?: string | undefined },
  onEvent: (e: LiveEvent) => void,
  onMode: (m: LiveMode) => void,
): () => void {
  let stopped = false;
  let controller: AbortController | null = null;
  let poll: number | undefined;
  let reconnect: number | undefined;

  const fallback = () => {
    if (stopped) return;
    onMode('polling');
    if (poll === undefined) poll = window.setInterval(() => onEvent({ type: 'poll' }), POLL_MS);
    window.clearTimeout(reconnect);
    reconnect = window.setTimeout(() => void open(), RECONNECT_MS);
  };

  const open = async () => {
    if (stopped) return;
    controller = new AbortController();
    try {
      const response = await fetch(`${API}/events${qs(filter)}`, {
        headers: authHeaders('text/event-stream'),
        signal: controller.signal,
      });
      if (!response.ok || !response.body) return fallback();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) type = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (type === 'ready') {
            window.clearInterval(poll);
            poll = undefined;
            onMode('live');
            // Whatever changed while the stream was down.
            onEvent({ type: 'poll' });
            continue;
          }
          if (!data) continue;
          try {
            onEvent({ ...(JSON.parse(data) as LiveEvent), type });
          } catch {
            // a malformed event is skipped; the next refresh reads the truth over REST
          }
        }
      }
    } catch {
      // aborted by stop(), or the connection broke
    }
    fallback();
  };

  onMode('connecting');
  void open();
  return () => {
    stopped = true;
    controller?.abort();
    window.clearInterval(poll);
    window.clearTimeout(reconnect);
  };
}

/**
 * Calls `refresh` when a relevant event arrives (or on the polling tick), at most once a second:
 * a distribution of 100k jobs emits far more events than a page should reload for.
 */
export function useLive(
  filter: { distributionId?: string | undefined; deviceId?: string | undefined },
  relevant: (e: LiveEvent) => boolean,
  refresh: () => void,
): LiveMode {
  const [mode, setMode] = useState<LiveMode>('connecting');
  const latest = useRef({ relevant, refresh });
  latest.current = { relevant, refresh };
  useEffect(() => {
    let last = 0;
    let pending: number | undefined;
    const fire = () => {
      pending = undefined;
      last = Date.now();
      latest.current.refresh();
    };
    const stop = watchEvents(
      filter,
      (e) => {
        if (e.type !== 'poll' && e.type !== 'dropped' && !latest.current.relevant(e)) return;
        if (pending !== undefined) return;
        pending = window.setTimeout(fire, Math.max(0, THROTTLE_MS - (Date.now() - last)));
      },
      setMode,
    );
    return () => {
      stop();
      window.clearTimeout(pending);
    };
    // The filter's fields are its identity: a new object with the same ids must not reconnect.
  }, [filter.distributionId, filter.deviceId]);
  return mode;
}
