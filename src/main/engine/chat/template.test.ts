import { describe, expect, it } from 'vitest'
import { AppError } from '@shared/ipc/errors'
import { ChatTemplate, mergeSystemIntoFirstUser } from './template'
import { parseTokenizerConfig } from './tokenizerConfig'

// Written for these tests in the two families' formats: Gemma (no system role; raises on one) and
// ChatML (system role, <|im_start|>/<|im_end|>).
const GEMMA_STYLE = [
  "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
  "{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}",
  "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n",
  '{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}'
].join('')

const CHATML_STYLE = [
  '{% for message in messages %}',
  "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n",
  '{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}'
].join('')

/** Drops system messages silently, as some templates do. */
const SILENT_DROP = [
  "{% for m in messages %}{% if m['role'] != 'system' %}[{{ m['role'] }}]{{ m['content'] }}[/]{% endif %}{% endfor %}",
  '{% if add_generation_prompt %}[assistant]{% endif %}'
].join('')

const gemma = ChatTemplate.compile(GEMMA_STYLE, { bosToken: '<bos>', eosToken: '<eos>' })
const chatml = ChatTemplate.compile(CHATML_STYLE, { eosToken: '<|im_end|>' })

function appError(fn: () => unknown): AppError {
  try {
    fn()
  } catch (err) {
    if (err instanceof AppError) return err
    throw err
  }
  throw new Error('expected an AppError')
}

describe('Gemma-style template', () => {
  it('adds the generation prompt when the last turn is the user', () => {
    const r = gemma.render([{ role: 'user', content: 'Hello there' }])
    expect(r.text).toBe(
      '<bos><start_of_turn>user\nHello there<end_of_turn>\n<start_of_turn>model\n'
    )
    expect(r.addGenerationPrompt).toBe(true)
    expect(r.continueFinalMessage).toBe(false)
    expect(r.systemMerged).toBe(false)
  })

  it('merges the system message into the first user turn', () => {
    expect(gemma.supportsSystemRole).toBe(false)
    const r = gemma.render([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'Bye' }
    ])
    expect(r.systemMerged).toBe(true)
    expect(r.text).toBe(
      '<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n' +
        '<start_of_turn>model\nHello.<end_of_turn>\n' +
        '<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n'
    )
  })

  it('continues the final assistant message instead of closing it', () => {
    const r = gemma.render([
      { role: 'user', content: 'Name a colour' },
      { role: 'assistant', content: 'The colour is' }
    ])
    expect(r.continueFinalMessage).toBe(true)
    expect(r.addGenerationPrompt).toBe(false)
    expect(r.text).toBe(
      '<bos><start_of_turn>user\nName a colour<end_of_turn>\n<start_of_turn>model\nThe colour is'
    )
  })

  it.each(['turn', 'of', '_', '>', 'end', 'model', 'start_of_turn', '<end_of_turn>'])(
    'continues a prefill that also occurs in the closing markup (%j)',
    (prefill) => {
      const r = gemma.render([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: prefill }
      ])
      expect(r.text).toBe(
        `<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n${prefill}`
      )
    }
  )

  it('continues a trimmed prefill without its surrounding spaces', () => {
    const r = gemma.render([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '  of ' }
    ])
    expect(r.text).toBe('<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nof')
  })

  it('treats an empty assistant prefill as the open assistant turn', () => {
    const r = gemma.render([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '' }
    ])
    expect(r.text).toBe('<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n')
  })

  it('turns a lone system message into a user turn', () => {
    expect(mergeSystemIntoFirstUser([{ role: 'system', content: 'S' }])).toEqual([
      { role: 'user', content: 'S' }
    ])
  })
})

describe('ChatML-style template', () => {
  it('keeps a system role it supports', () => {
    expect(chatml.supportsSystemRole).toBe(true)
    const r = chatml.render([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hi' }
    ])
    expect(r.systemMerged).toBe(false)
    expect(r.text).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'
    )
  })

  it('continues the final assistant message, keeping its leading space', () => {
    const r = chatml.render([
      { role: 'user', content: 'Count' },
      { role: 'assistant', content: ' one two' }
    ])
    expect(r.text).toBe('<|im_start|>user\nCount<|im_end|>\n<|im_start|>assistant\n one two')
  })

  it('cuts at the last occurrence when the final message repeats earlier text', () => {
    const r = chatml.render([
      { role: 'user', content: 'yes' },
      { role: 'assistant', content: 'yes' }
    ])
    expect(r.text).toBe('<|im_start|>user\nyes<|im_end|>\n<|im_start|>assistant\nyes')
  })
})

