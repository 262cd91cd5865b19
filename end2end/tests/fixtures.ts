// Every test fails if the page logs a console error or throws, unless the test said it expects
// that exact error (see `allowConsoleError`).
import { test as base, expect, Page } from "@playwright/test";

type ConsoleWatch = { errors: string[]; allowed: RegExp[] };

export const test = base.extend<{ console: ConsoleWatch }>({
  console: [
    async ({ page }, use) => {
      const watch: ConsoleWatch = { errors: [], allowed: [] };
      page.on("console", (message) => {
        if (message.type() === "error") watch.errors.push(`${message.text()} (${message.location().url})`);
      });
      page.on("pageerror", (error) => watch.errors.push(error.message));
      await use(watch);
      const unexpected = watch.errors.filter((error) => !watch.allowed.some((pattern) => pattern.test(error)));
      expect(unexpected, "console errors").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** Declares a console error the test provokes on purpose (such as the browser's note on a 404). */
export function allowConsoleError(watch: ConsoleWatch, pattern: RegExp) {
  watch.allowed.push(pattern);
}

/** Waits until the WebAssembly app has hydrated the server-rendered page. */
export async function hydrated(page: Page) {
  await expect(page.locator("html")).toHaveAttribute("data-hydrated", "true");
}

/** The password every test account uses. */
export const password = "correct horse battery staple";

/** Signs a new person up (a unique email from `name` unless one is given) and waits until signed in. */
export async function signUp(page: Page, name: string, email?: string) {
  await page.goto("/sign-up");
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Email").fill(email ?? `${name.toLowerCase()}-${Date.now()}@example.com`);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.locator("#account-name")).toContainText(name);
  // The dashboard is a new page load: its buttons work once it has hydrated.
  await hydrated(page);
}

/** A zip archive (stored, no compression) of the given files. */
export function zipOf(entries: Record<string, Buffer>): Buffer {
  const table = new Int32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c;
  });
  const crc32 = (data: Buffer) => {
    let crc = -1;
    for (const byte of data) crc = table[(crc ^ byte) & 0xff] ^ (crc >>> 8);
    return (crc ^ -1) >>> 0;
  };
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(entries)) {
    const nameBytes = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const centralSize = centrals.reduce((sum, part) => sum + part.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}
