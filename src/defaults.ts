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
 * (sessions are lost on restart and not shared between processes).
 * @internal
 */
export function defaultStorage(): Storage {
  if (!warnedMemoryStorage) {
    warnedMemoryStorage = true
    process.emitWarning(
      'SessionManager has no storage option and uses MemoryStorage: sessions are lost on restart and not shared between processes. Do not use it in production.',
      { code: 'SESSION_MEMORY_STORAGE' },
    )
  }
  return new MemoryStorage()
}

/**
 * The identity of a manager given none: an unsigned {@link CookieIdentity} named `sid`.
 * @internal
 */
export function defaultIdentity(): Identity {
  return new CookieIdentity()
}
