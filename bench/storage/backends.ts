/**
 * The storages the write-through bench runs against, each opened fresh and removed after:
 * LevelDB in a temporary folder, a table of the local MariaDB dropped after, DynamoDB on
 * dynalite started in this process, and MemoryStorage as the reference. Storage modules are
 * imported only when used, as an application would.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Storage } from '../../src/types.js'

/** The MariaDB/MySQL server, as the tests use it. */
const MYSQL_URL = process.env['MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test'

/** Storage names the bench knows. */
export const BACKENDS = ['level', 'mysql', 'dynamodb', 'memory'] as const
export type BackendName = (typeof BACKENDS)[number]

/** How the bench's tables name each backend. */
export const BACKEND_LABELS: Record<BackendName, string> = {
  level: 'LevelStorage (classic-level)',
  mysql: 'MySQLStorage (local MariaDB)',
  dynamodb: 'DynamoDBStorage (dynalite in-process)',
  memory: 'MemoryStorage (reference)',
}

/** An open storage and how to remove what it made. */
export interface OpenBackend {
  /** A fresh storage for each manager (a manager closes its storage). */
  storage: Storage
  /** Close the storage and delete its folder, table or server. */
  dispose(): Promise<void>
}

/** Open a fresh `name` storage; rejects when its server cannot be reached. */
export async function openBackend(name: BackendName): Promise<OpenBackend> {
  switch (name) {
    case 'memory': {
      const { MemoryStorage } = await import('../../storages/memory.js')
      const storage = new MemoryStorage({ max: 1_000_000 })
      return { storage, dispose: () => storage.close() }
    }
    case 'level': {
      const { LevelStorage } = await import('../../storages/level.js')
      const location = mkdtempSync(join(tmpdir(), 'csm-bench-level-'))
      const storage = new LevelStorage({ location, cleanupInterval: 0 })
      return {
        storage,
        dispose: async () => {
          await storage.close()
          rmSync(location, { recursive: true, force: true })
        },
      }
    }
    case 'mysql': {
      const { MySQLStorage } = await import('../../storages/mysql.js')
      const { createPool } = await import('mysql2/promise')
      const table = `csm_bench_${process.pid}_${Date.now().toString(36)}`
      const storage = new MySQLStorage({ uri: MYSQL_URL, table })
      // Fails here, clearly, when no server answers.
      await storage.length()
      return {
        storage,
        dispose: async () => {
          await storage.close()
          const admin = createPool({ uri: MYSQL_URL, connectionLimit: 1 })
          try {
            await admin.query(`DROP TABLE IF EXISTS \`${table}\``)
          } finally {
            await admin.end()
          }
        },
      }
    }
    case 'dynamodb': {
      const { DynamoDBStorage } = await import('../../storages/dynamodb.js')
      const { startDynalite } = await import('../../test/helpers/dynalite.js')
      const dynalite = await startDynalite()
      const storage = new DynamoDBStorage({ clientConfig: dynalite.clientConfig, table: `csm-bench-${process.pid}`, createTable: true })
      return {
        storage,
        dispose: async () => {
          await storage.close()
          await dynalite.close()
        },
      }
    }
  }
}
