/**
 * Donor models (seed-system.md §2.2): the model a lens reads activations from when that is not the
 * group's base — a full Hugging Face folder, or a PEFT LoRA adapter merged into a copy of the base it
 * names (W + scale·B·A, hf/peft.ts). Written into the group as `<id>.onnx` + `.data`, streamed one
 * graph weight at a time through the same reader, weight plan and writer as a base.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { writeStreamedModel, type ArchSpec, type ModelRef } from '../../engine'
import { CheckpointError } from '../errors'
import {
  ADAPTER_CONFIG_FILE,
  locateHfFolder,
  mergePeftTensor,
  openHfFolder,
  planPeftMerge,
  readPeftAdapter,
  readTensor,
  type HfFolder,
  type PeftAdapter
} from '../hf'
import { readHfArchitecture } from '../hf/config'
import { planHfWeights, materializeWeight, type PlannedWeight } from '../hf/weights'
import { sameModelName, type GroupBase } from './base'

/** What `--orig DIR` holds. */
export type DonorSource =
  | { kind: 'model'; folder: HfFolder; name: string }
  | { kind: 'adapter'; adapter: PeftAdapter; base: HfFolder; name: string }

export interface DonorProgress {
  weightsDone: number
  weightsTotal: number
}

/** Whether `dir` (or its cache snapshot) is a PEFT adapter folder. */
async function isAdapterFolder(dir: string): Promise<boolean> {
  const { dir: located } = await locateHfFolder(dir)
  try {
    await fs.lstat(path.join(located, ADAPTER_CONFIG_FILE))
    return true
  } catch {
    return false
  }
}

/** A name for the model in a folder: the cache's `org/name`, else the folder's name. */
function folderModelName(folder: { dir: string; root: string; layout: string }): string {
  if (folder.layout === 'hf-cache') {
    const repo = path.basename(folder.root).replace(/^models--/, '')
    return repo.replace('--', '/')
  }
  return path.basename(folder.dir)
}

/**
 * Opens `--orig DIR`: a model folder, or a PEFT adapter with its base (`adapterBase`, the folder of
 * the model `base_model_name_or_path` names). Headers only; nothing large is read yet.
 */
export async function openDonorSource(
  dir: string,
  options: { adapterBase?: string; signal?: AbortSignal }
): Promise<DonorSource> {
  if (!(await isAdapterFolder(dir))) {
    const folder = await openHfFolder(dir, options)
    const recorded =
      typeof folder.config._name_or_path === 'string' ? folder.config._name_or_path : ''
    return { kind: 'model', folder, name: recorded || folderModelName(folder) }
  }
  const adapter = await readPeftAdapter(dir, options)
  const named = adapter.config.baseModelNameOrPath
  if (!options.adapterBase) {
    throw CheckpointError.at(
      'donor_required',
      path.join(adapter.dir, ADAPTER_CONFIG_FILE),
      'base_model_name_or_path',
      `the adapter is merged into a copy of its base model${named ? ` (${named})` : ''}: pass that model's ` +
        'Hugging Face folder with --orig-base DIR'
    )
  }
  const base = await openHfFolder(options.adapterBase, options)
  const baseName =
    typeof base.config._name_or_path === 'string' && base.config._name_or_path
      ? base.config._name_or_path
      : folderModelName(base)
  if (named && !sameModelName(named, baseName) && !sameModelName(named, folderModelName(base))) {
    throw CheckpointError.at(
      'base_mismatch',
      path.join(adapter.dir, ADAPTER_CONFIG_FILE),
      'base_model_name_or_path',
      `names ${named}, but --orig-base is ${baseName} (${base.dir})`
    )
  }
  const adapterName = folderModelName(await locateHfFolder(adapter.dir))
  return { kind: 'adapter', adapter, base, name: adapterName }
}

/** The donor must be able to stand in for the group's base as the orig model. */
function checkDonorShape(spec: ArchSpec, base: GroupBase, file: string): void {
  const differs: string[] = []
  if (spec.hiddenSize !== base.hiddenSize) differs.push(`d ${spec.hiddenSize} ≠ ${base.hiddenSize}`)
  if (spec.vocabSize !== base.vocabSize)
    differs.push(`vocabulary ${spec.vocabSize} ≠ ${base.vocabSize}`)
  if (spec.layers !== base.layers) differs.push(`${spec.layers} layers ≠ ${base.layers}`)
  if (differs.length > 0) {
    throw CheckpointError.at(
      'base_mismatch',
      file,
      undefined,
      `this model cannot supply activations for a lens on the base of group "${base.groupId}" (${base.name ?? base.architecture}): ${differs.join(', ')}`
    )
  }
}

/**
 * Writes the donor's graph into `dir` as `<id>.onnx` (+ `.data`) and returns its manifest
 * reference. With an adapter, each base tensor it adapts is merged as it is read.
 */
export async function writeDonor(
  source: DonorSource,
  dir: string,
  ref: { id: string; name: string },
  base: GroupBase,
  options: { signal?: AbortSignal; onProgress?: (p: DonorProgress) => void } = {}
): Promise<ModelRef> {
  const folder = source.kind === 'model' ? source.folder : source.base
  const arch = readHfArchitecture(folder.config, path.join(folder.dir, 'config.json'))
  checkDonorShape(arch.spec, base, path.join(folder.dir, 'config.json'))
  const plan = planHfWeights(
    arch.spec,
    arch.multimodal,
    [...folder.tensors.values()].map((t) => ({ name: t.name, shape: t.shape })),
    folder.index?.file ?? 'model.safetensors'
  )
  const merge = source.kind === 'adapter' ? planPeftMerge(source.adapter, folder.tensors) : null
  const byName = new Map<string, PlannedWeight>(plan.weights.map((w) => [w.name, w]))
  const read = async (tensor: string): Promise<Float32Array> => {
    const values = await readTensor(folder, tensor, { signal: options.signal })
    const entry = merge?.get(tensor)
    if (!entry || source.kind !== 'adapter') return values
    return mergePeftTensor(source.adapter, entry, values, { signal: options.signal })
  }
  return writeStreamedModel(
    dir,
    { id: ref.id, name: ref.name, file: `${ref.id}.onnx` },
    arch.spec,
    async (w) => {
      const planned = byName.get(w.name)
      if (!planned) throw new Error(`writeDonor: no plan for graph weight ${w.name}`)
      return materializeWeight(planned, read)
    },
    (_, done, total) => options.onProgress?.({ weightsDone: done, weightsTotal: total })
  )
}
