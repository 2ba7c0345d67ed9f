import { SessionError } from './errors.js'
import type { PrincipalChange } from './kit/contract.js'
import type { JsonValue, SessionData, SessionRecord, SessionRecordInput, WriteConflict } from './types.js'

// The pending writes of one session, as the write queue keeps them: how a new write folds into
// the ones not sent yet, and how they are rebased on a record another process wrote.

/**
 * How an `update` was computed from the key's previous value: run again on the fresh value
 * when the write meets a newer version written elsewhere. May throw to give the write up.
 */
export type Derive = (current: JsonValue | undefined) => JsonValue

/** A write as the queue holds it: its fields change as later writes fold into it. */
export type MutableOperation =
  | { type: 'set'; id: string; record: SessionRecordInput; ifVersion?: number | undefined }
  | { type: 'update'; id: string; key: string; value: JsonValue; expiresAt: number; ifVersion?: number | undefined; principal?: PrincipalChange }
  | { type: 'remove'; id: string; key: string; expiresAt: number; ifVersion?: number | undefined; principal?: PrincipalChange }
  /** A delete is conditional only when its caller made it so (`ifVersion`); it then settles as `'conflict'` rather than being rebased. */
  | { type: 'delete'; id: string; ifVersion?: number | undefined }
  | { type: 'touch'; id: string; expiresAt: number }

export interface Waiter {
  resolve(applied: boolean | WriteConflict): void
  reject(error: Error): void
}

export interface Entry {
  op: MutableOperation
  waiters: Waiter[]
  attempts: number
  /** Rebases after conflicts. */
  conflicts: number
  /** For an update: how its value was computed, run again on a rebase. */
  derive: Derive | undefined
  /** The version it was last sent against; `undefined` when sent unconditionally. */
  sentVersion: number | undefined
}

/** A new pending write. */
export function newEntry(op: MutableOperation, waiters: Waiter[], derive: Derive | undefined): Entry {
  return { op, waiters, attempts: 0, conflicts: 0, derive, sentVersion: undefined }
}

/** What `entry` made of its key, as a function of the key's value before it. */
export function priorOf(entry: Entry): Derive | ((current: JsonValue | undefined) => JsonValue | undefined) {
  const op = entry.op
  if (op.type === 'update') {
    const value = op.value
    return entry.derive ?? (() => value)
  }
  return () => undefined
}

export function asMissing(waiter: Waiter): Waiter {
  return { resolve: () => waiter.resolve(false), reject: (error) => waiter.reject(error) }
}

/**
 * Fold `incoming` into the not-yet-sent writes `queued` of one session and return the list to
 * keep. The list stays canonical: at most a whole-record set or a delete first, then at most
 * one write per key, so folding a newer write of a key always replaces the older one.
 */
export function fold(queued: Entry[], incoming: Entry): Entry[] {
  const { op, waiters } = incoming
  if (queued.length === 0) return [incoming]
  if (op.type === 'set' || op.type === 'delete') {
    // A whole-record write or a delete decides the final state alone. Writes a delete
    // absorbs settle as "no live record": their data was never kept.
    const absorbed = queued.flatMap((entry) => entry.waiters)
    return [newEntry(op, (op.type === 'delete' ? absorbed.map(asMissing) : absorbed).concat(waiters), undefined)]
  }
  const head = queued[0]!
  if (head.op.type === 'set' && op.type !== 'touch') {
    const data = { ...head.op.record.data }
    // defineProperty, not assignment: `data['__proto__'] = v` would set the prototype and drop the key.
    if (op.type === 'update') Object.defineProperty(data, op.key, { value: op.value, enumerable: true, writable: true, configurable: true })
    else delete data[op.key]
    head.op.record = withPrincipal({ ...head.op.record, data, expiresAt: op.expiresAt }, op.principal)
    head.waiters.push(...waiters)
    return queued
  }
  for (const entry of queued) {
    const queuedOp = entry.op
    if (op.type === 'touch') {
      if (queuedOp.type === 'delete') continue
      if (queuedOp.type === 'set') queuedOp.record = { ...queuedOp.record, expiresAt: Math.max(queuedOp.record.expiresAt, op.expiresAt) }
      else queuedOp.expiresAt = Math.max(queuedOp.expiresAt, op.expiresAt)
      entry.waiters.push(...waiters)
      return queued
    }
    if ((queuedOp.type === 'update' || queuedOp.type === 'remove') && queuedOp.key === op.key) {
      // Same key: the later write decides. Keep the entry's place; the other keys are independent.
      // A derived value is derived from what the earlier write made of the key.
      if (op.type === 'update' && incoming.derive !== undefined) {
        const derive = incoming.derive
        const before = priorOf(entry)
        entry.derive = (current) => derive(before(current))
      } else {
        entry.derive = undefined
      }
      // The principal is the session's after the newest write: the earlier write of the key may
      // have carried a change this one does not repeat, and later entries of other keys carry
      // what the principal was before this write.
      const principal = op.principal !== undefined ? op.principal : queuedOp.principal
      if (op.principal !== undefined) clearPrincipalAfter(queued, entry)
      entry.op = principal === undefined ? op : { ...op, principal }
      entry.waiters.push(...waiters)
      entry.conflicts = Math.max(entry.conflicts, incoming.conflicts)
      return queued
    }
  }
  queued.push(incoming)
  return queued
}

