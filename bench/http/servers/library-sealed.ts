/** node:http + this library with the session sealed in the cookie (SealedCookieIdentity), no storage. */
import { SealedCookieIdentity } from '../../../identities/sealed-cookie.js'
import { SECRET } from './common.js'
import { serveLibrary } from './library.js'

serveLibrary({ identities: [new SealedCookieIdentity({ name: 'sid', keys: [SECRET], secure: false })] })
