/**
 * Which Python names a checkpoint pickle may mention, and what the unpickler does with each
 * (docs/lens-checkpoints.md, "The allow-list"). Nothing here is ever executed: the unpickler is
 * TypeScript. The policy decides what a name *means* to us and which files are refused because
 * Python's own loader (the predecessor used `torch.load(weights_only=False)`) would run code
 * while loading them.
 *
 * - `build`: a constructor the reader reproduces as data (tensors, dicts, sets, bytes).
 * - `inert`: a data constructor whose result we never need (numpy RNG state, numpy scalars);
 *   calling it in Python only builds data, so the unpickler keeps an opaque placeholder.
 * - Any other name may still be *mentioned* (a class being built with NEWOBJ/BUILD becomes a
 *   placeholder; a GLOBAL used as a value stays a name), but a pickle that would *call* it
 *   (REDUCE, INST, OBJ) is refused, and names from modules that can reach the system are refused
 *   wherever they appear, because Python imports a module as soon as a pickle names it.
 */

/** Python 2 names that protocol-2 pickles carry (Python 3 writes them with fix_imports). */
const PY2_MODULES: Record<string, string> = {
  __builtin__: 'builtins',
  exceptions: 'builtins',
  copy_reg: 'copyreg',
  commands: 'subprocess',
  cPickle: 'pickle',
  thread: '_thread',
  dummy_thread: '_dummy_thread',
  Queue: 'queue',
  SocketServer: 'socketserver',
  httplib: 'http.client',
  urllib2: 'urllib.request',
  BaseHTTPServer: 'http.server',
  SimpleHTTPServer: 'http.server',
  CGIHTTPServer: 'http.server',
  StringIO: 'io',
  cStringIO: 'io',
  UserDict: 'collections',
  UserList: 'collections',
  UserString: 'collections'
}

const PY2_NAMES: Record<string, string> = {
  'builtins.xrange': 'builtins.range',
  'builtins.unicode': 'builtins.str',
  'builtins.long': 'builtins.int',
  'builtins.basestring': 'builtins.str',
  'builtins.reduce': 'functools.reduce',
  'builtins.intern': 'sys.intern'
}

/**
 * Modules whose names are refused anywhere in a pickle: process and file access, code loading,
 * introspection and callable factories (the gadgets a hostile pickle chains). Matching is on the
 * module path or any parent (`os` covers `os.path`).
 */
export const DENIED_MODULES: readonly string[] = [
  'os',
  'posix',
  'nt',
  'subprocess',
  'sys',
  'shutil',
  'socket',
  'ssl',
  'select',
  'selectors',
  'signal',
  'fcntl',
  'resource',
  'pty',
  'tty',
  'termios',
  'ctypes',
  '_ctypes',
  'cffi',
  'importlib',
  'imp',
  'zipimport',
  'pkgutil',
  'runpy',
  'site',
  'sysconfig',
  'code',
  'codeop',
  'compileall',
  'py_compile',
  'ast',
  'inspect',
  'gc',
  'types',
  'functools',
  'operator',
  'itertools',
  'pickle',
  '_pickle',
  'pickletools',
  'copy',
  'shelve',
  'marshal',
  'dill',
  'cloudpickle',
  'joblib',
  'io',
  '_io',
  'tempfile',
  'glob',
  'fileinput',
  'webbrowser',
  'multiprocessing',
  'concurrent',
  'asyncio',
  'threading',
  '_thread',
  '_dummy_thread',
  'queue',
  'socketserver',
  'http',
  'urllib',
  'ftplib',
  'smtplib',
  'poplib',
  'imaplib',
  'telnetlib',
  'xmlrpc',
  'pdb',
  'bdb',
  'trace',
  'timeit',
  'profile',
  'cProfile',
  'platform',
  'distutils',
  'setuptools',
  'pip',
  'numpy.testing',
  'numpy.f2py',
  'numpy.distutils',
  'numpy.ctypeslib',
  'numpy.lib.npyio',
  'numpy.lib.format',
  'numpy.load',
  'torch.hub',
  'torch.jit',
  'torch.package',
  'torch.ops',
  'torch.classes',
  'torch.utils.cpp_extension',
  'torch.distributed',
  'torch.multiprocessing',
  'torch.serialization',
  'torch.load',
  'torch.storage._load_from_bytes'
]

/** `builtins` is refused except these types (containers and scalars; no functions). */
const SAFE_BUILTINS = new Set([
  'object',
  'dict',
  'list',
  'tuple',
  'set',
  'frozenset',
  'bytes',
  'bytearray',
  'str',
  'int',
  'float',
  'bool',
  'complex',
  'slice',
  'range'
])

/** Dunder names a pickle may mention (copyreg's helpers for NEWOBJ under protocol < 2). */
const ALLOWED_DUNDERS = new Set(['copyreg.__newobj__', 'copyreg.__newobj_ex__'])

/** What the unpickler reproduces when the pickle calls (REDUCE/INST/OBJ) one of these. */
export type BuildRule =
  | 'tensor'
  | 'parameter'
  | 'parameter_with_state'
  | 'tensor_from_type'
  | 'ordered_dict'
  | 'default_dict'
  | 'set'
  | 'frozenset'
  | 'codecs_encode'
  | 'size'
  | 'reconstructor'
  | 'newobj'
  | 'ndarray_reconstruct'

