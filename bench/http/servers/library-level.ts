/** node:http + this library on LevelStorage (a fresh database in a temporary folder, removed on exit). */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelStorage } from '../../../storages/level.js'
import { serveLibrary } from './library.js'

const location = mkdtempSync(join(tmpdir(), 'csm-bench-level-'))
const removeFolder = (): void => rmSync(location, { recursive: true, force: true })
process.once('exit', removeFolder)

serveLibrary({ storage: new LevelStorage({ location }) }, () => Promise.resolve(removeFolder()))
