export { SessionManager, type LoadOptions, type RevokeSessionsOptions, type SessionManagerOptions, type SessionManagerStats } from './session-manager.js'
export type { PrincipalOption } from './principals.js'
export type { PrincipalSession } from './kit/contract.js'
export { Session, type SessionCallback, type UpdateCallback } from './session.js'
export type { CoherenceStats } from './coherence.js'
export { SessionError, isSessionError, type SessionErrorCode, type SessionErrorOptions } from './errors.js'
export { generateId, isValidId, ID_BYTES, ID_LENGTH } from './ids.js'
export { WriteQueue, type WriteQueueOptions, type WriteQueueStats } from './write-queue.js'
export { createNodeMiddleware, type NodeMiddleware, type NextFunction, type RequestWithSession, type ResponseWithSession } from './middleware/node.js'
export { createKoaMiddleware, type KoaMiddleware, type KoaContextLike } from './middleware/koa-middleware.js'
export type { AppSession, AppSessionData, AppSessionDataType } from './middleware/app-session.js'
export type {
  BatchOutcome,
  CarriedSession,
  Identity,
  OpenedSession,
  SessionCarrier,
  JsonValue,
  SessionData,
  SessionEvents,
  SessionRecord,
  SessionRecordInput,
  SessionRequest,
  SessionResponse,
  Storage,
  StorageOperation,
  WriteConflict,
} from './types.js'
export { MemoryStorage, type MemoryStorageOptions, CookieIdentity, type CookieIdentityOptions, HeaderIdentity, type HeaderIdentityOptions } from './defaults.js'
export type {
  BusOptions,
  Invalidation,
  InvalidationBus,
  InvalidationBusStats,
  InvalidationGap,
  InvalidationKind,
  InvalidationLag,
  InvalidationListener,
  InvalidationMessage,
} from './bus.js'