export const BUILD_CALLS: Readonly<Record<string, BuildRule>> = {
  'torch._utils._rebuild_tensor_v2': 'tensor',
  'torch._utils._rebuild_tensor': 'tensor',
  'torch._utils._rebuild_parameter': 'parameter',
  'torch._utils._rebuild_parameter_with_state': 'parameter_with_state',
  'torch._tensor._rebuild_from_type_v2': 'tensor_from_type',
  'collections.OrderedDict': 'ordered_dict',
  'collections.defaultdict': 'default_dict',
  'builtins.set': 'set',
  'builtins.frozenset': 'frozenset',
  '_codecs.encode': 'codecs_encode',
  'torch.Size': 'size',
  'copyreg._reconstructor': 'reconstructor',
  'copyreg.__newobj__': 'newobj',
  'copyreg.__newobj_ex__': 'newobj',
  'numpy.core.multiarray._reconstruct': 'ndarray_reconstruct',
  'numpy._core.multiarray._reconstruct': 'ndarray_reconstruct'
}

/**
 * Data constructors whose calls become placeholders: in Python each only builds plain data from
 * its arguments (numpy arrays, dtypes and scalars, RNG state holders, dates, a torch device).
 */
export const INERT_CALLS: ReadonlySet<string> = new Set([
  'numpy.dtype',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.core.numeric._frombuffer',
  'numpy._core.numeric._frombuffer',
  'numpy.random._pickle.__randomstate_ctor',
  'numpy.random._pickle.__generator_ctor',
  'numpy.random._pickle.__bit_generator_ctor',
  'builtins.bytearray',
  'builtins.complex',
  'builtins.slice',
  'builtins.range',
  'builtins.object',
  'collections.Counter',
  'datetime.datetime',
  'datetime.date',
  'datetime.time',
  'datetime.timedelta',
  'datetime.timezone',
  'decimal.Decimal',
  'fractions.Fraction',
  'pathlib.Path',
  'pathlib.PosixPath',
  'pathlib.WindowsPath',
  'pathlib.PurePosixPath',
  'pathlib.PureWindowsPath',
  'torch.device'
])

/** NEWOBJ of these gives a real (empty) container rather than a placeholder. */
export const NEWOBJ_CONTAINERS: Readonly<Record<string, 'dict' | 'list' | 'set'>> = {
  'collections.OrderedDict': 'dict',
  'builtins.dict': 'dict',
  'builtins.list': 'list',
  'builtins.set': 'set'
}

/** Tensor classes `_rebuild_from_type_v2` may produce (plain tensors and parameters). */
export const TENSOR_TYPES: ReadonlySet<string> = new Set([
  'torch.Tensor',
  'torch._tensor.Tensor',
  'torch.nn.parameter.Parameter'
])

/**
 * Bases `copyreg._reconstructor(cls, base, state)` may name: Python runs `base.__new__` and,
 * unless base is object, `base.__init__`; only these builtin types make both inert.
 */
export const RECONSTRUCTOR_BASES: ReadonlySet<string> = new Set([
  'builtins.object',
  'builtins.dict',
  'builtins.list',
  'builtins.tuple',
  'builtins.set',
  'builtins.str',
  'builtins.int',
  'builtins.float'
])

/** `numpy` array subclasses `_reconstruct` may build (a subclass could run code on creation). */
export const NDARRAY_TYPES: ReadonlySet<string> = new Set(['numpy.ndarray'])

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/
const MAX_NAME_CHARS = 200

export type NameVerdict =
  { ok: true; qualified: string } | { ok: false; qualified: string; why: string }

/**
 * Normalises a GLOBAL's module and name (Python 2 spellings included) and says whether a pickle
 * may mention it at all.
 */
export function judgeGlobal(module: string, name: string): NameVerdict {
  const raw = `${module}.${name}`
  if (module.length + name.length > MAX_NAME_CHARS) {
    return { ok: false, qualified: raw.slice(0, 80), why: 'the name is implausibly long' }
  }
  const modParts = module.split('.')
  const nameParts = name.split('.')
  if (!modParts.every((p) => IDENT.test(p)) || !nameParts.every((p) => IDENT.test(p))) {
    return { ok: false, qualified: JSON.stringify(raw), why: 'not a Python identifier' }
  }
  const mappedModule = PY2_MODULES[module] ?? module
  let qualified = `${mappedModule}.${name}`
  qualified = PY2_NAMES[qualified] ?? qualified
  const shown = qualified === raw ? qualified : `${qualified} (written as ${raw})`
  const dunder = nameParts.some((p) => p.length > 4 && p.startsWith('__') && p.endsWith('__'))
  if (dunder && !ALLOWED_DUNDERS.has(qualified)) {
    return {
      ok: false,
      qualified: shown,
      why: 'a dunder attribute (introspection reaches arbitrary code)'
    }
  }
  const [qualModule] = splitQualified(qualified)
  if (qualModule === 'builtins' && !SAFE_BUILTINS.has(qualified.slice('builtins.'.length))) {
    return {
      ok: false,
      qualified: shown,
      why: 'a Python builtin that can run code or reach the system'
    }
  }
  for (const denied of DENIED_MODULES) {
    if (qualified === denied || qualified.startsWith(`${denied}.`)) {
      return {
        ok: false,
        qualified: shown,
        why: `"${denied}" can run commands, load code or reach the system`
      }
    }
  }
  return { ok: true, qualified }
}

function splitQualified(qualified: string): [string, string] {
  const dot = qualified.indexOf('.')
  return [qualified.slice(0, dot), qualified.slice(dot + 1)]
}
