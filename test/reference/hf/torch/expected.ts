/** Shape of expected.json (written by generate-expected.ts from the PyTorch reference). */
export interface ExpectedCase {
  /** Residual after every block at the case's last row. */
  lastRowBlockOutputs: number[][]
  /** The model's logits at the last row (final softcap included where the config has one). */
  lastRowLogits: number[]
  /** Present only where a final-logit softcap makes them differ from `lastRowLogits`. */
  lastRowLogitsNoSoftcap?: number[]
  greedy?: number[]
}

export interface ExpectedFile {
  generatedBy: string
  fixtures: Record<string, ExpectedCase[]>
}
