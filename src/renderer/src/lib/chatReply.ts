/**
 * A generated chat completion comes back as the whole transcript (the rendered prompt, special
 * tokens kept, then the continuation). The reply is what follows the last assistant-turn header
 * the chat template wrote; the headers below are those of the common template families.
 */
const ASSISTANT_HEADERS: readonly RegExp[] = [
  // Gemma (and the demo group): <start_of_turn>model
  /<start_of_turn>\s*model\b[ \t]*\n?/g,
  // ChatML (Qwen and others): <|im_start|>assistant
  /<\|im_start\|>\s*assistant\b[ \t]*\n?/g,
  // Llama 3: <|start_header_id|>assistant<|end_header_id|>
  /<\|start_header_id\|>\s*assistant\s*<\|end_header_id\|>\s*/g,
  // Llama 2 / Mistral: [/INST]
  /\[\/INST\]\s*/g
]

/** Tokens that close a turn; a reply that ended its turn is shown without them. */
const END_OF_TURN = /\s*(<end_of_turn>|<\|im_end\|>|<\|eot_id\|>|<\/s>|<eos>)\s*$/

export interface ChatReply {
  /** The assistant's words only; null when no assistant header was found (show the transcript). */
  reply: string | null
  transcript: string
}

export function splitChatReply(fullText: string): ChatReply {
  let end = -1
  for (const header of ASSISTANT_HEADERS) {
    header.lastIndex = 0
    for (let m = header.exec(fullText); m; m = header.exec(fullText)) {
      end = Math.max(end, m.index + m[0].length)
    }
  }
  if (end < 0) return { reply: null, transcript: fullText }
  return { reply: fullText.slice(end).replace(END_OF_TURN, '').trim(), transcript: fullText }
}
