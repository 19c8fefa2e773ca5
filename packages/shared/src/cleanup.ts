/**
 * Undo actions registered while acquiring resources, run in reverse order,
 * each at most once, collecting every failure instead of stopping at the first.
 */
export class CleanupStack {
  private readonly undos: Array<{ name: string; undo: () => unknown }> = []

  push(name: string, undo: () => unknown): void {
    this.undos.push({ name, undo })
  }

  /** Forget the registered undos: the acquisition succeeded and ownership moved on. */
  release(): void {
    this.undos.length = 0
  }

  async run(): Promise<Error[]> {
    const errors: Error[] = []
    for (let item = this.undos.pop(); item; item = this.undos.pop()) {
      try {
        await item.undo()
      } catch (err) {
        errors.push(new Error(`cleanup '${item.name}' failed: ${String(err)}`, { cause: err }))
      }
    }
    return errors
  }
}
