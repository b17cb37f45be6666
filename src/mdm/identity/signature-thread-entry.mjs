// Entry of a signature worker thread (src/mdm/identity/signature-threads.ts): haishin runs its
// TypeScript directly, and a worker starts without the loader its parent registered.
import { register } from 'tsx/esm/api';

register();
await import('./signature-thread.ts');
