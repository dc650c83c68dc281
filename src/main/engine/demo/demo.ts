/** Placeholder until the constructed demo lands (next commit). */
export const DEMO_GROUP_ID = 'demo-words'
export async function ensureDemoBundle(_cacheDir?: string): Promise<string> {
  throw new Error('demo bundle not built yet')
}
