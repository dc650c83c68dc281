/**
 * `talkative import lens CKPT --into DIR`: a predecessor training checkpoint becomes a lens of an
 * existing group (docs/lens-checkpoints.md "Importing a lens into a group"). Steps: choose the file (a folder → its newest
 * readable `*.pt`), read it without executing anything while checking its base against the group's
 * before any tensor is read, decide where its activations come from (the base, a donor already in
 * the group, or `--orig DIR` imported as a new donor), convert, stage, validate the whole group with
 * the engine, then rename into place. Any failure leaves the group as it was.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import type { ImportedLens } from '@shared/domain/imports'
import { openBundle, type LensProvenance, type ModelRef, writeLensFolder } from '../../engine'
import { CheckpointError, throwIfAborted } from '../errors'
import { findCheckpoint, readLensCheckpoint, type LensCheckpoint } from '../torch'
import { checkLensBase, checkPromptIds, sameModelName, type GroupBase } from './base'
import { convertLens, decideDecoder, needsSlotPositionRow } from './convert'
import { openDonorSource, writeDonor, type DonorSource } from './donor'
import {
  groupBase,
  readGroupFolder,
  refuseExisting,
  stagingFolder,
  withGroupLock,
  writeManifest,
  type GroupFolder
} from './group'
import { readLearnedPositionRow } from './positions'

export interface ImportLensOptions {
  /** A `*.pt` file, or a folder (its newest readable `*.pt`). */
  checkpoint: string
  /** The group folder (holding manifest.json) the lens joins. */
  group: string
  /** Lens id (default: from the training run's folder and layer). */
  id?: string
  /** Display name (default: from the id, layer and step). */
  name?: string
  /** The model to read activations from: a Hugging Face folder or a PEFT adapter folder. */
  orig?: string
  /** With an adapter as `orig`: the folder of the model it was trained on. */
  origBase?: string
  signal?: AbortSignal
  onProgress?: (progress: ImportLensProgress) => void
  /** For tests: the import time recorded in the provenance. */
  now?: () => Date
}

export type ImportLensStage = 'find' | 'read' | 'donor' | 'write' | 'validate'

export interface ImportLensProgress {
  stage: ImportLensStage
  /** Work done and total in this stage's unit (bytes for `read`, weights for `donor`), when known. */
  done?: number
  total?: number
  message: string
}

export interface ImportLensResult {
  lensId: string
  /** The lens's display name. */
  name: string
  /** The lens folder, relative to the group. */
  lensDir: string
  /** The checkpoint file read. */
  checkpoint: string
  /** Which file a folder gave, and what was skipped (null for a file). */
  choiceNote: string | null
  /** The model the lens reads activations from: `base` or a donor id. */
  orig: string
  /** A donor written by this import. */
  donor: ModelRef | null
  provenance: LensProvenance
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/

/** A lens id from the training run (the checkpoint's folder, or the file's stem) and the layer. */
export function defaultLensId(checkpointFile: string, layer: number): string {
  const stem = path.basename(checkpointFile, '.pt')
  const parent = path.basename(path.dirname(checkpointFile))
  const run = /^(checkpoints?|ckpts?)$/i.test(parent) || parent === '' ? stem : parent
  const cleaned = run
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 70)
  return `${cleaned || 'lens'}-l${layer}`.slice(0, 80)
}

function toDonorId(name: string): string {
  const last = name.split(/[\\/]/).filter(Boolean).pop() ?? 'donor'
  const cleaned = last.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '')
  return (cleaned || 'donor').slice(0, 80)
}

/** Where the lens's activations come from, given what the checkpoint says and what the group has. */
export function chooseOrig(
  checkpoint: Pick<LensCheckpoint, 'file' | 'config'>,
  group: GroupFolder,
  hasOrigOption: boolean
): { kind: 'base' } | { kind: 'donor'; id: string } | { kind: 'import' } {
  if (hasOrigOption) return { kind: 'import' }
  const { config } = checkpoint
  const wanted = config.origModelName ?? config.differentActivationsOrig
  if (wanted === null || sameModelName(wanted, config.modelName)) return { kind: 'base' }
  const donor = group.manifest.donors.find((d) => d.name && sameModelName(d.name, wanted))
  if (donor) return { kind: 'donor', id: donor.id }
  const field =
    config.origModelName !== null ? 'config.orig_model_name' : 'config.different_activations_orig'
  throw CheckpointError.at(
    'donor_required',
    checkpoint.file,
    field,
    `the lens was trained on activations of ${wanted}, not of its base ${config.modelName}, and group ` +
      `"${group.manifest.group.id}" has no such donor: pass --orig DIR with that model's Hugging Face ` +
      'folder, or a PEFT adapter folder (with --orig-base DIR, the folder of the model it adapts)'
  )
}