describe('templates that drop or fail', () => {
  it('merges when the template silently drops system messages', () => {
    const t = ChatTemplate.compile(SILENT_DROP)
    expect(t.supportsSystemRole).toBe(false)
    const r = t.render([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'U' }
    ])
    expect(r.text).toBe('[user]S\n\nU[/][assistant]')
  })

  it('reports a template that drops or rewrites the final assistant message', () => {
    const dropsAssistant = ChatTemplate.compile(
      "{% for m in messages %}{% if m['role'] == 'user' %}[u]{{ m['content'] }}[/u]{% endif %}{% endfor %}"
    )
    const upper = ChatTemplate.compile(
      "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] | upper }}[/]{% endfor %}"
    )
    for (const t of [dropsAssistant, upper]) {
      const err = appError(() =>
        t.render([
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'u' }
        ])
      )
      expect(err.field).toBe('messages')
      expect(err.message).toMatch(/dropped or rewrote the final assistant message/)
    }
  })

  it('reports a template that cannot be parsed', () => {
    const err = appError(() => ChatTemplate.compile('{% for m in %}{% endfor %}'))
    expect(err.code).toBe('invalid_input')
    expect(err.field).toBe('chat_template')
    expect(err.message).toMatch(/could not be parsed/)
  })

  it('reports a template that raises while rendering', () => {
    const t = ChatTemplate.compile("{{ raise_exception('roles must alternate') }}", {
      file: '/b/tokenizer_config.json'
    })
    const err = appError(() => t.render([{ role: 'user', content: 'x' }]))
    expect(err.message).toBe('chat template failed to render: roles must alternate')
    expect(err.file).toBe('/b/tokenizer_config.json')
  })

  it('reports a template that calls something undefined', () => {
    const t = ChatTemplate.compile('{{ messages[0].nothing() }}')
    expect(appError(() => t.render([{ role: 'user', content: 'x' }])).message).toMatch(
      /failed to render/
    )
  })

  it('names the missing template', () => {
    const err = appError(() =>
      ChatTemplate.fromSpecials(parseTokenizerConfig({}, '/b/tokenizer_config.json'))
    )
    expect(err.field).toBe('chat_template')
    expect(err.message).toMatch(/no chat template/)
  })

  it('rejects bad messages naming the field', () => {
    expect(appError(() => chatml.render([])).field).toBe('messages')
    expect(appError(() => chatml.render([{ role: 'robot', content: 'x' } as never])).field).toBe(
      'messages.0.role'
    )
    const late = appError(() =>
      chatml.render([
        { role: 'user', content: 'x' },
        { role: 'system', content: 'y' }
      ])
    )
    expect(late.field).toBe('messages.1.role')
  })
})

describe('runaway templates stop within their budget, naming the template', () => {
  const user = [{ role: 'user' as const, content: 'hi' }]
  const runaway = (source: string): AppError => {
    const template = ChatTemplate.compile(source, { file: 'tokenizer_config.json' })
    try {
      template.render(user)
    } catch (err) {
      return err as AppError
    }
    throw new Error(`the template rendered: ${source}`)
  }

  it.each([
    [
      'a huge range',
      "{% for i in range(100000000) %}{{ 'x' }}{% endfor %}",
      /range\(\) for 100000000 items/
    ],
    [
      'nested loops under the range limit',
      '{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}.{% endfor %}{% endfor %}{% endfor %}',
      /steps|longer than/
    ],
    [
      'output that grows without end',
      "{% set ns = namespace(s='xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
      /MiB of text/
    ]
  ])('%s', (_name, source, reason) => {
    const err = runaway(source)
    expect(err).toBeInstanceOf(AppError)
    expect(err).toMatchObject({
      code: 'bundle_invalid',
      field: 'chat_template',
      file: 'tokenizer_config.json'
    })
    expect(err.message).toMatch(/^tokenizer_config\.json \(chat_template\): the chat template /)
    expect(err.message).toMatch(reason)
  })

  it('a budget ends only its own render: the next template renders normally', () => {
    expect(() => runaway('{% for i in range(10**9) %}{% endfor %}')).not.toThrow()
    const ok = ChatTemplate.compile(CHATML_STYLE).render(user)
    expect(ok.text).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n')
    // range() within the limit behaves as Jinja's.
    const counted = ChatTemplate.compile('{% for i in range(2, 11, 3) %}{{ i }},{% endfor %}')
    expect(counted.renderRaw(user, false)).toBe('2,5,8,')
    expect(
      ChatTemplate.compile('{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}').renderRaw(
        user,
        false
      )
    ).toBe('321')
  })
})

describe('tokenizer_config.json', () => {
  it('reads specials, named templates and end-of-turn tokens', () => {
    const s = parseTokenizerConfig({
      bos_token: { content: '<bos>', lstrip: false },
      eos_token: '<eos>',
      chat_template: [
        { name: 'tool_use', template: 'T' },
        { name: 'default', template: 'D' }
      ],
      end_of_turn_tokens: ['<end_of_turn>'],
      added_tokens_decoder: { '5': { content: '<start_of_turn>', special: true } }
    })
    expect(s.bosToken).toBe('<bos>')
    expect(s.eosToken).toBe('<eos>')
    expect(s.chatTemplate).toBe('D')
    expect(s.endOfTurnTokens).toEqual(['<end_of_turn>'])
    expect(s.specialTokens).toEqual(expect.arrayContaining(['<start_of_turn>', '<bos>', '<eos>']))
  })

  it('names the bad field', () => {
    const err = appError(() =>
      parseTokenizerConfig({ chat_template: 3 }, '/b/tokenizer_config.json')
    )
    expect(err.code).toBe('bundle_invalid')
    expect(err.field).toBe('chat_template')
  })
})
