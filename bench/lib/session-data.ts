/** Session contents for the memory and cache benches: realistic JSON of about 1 KB. */

/** Bytes of JSON {@link sessionJson} aims at. */
export const TARGET_BYTES = 1024

/**
 * The JSON text of session number `index`: a user, roles, preferences, a cart and a CSRF
 * token, ~1 KB, with values that differ per session (so no two sessions share strings).
 */
export function sessionJson(index: number): string {
  const data = {
    user: { id: index, name: `User Number ${index}`, email: `user${index}@example.com`, locale: 'en-GB', verified: true },
    roles: ['reader', 'writer', index % 7 === 0 ? 'admin' : 'member'],
    preferences: {
      theme: index % 2 === 0 ? 'dark' : 'light',
      pageSize: 25 + (index % 4),
      timezone: 'Europe/London',
      notifications: { email: true, push: false },
    },
    cart: Array.from({ length: 4 }, (_, item) => ({ sku: `SKU-${index}-${item}`, quantity: 1 + item, price: 9.99 + item, title: `Item ${item} for ${index}` })),
    csrf: `${index.toString(36).padStart(8, '0')}${'x'.repeat(35)}`,
    lastSeen: 1_700_000_000_000 + index,
  }
  const json = JSON.stringify(data)
  // Pad to ~1 KB with a note field whose length depends only on the rest.
  const padding = Math.max(0, TARGET_BYTES - json.length - 12)
  return `${json.slice(0, -1)},"note":"${'n'.repeat(padding)}"}`
}
