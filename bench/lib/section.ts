/**
 * The child side of a bench section: run the work, send the result to the parent, exit. Kept
 * apart from `child.ts` so section children install no signal handlers of their own (the
 * parent kills them when it stops).
 */

/** What a section child sends back. */
export type SectionMessage<R> = { type: 'result'; result: R } | { type: 'error'; error: string }

/**
 * In a section child: run `work`, send its result (or its error) to the parent, and exit.
 * Outside a child (run directly), print the result instead.
 */
export function reportSection<R>(work: () => Promise<R>): void {
  const send = (message: SectionMessage<R>): Promise<void> =>
    new Promise((resolve) => {
      if (process.send === undefined) {
        console.log(JSON.stringify(message, null, 2))
        resolve()
      } else process.send(message, () => resolve())
    })
  void work()
    .then(
      (result) => send({ type: 'result', result }),
      (err: unknown) => send({ type: 'error', error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    )
    .then(() => process.exit(0))
}
