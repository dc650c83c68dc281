/**
 * Round-robin order between clients, pure. One client's burst of jobs does not push everybody
 * else back: each round takes one job from every waiting client, the client served longest ago
 * first. Within a client, jobs keep their submission order.
 */
export interface FairItem {
  id: string
  clientId: string
  /** Monotonic submission number. */
  seq: number
}

/**
 * @param lastServed when each client last had a job started (absent = never), any monotonic unit
 */
export function fairOrder<T extends FairItem>(
  items: readonly T[],
  lastServed: ReadonlyMap<string, number>
): T[] {
  const bySeq = [...items].sort((a, b) => a.seq - b.seq)
  // One client waiting (one window, one script): its jobs in submission order, which is what the
  // rounds below come to. The queue is ranked again at every start and end of a job.
  const first = bySeq[0]?.clientId
  if (bySeq.every((item) => item.clientId === first)) return bySeq
  const byClient = new Map<string, T[]>()
  for (const item of bySeq) {
    const list = byClient.get(item.clientId)
    if (list) list.push(item)
    else byClient.set(item.clientId, [item])
  }
  const clients = [...byClient.keys()].sort((a, b) => {
    const la = lastServed.get(a) ?? -Infinity
    const lb = lastServed.get(b) ?? -Infinity
    if (la !== lb) return la - lb
    return byClient.get(a)![0]!.seq - byClient.get(b)![0]!.seq
  })
  const out: T[] = []
  for (let round = 0; out.length < items.length; round++) {
    for (const c of clients) {
      const item = byClient.get(c)![round]
      if (item) out.push(item)
    }
  }
  return out
}

/**
 * Guided self-scheduling: the next share of a split job for one device. Big shares early (little
 * per-call overhead), small ones at the end (devices finish together). `minChunk` is one engine
 * batch: shares are whole batches (rounded up), because a share that ends in a partial batch runs
 * an extra, half-empty batch (and its KL pass) that a single-device run would not.
 */
export function nextChunkSize(remaining: number, devices: number, minChunk: number): number {
  if (remaining <= 0) return 0
  const batch = Math.max(1, minChunk)
  const guided = Math.ceil(remaining / (2 * Math.max(1, devices)))
  const whole = Math.ceil(guided / batch) * batch
  return Math.min(remaining, whole)
}
