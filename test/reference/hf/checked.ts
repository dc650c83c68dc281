/**
 * Bounds-checked element access for the reference implementation and its tests. A fixture or a
 * layer list shorter than the code expects is a bug in the reference, so it throws with a name
 * instead of letting `undefined` turn into NaN or a confusing comparison downstream.
 */
export function at<T>(items: ArrayLike<T>, index: number, what: string): T {
  if (!Number.isInteger(index) || index < 0 || index >= items.length) {
    throw new RangeError(`${what}: index ${index} is outside 0..${items.length - 1}`)
  }
  return items[index] as T
}

/** The last element, checked the same way. */
export function last<T>(items: ArrayLike<T>, what: string): T {
  return at(items, items.length - 1, what)
}

/** A record entry that must exist. */
export function entry<T>(record: Readonly<Record<string, T>>, key: string, what: string): T {
  if (!Object.hasOwn(record, key)) throw new RangeError(`${what}: no entry '${key}'`)
  return record[key] as T
}
