import { CookieIdentity } from '../identities/cookie.js'
import { MemoryStorage } from '../storages/memory.js'
import type { Identity, Storage } from './types.js'

// The one core module that imports plugins: the defaults a manager falls back on, and the
// plugins the package root re-exports.
export { MemoryStorage, type MemoryStorageOptions } from '../storages/memory.js'
export { CookieIdentity, type CookieIdentityOptions } from '../identities/cookie.js'
export { HeaderIdentity, type HeaderIdentityOptions } from '../identities/header.js'

let warnedMemoryStorage = false

/**
 * The storage of a manager given none: a {@link MemoryStorage}, with a warning once per process
 * (sessions are lost on restart and not shared between processes) unless `warn` is false (no
 * identity of the manager stores its sessions).
 * @internal
 */
export function defaultStorage(warn = true): Storage {
  if (warn) warnMemoryStorage()
  return new MemoryStorage()
}

/**
 * Warn, once per process, that sessions are kept in a default {@link MemoryStorage}.
 * @internal
 */
export function warnMemoryStorage(): void {
  if (warnedMemoryStorage) return
  warnedMemoryStorage = true
  process.emitWarning(
    'SessionManager has no storage option and uses MemoryStorage: sessions are lost on restart and not shared between processes. Do not use it in production.',
    { code: 'SESSION_MEMORY_STORAGE' },
  )
}

/**
 * The identity of a manager given none: an unsigned {@link CookieIdentity} named `sid`.
 * @internal
 */
export function defaultIdentity(): Identity {
  return new CookieIdentity()
}
