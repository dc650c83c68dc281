import type { ModelLibrary } from '@shared/domain/models'
import type { EndpointContext } from './endpoint'
import { fail } from './failures'

export interface LensRef {
  groupId: string
  lensId: string
}

/** `group/lens`, a lens id unique across groups, or a group id (its first lens). */
export async function resolveLens(ref: string, ctx: EndpointContext): Promise<LensRef> {
  const library: ModelLibrary = await ctx.call('models:list', undefined)
  const groups = library.groups.filter((g) => g.status === 'ok')
  const slash = ref.lastIndexOf('/')
  if (slash > 0) {
    const groupId = ref.slice(0, slash)
    const lensId = ref.slice(slash + 1)
    const group = groups.find((g) => g.groupId === groupId)
    if (group?.lenses.some((l) => l.id === lensId)) return { groupId, lensId }
  }
  const owners = groups.filter((g) => g.lenses.some((l) => l.id === ref))
  const [owner] = owners
  if (owner && owners.length === 1) return { groupId: owner.groupId, lensId: ref }
  if (owners.length > 1) {
    fail(
      'invalid_input',
      `lens id ${ref} is in several groups (${owners.map((g) => g.groupId).join(', ')}); name it group/lens`,
      'model_id'
    )
  }
  const group = groups.find((g) => g.groupId === ref)
  const first = group?.lenses[0]
  if (group && first) return { groupId: group.groupId, lensId: first.id }
  const known = groups.flatMap((g) => g.lenses.map((l) => `${g.groupId}/${l.id}`))
  fail('not_found', `no lens ${ref} (known: ${known.join(', ') || 'none'})`, 'model_id')
}
