import { SqliteDialect } from 'kysely';
import type { DatabaseConnection, Driver, QueryCompiler, TransactionSettings } from 'kysely';

/**
 * Kysely's SQLite dialect with the one connection handed from holder to waiter in order.
 *
 * Kysely's own SQLite driver guards its single connection with a mutex whose release wakes every
 * waiter at once; all but one go back to waiting. With a fleet's check-ins and the engine's
 * transactions queued behind one another that is quadratic: at 100,000 iPads the mutex's `lock`
 * was the costliest function of `serve`, with the promise churn and the young-generation garbage
 * it made on top (issue 15). Here a release hands the connection to the oldest waiter, and only it
 * is woken.
 */
export class FifoSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    return new FifoDriver(super.createDriver());
  }
}

class FifoDriver implements Driver {
  readonly #inner: Driver;
  #connection: DatabaseConnection | undefined;
  #held = false;
  /** Waiters in arrival order; `#head` is the next one (a queue without shifting the array). */
  #waiters: ((connection: DatabaseConnection) => void)[] = [];
  #head = 0;

  constructor(inner: Driver) {
    this.#inner = inner;
  }

  async init(): Promise<void> {
    await this.#inner.init();
    // Taken once from the inner driver and never given back: from here on this driver hands it out.
    this.#connection = await this.#inner.acquireConnection();
  }

  acquireConnection(): Promise<DatabaseConnection> {
    const connection = this.#connection;
    if (!connection) return Promise.reject(new Error('the SQLite driver is not initialised'));
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve(connection);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async releaseConnection(): Promise<void> {
    if (this.#head < this.#waiters.length) {
      const next = this.#waiters[this.#head]!;
      this.#waiters[this.#head++] = undefined as never;
      if (this.#head === this.#waiters.length) {
        this.#waiters = [];
        this.#head = 0;
      }
      // Still held: it passes straight to the waiter, nobody else can slip in between.
      next(this.#connection!);
      return;
    }
    this.#held = false;
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#inner.beginTransaction(connection, settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.rollbackTransaction(connection);
  }

  async savepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await this.#inner.savepoint?.(connection, name, compileQuery);
  }

  async rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await this.#inner.rollbackToSavepoint?.(connection, name, compileQuery);
  }

  async releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await this.#inner.releaseSavepoint?.(connection, name, compileQuery);
  }

  async destroy(): Promise<void> {
    if (this.#connection) await this.#inner.releaseConnection(this.#connection);
    await this.#inner.destroy();
  }
}
