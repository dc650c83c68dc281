/**
 * How this project launches Debian's chromium, for the e2e tests and the UI benchmark alike: never
 * a browser download; as root it needs --no-sandbox, and without the background-networking flags
 * it keeps trying hosts this closed network refuses.
 */
export const chromiumLaunchOptions = {
  executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync'
  ]
}
