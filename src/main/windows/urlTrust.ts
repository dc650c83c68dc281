import { pathToFileURL } from 'node:url'

export interface RendererLocation {
  /** Built renderer page (production). */
  file: string
  /** electron-vite's dev server, when running `electron-vite dev`. */
  devServerUrl?: string
}

/** The page main trusts: exactly the built index.html, or the dev server's origin. */
export function createUrlTrust(location: RendererLocation): (url: string) => boolean {
  const fileUrl = pathToFileURL(location.file).href
  const devOrigin = location.devServerUrl ? new URL(location.devServerUrl).origin : undefined
  return (url) => {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return false
    }
    if (parsed.protocol === 'file:') {
      parsed.search = ''
      parsed.hash = ''
      return parsed.href === fileUrl
    }
    return devOrigin !== undefined && parsed.origin === devOrigin
  }
}
