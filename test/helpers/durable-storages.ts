import type { ExecutionContext } from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Storage, StorageAdmin } from '../../src/types.js'
import { LevelStorage } from '../../storages/level.js'
import { MySQLStorage } from '../../storages/mysql.js'
import { dropTable, uniqueTable } from './mysql.js'
import { MYSQL_URL } from './services.js'

/** A storage a child process writes to and this process reopens afterwards. */
export interface DurableTarget {
  /** Environment for the fixture server (test/process/fixtures/session-server.ts). */
  readonly env: Record<string, string>
  /** Open the same storage anew, as a new process would. */
  reopen(): Promise<Storage & StorageAdmin>
}

/** A fresh LevelDB folder, removed when the test ends. */
export async function levelTarget(t: ExecutionContext): Promise<DurableTarget> {
  const location = await mkdtemp(join(tmpdir(), 'csm-durability-level-'))
  t.teardown(() => rm(location, { recursive: true, force: true }))
  return {
    env: { STORAGE: 'level', LEVEL_LOCATION: location },
    async reopen() {
      const storage = new LevelStorage({ location, cleanupInterval: 0 })
      await storage.open()
      return storage
    },
  }
}

/** A fresh MariaDB table, dropped when the test ends. */
export function mysqlTarget(t: ExecutionContext, prefix: string): DurableTarget {
  const table = uniqueTable(prefix)
  t.teardown(() => dropTable(table))
  return {
    env: { STORAGE: 'mysql', MYSQL_URI: MYSQL_URL, MYSQL_TABLE: table },
    reopen: async () => new MySQLStorage({ uri: MYSQL_URL, table }),
  }
}
