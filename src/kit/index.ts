/**
 * The storage kit: what every storage of caching-session-manager shares, for the storages in
 * this package and for third-party backends (`caching-session-manager/kit`).
 *
 * - {@link AbstractStorage}: the base class. Its public methods check, validate, apply the
 *   clock and wrap failures; a backend implements a few protected hooks.
 * - The contract: {@link Storage} (what the manager calls), {@link StorageAdmin} (what
 *   operators call), {@link StorageCapabilities} (what a storage declares), records and
 *   operations.
 * - Records: {@link readRecord} / {@link parseRecord} turn a backend's raw fields into a
 *   {@link SessionRecord}; {@link checkOperation} validates a write. "No absolute deadline" is
 *   `undefined` in records, whatever a backend writes for it.
 * - Principals: {@link isPrincipal}, {@link principalSession} (what `findByPrincipal` lists of a
 *   record), for storages that index {@link SessionRecord.principal}.
 * - Liveness: {@link isLive} and {@link deadlineOf}, the one rule.
 * - Versions: {@link decideWrite} (the one rule of conditional writes: apply, `false` or
 *   `'conflict'`), {@link refusedWrite} (what a conditional statement that changed nothing
 *   means), {@link nextVersion} (what a data write makes the version; a touch keeps it).
 * - The value codec: {@link encodeValue}, {@link decodeValue}, {@link decodeData},
 *   {@link dataFromEntries}, {@link setOwn} (JSON text, `__proto__` as an own key, `-0` as 0).
 * - Batches: {@link Batch} (per-session failure and conflict propagation), {@link batchRounds} and
 *   {@link chunks} (bounded statements or requests).
 * - Errors: {@link storageClosed}, {@link storageError}, {@link storageFailure},
 *   {@link invalidRecord}, {@link invalidOperation}, {@link unsupported}: each a
 *   `SessionError` recognised by its `code`.
 * - Limits: {@link StorageLimits}, what a storage declares one record can hold (nesting, bytes,
 *   Unicode), and {@link valueLimits}, what the manager then applies to every value.
 * - Options: {@link clockOption} (the `now` option every storage accepts), the other checks, and
 *   {@link knownOptionsCheck} with {@link optionNames} (a misspelt option is refused, naming the
 *   nearest known one).
 * - {@link KeyedLock}: per-session exclusive sections for backends that read before they write.
 *
 * Retry policy: storages never retry. A failed operation rejects (or, in a batch, gets its
 * error as its outcome); the manager's write queue retries whole operations with backoff.
 *
 * Adding a backend is one file built on {@link AbstractStorage} plus one line in the storage
 * contract suite; see docs/implementing-a-storage.md.
 *
 * @example
 * ```ts
 * import { AbstractStorage, readRecord, decodeData, type StorageOperation } from 'caching-session-manager/kit'
 * ```
 *
 * @module
 */
export { AbstractStorage, type AbstractStorageOptions } from './abstract-storage.js'
export { Batch, batchRounds, chunks } from './batch.js'
export { MAX_DEPTH, isWellFormed, limitsOption, valueLimits, type StorageLimits, type ValueLimits } from './limits.js'
export { checkData } from '../values.js'
export { dataFromEntries, decodeData, decodeValue, encodeData, encodeValue, setOwn } from './codec.js'
export {
  MAX_ISSUER_LENGTH,
  MAX_PRINCIPAL_LENGTH,
  capabilitiesOf,
  hasAdmin,
  type BatchOutcome,
  type PrincipalChange,
  type PrincipalSession,
  type SessionRecord,
  type SessionRecordInput,
  type Storage,
  type StorageAdmin,
  type StorageCapabilities,
  type StorageOperation,
  type WriteConflict,
} from './contract.js'
export { hasCode, invalidOperation, invalidRecord, messageOf, storageClosed, storageError, storageFailure, toError, unsupported } from './errors.js'
export { deadlineOf, isLive, type Deadlines } from './liveness.js'
export { KeyedLock } from './locks.js'
export {
  booleanOption,
  clockOption,
  functionOption,
  knownOptionsCheck,
  nonNegativeNumberOption,
  optionNames,
  optionsObject,
  positiveIntegerOption,
  stringOption,
  type OptionNameSet,
} from './options.js'
export {
  checkOperation,
  checkRecordInput,
  isPlainObject,
  isPrincipal,
  normalizeOperation,
  parseRecord,
  principalSession,
  readRecord,
  type RawRecord,
} from './record.js'
export { decideWrite, nextVersion, refusedWrite, versionProblem, type LiveVersion, type WriteDecision } from './versions.js'
export { SessionError, isSessionError, type SessionErrorCode } from '../errors.js'
export type { JsonValue, SessionData } from '../types.js'
