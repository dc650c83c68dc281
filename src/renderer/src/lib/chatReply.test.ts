import { describe, expect, it } from 'vitest'
import { splitChatReply } from './chatReply'

describe('chat reply', () => {
  it.each([
    [
      'the demo group (Gemma style, words joined by spaces)',
      '<bos> <start_of_turn> user the cat sat <end_of_turn> <start_of_turn> model the dog ran home',
      'the dog ran home'
    ],
    [
      'Gemma',
      '<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\nHello there!<end_of_turn>',
      'Hello there!'
    ],
    [
      'ChatML',
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHi! How can I help?<|im_end|>',
      'Hi! How can I help?'
    ],
    [
      'Llama 3',
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHey.',
      'Hey.'
    ],
    ['Mistral', '<s>[INST] hi [/INST] Bonjour</s>', 'Bonjour']
  ])('finds the reply after the last assistant header: %s', (_name, full, reply) => {
    expect(splitChatReply(full)).toEqual({ reply, transcript: full })
  })

  it('takes the last assistant turn when the conversation already had one', () => {
    const full =
      '<start_of_turn>user a<end_of_turn><start_of_turn>model b<end_of_turn><start_of_turn>user c<end_of_turn><start_of_turn>model d e'
    expect(splitChatReply(full).reply).toBe('d e')
  })

  it('gives no reply (show the transcript) when no assistant header is there', () => {
    expect(splitChatReply('<bos> the dog ran to the river')).toEqual({
      reply: null,
      transcript: '<bos> the dog ran to the river'
    })
  })
})
