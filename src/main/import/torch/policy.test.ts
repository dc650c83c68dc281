/** The allow-list as a table: what a pickle may name, and how Python 2 spellings map. */
import { describe, expect, it } from 'vitest'
import { BUILD_CALLS, INERT_CALLS, judgeGlobal } from './policy'

describe('judgeGlobal', () => {
  it.each([
    ['torch._utils', '_rebuild_tensor_v2', 'torch._utils._rebuild_tensor_v2'],
    ['torch', 'BFloat16Storage', 'torch.BFloat16Storage'],
    ['collections', 'OrderedDict', 'collections.OrderedDict'],
    ['__builtin__', 'set', 'builtins.set'],
    ['copy_reg', '_reconstructor', 'copyreg._reconstructor'],
    ['copyreg', '__newobj__', 'copyreg.__newobj__'],
    ['_codecs', 'encode', '_codecs.encode'],
    ['numpy.core.multiarray', '_reconstruct', 'numpy.core.multiarray._reconstruct'],
    ['numpy', 'dtype', 'numpy.dtype'],
    ['torch.optim.adam', 'Adam', 'torch.optim.adam.Adam'],
    ['lens.models.decoder', 'DecoderConfig', 'lens.models.decoder.DecoderConfig'],
    ['osmium', 'Thing', 'osmium.Thing'],
    ['__builtin__', 'long', 'builtins.int']
  ])('%s.%s may be named (as %s)', (module, name, qualified) => {
    expect(judgeGlobal(module, name)).toEqual({ ok: true, qualified })
  })

  it.each([
    ['os', 'system'],
    ['posix', 'system'],
    ['nt', 'system'],
    ['os.path', 'join'],
    ['subprocess', 'Popen'],
    ['commands', 'getoutput'],
    ['builtins', 'eval'],
    ['builtins', 'exec'],
    ['builtins', 'getattr'],
    ['builtins', '__import__'],
    ['builtins', 'open'],
    ['__builtin__', 'compile'],
    ['__builtin__', 'reduce'],
    ['__builtin__', 'intern'],
    ['functools', 'partial'],
    ['operator', 'attrgetter'],
    ['operator', 'methodcaller'],
    ['importlib', 'import_module'],
    ['runpy', 'run_path'],
    ['pickle', 'loads'],
    ['cPickle', 'loads'],
    ['marshal', 'loads'],
    ['ctypes', 'CDLL'],
    ['socket', 'socket'],
    ['shutil', 'rmtree'],
    ['webbrowser', 'open'],
    ['torch', 'load'],
    ['torch.hub', 'load'],
    ['torch.jit', 'load'],
    ['torch.serialization', 'load'],
    ['torch.storage', '_load_from_bytes'],
    ['numpy', 'load'],
    ['numpy.testing._private.utils', 'runstring'],
    ['sys', 'modules'],
    ['types', 'FunctionType'],
    ['torch._utils', '_rebuild_tensor_v2.__globals__'],
    ['x', '__class__'],
    ['os;', 'system'],
    ['a b', 'c'],
    ['', 'x']
  ])('%s.%s is refused', (module, name) => {
    const verdict = judgeGlobal(module, name)
    expect(verdict.ok).toBe(false)
  })

  it('every allow-listed callable may itself be named', () => {
    for (const qualified of [...Object.keys(BUILD_CALLS), ...INERT_CALLS]) {
      const dot = qualified.lastIndexOf('.')
      expect(judgeGlobal(qualified.slice(0, dot), qualified.slice(dot + 1)), qualified).toEqual({
        ok: true,
        qualified
      })
    }
  })
})