export async function importLens(options: ImportLensOptions): Promise<ImportLensResult> {
  const { signal } = options
  const report = (p: ImportLensProgress): void => options.onProgress?.(p)
  const group = await readGroupFolder(options.group)
  return withGroupLock(group.dir, async () => {
    // Read again under the lock: another import may have finished meanwhile.
    const locked = await readGroupFolder(group.dir)
    const base = groupBase(locked)

    report({ stage: 'find', message: `looking for the checkpoint in ${options.checkpoint}` })
    const found = await findCheckpoint(options.checkpoint, { signal })
    const checkpoint = await readLensCheckpoint(found.path, {
      signal,
      base: { hiddenSize: base.hiddenSize, layers: base.layers },
      check: (planned) => {
        checkLensBase(planned, base)
        // Refusals that depend only on the config and the base's family, before reading tensors.
        decideDecoder(planned.config, base, planned.file)
        chooseOrig({ file: planned.file, config: planned.config }, locked, !!options.orig)
      },
      onProgress: (p) =>
        report({
          stage: 'read',
          done: p.bytesRead,
          total: p.bytesTotal,
          message: p.key ? `reading ${p.key}` : `reading ${path.basename(found.path)}`
        })
    })
    return addUnderLock(locked, checkpoint, found.note, options)
  })
}

/**
 * Adds an already-read checkpoint to a group (what `importLens` does after reading; tests build
 * checkpoints in memory and call this).
 */
export async function addLensCheckpoint(
  groupDir: string,
  checkpoint: LensCheckpoint,
  options: Omit<ImportLensOptions, 'checkpoint' | 'group'> = {}
): Promise<ImportLensResult> {
  const group = await readGroupFolder(groupDir)
  return withGroupLock(group.dir, async () => {
    const locked = await readGroupFolder(group.dir)
    const base = groupBase(locked)
    checkLensBase(
      {
        file: checkpoint.file,
        config: checkpoint.config,
        hiddenSize: checkpoint.hiddenSize,
        layers: checkpoint.layers
      },
      base
    )
    return addUnderLock(locked, checkpoint, null, options)
  })
}

