/**
 * The one error type of everything under src/main/import: safetensors files, Hugging Face folders,
 * PEFT adapters, PyTorch lens checkpoints and the conversions into a bundle. It is an `AppError`
 * of the same shape the bundle validator throws (`code`, `message`, `file`, `field`), so every
 * transport serialises it unchanged and the CLI maps it to exit code 3; the extra `problem` and
 * `tensor` let callers and tests tell the failures apart without parsing text.
 */
import { AppError } from '@shared/ipc/errors'

/** What went wrong, as a closed set (tests and the importer switch on it). */
export type CheckpointProblem =
  /** A file or folder the checkpoint needs does not exist. */
  | 'missing_file'
  /** A FIFO, device, socket or directory where a regular file is expected (or the reverse). */
  | 'not_regular_file'
  /** A path (an index entry, a symlink) that resolves outside the folder the user chose. */
  | 'outside_folder'
  /**
   * The file could not be read (permissions, I/O error, changed while reading), or is not a
   * complete archive / pickle (truncated, corrupt).
   */
  | 'unreadable'
  /** A PyTorch pickle that would run code or reach outside its data if Python loaded it. */
  | 'unsafe'
  /** Well-formed, but holds something the Workbench cannot reproduce (the field is named). */
  | 'unsupported'
  /** Well-formed, but inconsistent: shapes, missing or unexpected keys, NaN in lens weights. */
  | 'invalid'
  /** Over one of a reader's limits (records, pickle size, tensor elements). */
  | 'too_large'
  /** A lens checkpoint whose base model is not the group's base (names and shapes are given). */
  | 'base_mismatch'
  /** The lens reads activations from another model than the base, and it was not supplied. */
  | 'donor_required'
  /** A safetensors header that is not what the format allows (length, JSON, fields). */
  | 'header_invalid'
  /** The file ends before the data its header describes. */
  | 'truncated'
  /** Offsets outside the data region, begin > end, or a byte length that disagrees with the shape. */
  | 'offsets_invalid'
  /** Two tensors share bytes. */
  | 'overlap'
  /** A shape that is not a list of non-negative integers, or one too large to hold. */
  | 'shape_invalid'
  /** A dtype that this reader does not convert (listed in the header, refused when read). */
  | 'dtype_unsupported'
  /** `model.safetensors.index.json` is malformed. */
  | 'index_invalid'
  /** A shard named by the index is absent. */
  | 'missing_shard'
  /** A tensor asked for (or listed in the index) is not where it should be. */
  | 'missing_tensor'
  /** The same tensor name appears in two shards. */
  | 'duplicate_tensor'
  /** `config.json` (or another JSON file) is absent, malformed or too large. */
  | 'config_invalid'
  /** `config.json` names an architecture, option or value the graph does not compute. */
  | 'unsupported_model'
  /** A tensor's shape disagrees with what `config.json` implies. */
  | 'shape_mismatch'
  /** A tensor that is not part of the architecture `config.json` describes. */
  | 'unexpected_tensor'
  /** The tokenizer files cannot be used with this model (absent, unreadable, ids past the vocabulary). */
  | 'tokenizer_invalid'
  /** The folder holds weights in a format other than safetensors (e.g. `pytorch_model.bin`). */
  | 'not_safetensors'
  /** The config declares quantised weights. */
  | 'quantized'
  /** NaN or infinite values in a tensor (reported by the scan helper; the caller decides). */
  | 'non_finite'
  /** A PEFT adapter folder that cannot be merged faithfully. */
  | 'adapter_invalid'
  /** The caller's AbortSignal fired. */
  | 'cancelled'

export interface CheckpointErrorDetails {
  /** The file the error is about, as the user would recognise it (relative to the chosen folder). */
  file: string
  /** The JSON field at fault (dotted), when there is one. */
  field?: string
  /** The tensor at fault, when there is one. */
  tensor?: string
}

export class CheckpointError extends AppError {
  readonly problem: CheckpointProblem
  readonly tensor?: string
  declare readonly file: string

  constructor(problem: CheckpointProblem, message: string, details: CheckpointErrorDetails) {
    super(problem === 'cancelled' ? 'cancelled' : 'bundle_invalid', message, {
      file: details.file,
      field: details.field
    })
    this.name = 'CheckpointError'
    this.problem = problem
    this.tensor = details.tensor
  }

  /**
   * The located form the PyTorch reader uses: `file: where: message`, where `where` is a zip
   * record, a pickle byte, a checkpoint key or a config field (also kept as `field`).
   */
  static at(
    problem: CheckpointProblem,
    file: string,
    where: string | undefined,
    message: string
  ): CheckpointError {
    return new CheckpointError(problem, `${file}${where ? `: ${where}` : ''}: ${message}`, {
      file,
      field: where
    })
  }
}

/** Builds the message prefix every error uses: `file (field)`, then `tensor "name"`. */
export function checkpointFail(
  problem: CheckpointProblem,
  details: CheckpointErrorDetails,
  message: string
): never {
  const where = details.field ? `${details.file} (${details.field})` : details.file
  const tensor = details.tensor !== undefined ? `: tensor "${details.tensor}"` : ''
  throw new CheckpointError(problem, `${where}${tensor}: ${message}`, details)
}

/** Throws a `cancelled` CheckpointError when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, file: string): void {
  if (signal?.aborted) {
    throw new CheckpointError('cancelled', `${file}: reading cancelled`, { file })
  }
}
