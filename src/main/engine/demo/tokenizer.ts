/**
 * A Hugging Face `tokenizer.json` for a word-level vocabulary: lowercase, split on whitespace and
 * punctuation, `<bos>` prepended by the post-processor, unknown words → `<unk>`.
 * (@huggingface/tokenizers returns the unk id only when the unk token is also an added token.)
 */
export interface WordLevelFiles {
  tokenizer: object
  tokenizerConfig: object
}

export function wordLevelTokenizer(
  specials: string[],
  words: string[],
  extraConfig: Record<string, unknown> = {}
): WordLevelFiles {
  const vocab: Record<string, number> = {}
  ;[...specials, ...words].forEach((w, i) => {
    if (w in vocab) throw new Error(`duplicate vocabulary entry "${w}"`)
    vocab[w] = i
  })
  const special = (id: string): object => ({ SpecialToken: { id, type_id: 0 } })
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true
    })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('<bos>'), { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        special('<bos>'),
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }
      ],
      special_tokens: { '<bos>': { id: '<bos>', ids: [vocab['<bos>']], tokens: ['<bos>'] } }
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' }
  }
  const tokenizerConfig = {
    bos_token: '<bos>',
    eos_token: '<eos>',
    unk_token: '<unk>',
    pad_token: '<pad>',
    model_max_length: 1024,
    ...extraConfig
  }
  return { tokenizer, tokenizerConfig }
}
