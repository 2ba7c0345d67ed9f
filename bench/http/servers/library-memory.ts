/** node:http + this library on MemoryStorage with a signed CookieIdentity. */
import { MemoryStorage } from '../../../storages/memory.js'
import { serveLibrary } from './library.js'

serveLibrary({ storage: new MemoryStorage() })
