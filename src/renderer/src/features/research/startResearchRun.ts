import type { InterventionRequestInput, SweepRequestInput } from '@shared/domain/research'
import { call } from '../../ipc/client'
import { announce, useAppStore } from '../../store'
import { startedRun, type RunView } from '../../store/slices/runsSlice'

/**
 * Runs an intervention or a layer sweep on the text, group and lens of a result on screen (its
 * options too, so Â is explained as that result's rows were) and shows it as the active result.
 * Throws the host's error (shown by the caller, naming the field).
 */
export async function startResearchRun(
  source: RunView,
  research:
    | { kind: 'intervene'; intervention: InterventionRequestInput }
    | { kind: 'sweep'; sweep: SweepRequestInput }
): Promise<void> {
  const s = source.summary
  const reply = await call('sessions:run', {
    kind: research.kind,
    groupId: s.groupId,
    lensId: s.lensId,
    input: s.input,
    options: s.options,
    ...(research.kind === 'intervene'
      ? { intervention: research.intervention }
      : { sweep: research.sweep }),
    name:
      research.kind === 'intervene'
        ? `Intervene @${research.intervention.positions.join(',')}: ${s.name}`.slice(0, 200)
        : `Sweep @${research.sweep.position}: ${s.name}`.slice(0, 200)
  })
  useAppStore.setState((st) => startedRun(st, reply.session, reply.jobId))
  announce(research.kind === 'intervene' ? 'Intervention started' : 'Layer sweep started')
}