async function addUnderLock(
  locked: GroupFolder,
  checkpoint: LensCheckpoint,
  choiceNote: string | null,
  options: Omit<ImportLensOptions, 'checkpoint' | 'group'>
): Promise<ImportLensResult> {
  const { signal } = options
  const report = (p: ImportLensProgress): void => options.onProgress?.(p)
  const base = groupBase(locked)
  checkPromptIds(checkpoint.file, checkpoint.decoder.promptIds, checkpoint.config, base)
  throwIfAborted(signal, checkpoint.file)

  const id = options.id ?? defaultLensId(checkpoint.file, checkpoint.config.layer)
  if (!ID_PATTERN.test(id)) {
    throw new CheckpointError(
      'invalid',
      `--id ${JSON.stringify(id)}: letters, digits, . _ - (at most 80), starting with a letter or digit`,
      { file: checkpoint.file, field: '--id' }
    )
  }
  const lensDir = `lenses/${id}`
  await refuseExisting(locked.dir, lensDir, `lens folder ${lensDir}`)

  const choice = chooseOrig(checkpoint, locked, !!options.orig)
  let donorSource: DonorSource | null = null
  let donorId: string | null = null
  if (options.orig) {
    donorSource = await openDonorSource(options.orig, {
      adapterBase: options.origBase,
      signal
    })
    donorId = toDonorId(donorSource.name)
    const taken = new Set([locked.manifest.base.id, ...locked.manifest.donors.map((d) => d.id)])
    for (let i = 2; taken.has(donorId); i++)
      donorId = `${toDonorId(donorSource.name).slice(0, 76)}-${i}`
    await refuseExisting(locked.dir, `${donorId}.onnx`, `model file ${donorId}.onnx`)
  }
  const orig = choice.kind === 'donor' ? choice.id : (donorId ?? 'base')

  const decision = decideDecoder(checkpoint.config, base, checkpoint.file)
  const slotPositionRow = needsSlotPositionRow(decision)
    ? await readLearnedPositionRow(locked.dir, locked.manifest.base, checkpoint.decoder.embedPos)
    : undefined
  const name =
    options.name ??
    `${id} (L${checkpoint.config.layer}, T ${checkpoint.config.explanationTokens}${checkpoint.step !== null ? `, step ${checkpoint.step}` : ''})`
  const converted = convertLens(checkpoint, base, { id, name, orig, slotPositionRow })
  const notes = [...converted.notes]
  if (donorSource) {
    const wanted = checkpoint.config.origModelName
    if (wanted && !sameModelName(wanted, donorSource.name)) {
      notes.push(
        `activations come from ${donorSource.name} (--orig); the lens was trained on ${wanted}`
      )
    }
  }
  if (base.name === null) {
    notes.push(
      `the group's base has no recorded name, so model_name ${checkpoint.config.modelName} was checked by shape only`
    )
  }
  const provenance = provenanceOf(checkpoint, notes, (options.now ?? (() => new Date()))())

  const staging = await stagingFolder(locked.dir)
  const moved: string[] = []
  const manifestBefore = await fs.readFile(path.join(locked.dir, 'manifest.json'))
  try {
    let donor: ModelRef | null = null
    if (donorSource && donorId) {
      report({ stage: 'donor', message: `writing donor ${donorId} from ${donorSource.name}` })
      donor = await writeDonor(
        donorSource,
        staging,
        { id: donorId, name: donorSource.name },
        base,
        {
          signal,
          onProgress: (p) =>
            report({
              stage: 'donor',
              done: p.weightsDone,
              total: p.weightsTotal,
              message: `donor ${donorId}: weight ${p.weightsDone} of ${p.weightsTotal}`
            })
        }
      )
    }
    throwIfAborted(signal, checkpoint.file)
    report({ stage: 'write', message: `writing ${lensDir}` })
    await writeLensFolder(path.join(staging, 'lens'), base.hiddenSize, {
      ...converted.spec,
      provenance
    })

    // Into place: donor files, the lens folder, then the manifest (by rename).
    if (donor) {
      for (const f of [donor.file, `${donor.file}.data`]) {
        await fs.rename(path.join(staging, f), path.join(locked.dir, f))
        moved.push(f)
      }
    }
    await fs.mkdir(path.join(locked.dir, 'lenses'), { recursive: true })
    await fs.rename(path.join(staging, 'lens'), path.join(locked.dir, lensDir))
    moved.push(lensDir)
    const raw = structuredClone(locked.raw)
    raw.lenses = [...((raw.lenses as unknown[] | undefined) ?? []), lensDir]
    if (donor) raw.donors = [...((raw.donors as unknown[] | undefined) ?? []), donor]
    await writeManifest(locked.dir, raw)

    report({ stage: 'validate', message: `validating group ${locked.manifest.group.id}` })
    throwIfAborted(signal, checkpoint.file)
    await openBundle(locked.dir)
    return {
      lensId: id,
      name,
      lensDir,
      checkpoint: checkpoint.file,
      choiceNote,
      orig,
      donor,
      provenance
    }
  } catch (err) {
    await fs.writeFile(path.join(locked.dir, 'manifest.json'), manifestBefore)
    for (const rel of moved.reverse()) {
      await fs.rm(path.join(locked.dir, rel), { recursive: true, force: true })
    }
    throw err
  } finally {
    await fs.rm(staging, { recursive: true, force: true })
  }
}

function provenanceOf(checkpoint: LensCheckpoint, notes: string[], now: Date): LensProvenance {
  const c = checkpoint.config
  return {
    source: 'lens-checkpoint',
    file: path.basename(checkpoint.file),
    importedAt: now.toISOString(),
    step: checkpoint.step,
    modelName: c.modelName,
    origModelName: c.origModelName,
    tokenizerName: c.tokenizerName,
    modelDtype: c.modelDtype,
    layer: c.layer,
    explanationTokens: c.explanationTokens,
    patchAllLayers: c.decoder.patchAllLayers,
    perLayerProjections: c.decoder.perLayerProjections,
    encoderOutputLayer: c.encoder.outputLayer,
    notes,
    trainingConfig: checkpoint.configJson
  }
}

export type { GroupBase }

/** The job-facing summary of an import (src/shared/domain/imports.ts). */
export function importedLensOf(r: ImportLensResult): ImportedLens {
  const p = r.provenance
  return {
    lensId: r.lensId,
    name: r.name,
    lensDir: r.lensDir,
    checkpoint: r.checkpoint,
    choiceNote: r.choiceNote,
    layer: p.layer,
    explanationTokens: p.explanationTokens,
    step: p.step,
    modelName: p.modelName,
    origModelName: p.origModelName,
    orig: r.orig,
    donorId: r.donor?.id ?? null,
    notes: [...p.notes]
  }
}
