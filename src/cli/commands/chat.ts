/** `talkative chat`: one assistant reply to a conversation, stopping at the end of the turn. */
import { Command, Option } from 'commander'
import { AppError } from '@shared/ipc/errors'
import type { ChatMessage } from '../../main/engine'
import {
  EXIT,
  addGenerationOptions,
  addGroupOptions,
  openGroupForGeneration,
  parseMessagesJson,
  readTextFile,
  reportError,
  seedArg,
  usageExits,
  type GroupFlags
} from './generate'

interface ChatFlags extends GroupFlags {
  message?: string
  system?: string
  messages?: string
  messagesFile?: string
  maxNewTokens: number
  temperature: number
  topP: number
  seed: number
  json?: boolean
}

function conversation(flags: ChatFlags): ChatMessage[] {
  const sources = [flags.message, flags.messages, flags.messagesFile].filter((v) => v !== undefined)
  if (sources.length !== 1) {
    throw new AppError(
      'invalid_input',
      'give exactly one of --message, --messages, --messages-file',
      {
        field: '--message'
      }
    )
  }
  let messages: ChatMessage[]
  if (flags.message !== undefined) messages = [{ role: 'user', content: flags.message }]
  else if (flags.messages !== undefined) messages = parseMessagesJson(flags.messages, '--messages')
  else {
    const file = flags.messagesFile!
    messages = parseMessagesJson(readTextFile(file, '--messages-file'), '--messages-file', file)
  }
  if (flags.system !== undefined) {
    if (messages[0]?.role === 'system') {
      throw new AppError(
        'invalid_input',
        '--system given but the conversation already has a system message',
        {
          field: '--system'
        }
      )
    }
    messages = [{ role: 'system', content: flags.system }, ...messages]
  }
  return messages
}

export function chatCommand(): Command {
  const cmd = new Command('chat')
    .description(
      "one assistant reply to a conversation, with the group's chat template; stops at the end of the turn"
    )
    .option('--message <text>', 'a single user message')
    .option(
      '--system <text>',
      'a system message before the conversation (merged into the first user turn when the template has no system role)'
    )
    .option(
      '--messages <json>',
      'the conversation: [{"role":"user","content":"…"}, …]; a final assistant message is continued'
    )
    .option('--messages-file <f>', 'read the conversation from a JSON file')
    .addOption(seedArg())
    .addOption(new Option('--json', 'print JSON (the prompt, the reply, its tokens and metadata)'))
  addGenerationOptions(cmd, { maxNewTokens: 256, temperatureFlag: '--temperature' })
  addGroupOptions(cmd)
  usageExits(cmd)
  cmd.action(async (flags: ChatFlags) => {
    process.exitCode = await runChat(flags)
  })
  return cmd
}

async function runChat(flags: ChatFlags): Promise<number> {
  let opened: Awaited<ReturnType<typeof openGroupForGeneration>> | undefined
  try {
    const messages = conversation(flags)
    opened = await openGroupForGeneration(flags)
    const result = await opened.group.generate({
      lensId: opened.lensId,
      messages,
      options: {
        maxNewTokens: flags.maxNewTokens,
        temperature: flags.temperature,
        topP: flags.topP,
        seed: flags.seed,
        n: 1,
        stopAtEndOfTurn: true
      }
    })
    const reply = result.completions[0]!
    if (flags.json) {
      process.stdout.write(JSON.stringify({ reply: reply.reply, ...result }) + '\n')
    } else {
      process.stdout.write(`${reply.reply}\n`)
      if (reply.finishReason === 'length') {
        process.stderr.write(
          `talkative: the reply was cut at --max-new-tokens ${flags.maxNewTokens}\n`
        )
      }
    }
    return EXIT.ok
  } catch (err) {
    return reportError(err, flags.json)
  } finally {
    await opened?.group.dispose()
  }
}