/** `record` with the principal `change` leaves it (unchanged when `undefined`). */
function withPrincipal(record: SessionRecordInput, change: PrincipalChange): SessionRecordInput {
  if (change === undefined) return record
  const { principal: _old, ...rest } = record
  return change === null ? rest : { ...rest, principal: change }
}

/** The key changes queued after `entry` no longer change the principal: a newer write decided it. */
function clearPrincipalAfter(queued: Entry[], entry: Entry): void {
  for (const later of queued.slice(queued.indexOf(entry) + 1)) {
    const op = later.op
    if ((op.type === 'update' || op.type === 'remove') && op.principal !== undefined) {
      const { principal: _dropped, ...rest } = op
      later.op = rest
    }
  }
}

/**
 * Make the rebased key writes `kept` leave the record indexed under `wanted`: the fresh record
 * has `stored`; when it and the principal changes of `kept` would leave another one, the last
 * key write carries `wanted` (`null` for none).
 */
export function rebasePrincipal(kept: Entry[], stored: string | undefined, wanted: string | undefined): void {
  let after = stored
  let last: Entry | undefined
  for (const entry of kept) {
    const op = entry.op
    if (op.type !== 'update' && op.type !== 'remove') continue
    last = entry
    if (op.principal !== undefined) after = op.principal ?? undefined
  }
  if (last === undefined || after === wanted) return
  const op = last.op as Extract<MutableOperation, { type: 'update' | 'remove' }>
  last.op = { ...op, principal: wanted ?? null }
}

/** What {@link rederive} made of the pending writes. */
export interface Rebased {
  /** The writes to send again, their derived values run again on the fresh record. */
  readonly kept: Entry[]
  /** Writes whose update function threw on the fresh value, with its error. */
  readonly refused: Array<[Entry, Error]>
  /** The fresh record's data with the kept writes applied (what the cache should show), or `undefined` when a whole-record write or a delete is pending. */
  readonly data: SessionData | undefined
}

/** Run the derived updates of `queued` again on `record`'s data. */
export function rederive(queued: Entry[], record: SessionRecord): Rebased {
  const data: Record<string, JsonValue> = { ...record.data }
  const kept: Entry[] = []
  const refused: Array<[Entry, Error]> = []
  let whole = false
  for (const entry of queued) {
    const op = entry.op
    if (op.type === 'update') {
      if (entry.derive !== undefined) {
        try {
          op.value = entry.derive(Object.hasOwn(data, op.key) ? data[op.key] : undefined)
        } catch (err) {
          // The function's own error, as a direct call would have thrown it.
          refused.push([
            entry,
            err instanceof Error ? err : new SessionError('SESSION_INVALID_VALUE', `an update function threw ${String(err)}`, { cause: err }),
          ])
          continue
        }
      }
      Object.defineProperty(data, op.key, { value: op.value, enumerable: true, writable: true, configurable: true })
    } else if (op.type === 'remove') {
      delete data[op.key]
    } else if (op.type !== 'touch') {
      whole = true
    }
    kept.push(entry)
  }
  return { kept, refused, data: whole ? undefined : data }
}
