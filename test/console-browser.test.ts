/**
 * The web console in a real browser: Debian's chromium driven by playwright-core against
 * `secryn serve` (the compiled binary when SECRYN_BINARY is set, else the source). Every page
 * must load with no console error, no CSP violation, no request to another host, and no
 * serious or critical axe-core violation. Screenshots go to a temp dir (printed).
 * Skipped when /usr/bin/chromium is missing (CI installs it in .ci/run).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import {
  cliCommand,
  freePort,
  pinnedEnv,
  runCli,
  tempDir,
  waitForHealthy,
  writeConfig,
} from './harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const AXE = readFileSync(
  join(import.meta.dir, '..', 'node_modules', 'axe-core', 'axe.min.js'),
  'utf8',
);

describe.skipIf(!existsSync(CHROMIUM))('console in chromium', () => {
  const dir = tempDir();
  const shots = mkdtempSync(join(tmpdir(), 'secryn-console-shots-'));
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  let server: ReturnType<typeof Bun.spawn>;
  let browser: Browser;
  let adminToken: string;
  const problems: string[] = [];

  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as any };
  };

  /** A fresh context whose page reports errors, CSP violations and off-host requests. */
  const open = async (): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext({ baseURL: base });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    const page = await context.newPage();
    page.on('console', (message) => {
      // A refused API call (403/409 shown to the user) logs a resource error; those are expected.
      if (message.type() === 'error' && !/status of (401|403|404|409)/.test(message.text()))
        problems.push(`console: ${message.text()}`);
      if (/Content Security Policy/i.test(message.text())) problems.push(`csp: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.protocol !== 'data:' && url.origin !== base)
        problems.push(`off-host: ${request.url()}`);
    });
    return { context, page };
  };

  const check = async (page: Page, name: string) => {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    await page.evaluate(AXE);
    const violations = (await page.evaluate(async () => {
      const result = await (globalThis as any).axe.run((globalThis as any).document);
      return result.violations
        .filter((v: any) => v.impact === 'serious' || v.impact === 'critical')
        .map((v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`);
    })) as string[];
    expect(violations, name).toEqual([]);
    expect(problems, name).toEqual([]);
  };

  const signIn = async (page: Page, token: string) => {
    await page.goto('/');
    await page.getByLabel('API key').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  };

  beforeAll(async () => {
    const config = writeConfig(dir.path, `[server]\nport = ${port}\n`);
    const init = await runCli(['init', '--config', config, '--json']);
    adminToken = (JSON.parse(init.stdout) as { admin_key: { token: string } }).admin_key.token;
    server = Bun.spawn([...cliCommand(), 'serve', '--config', config], {
      cwd: dir.path,
      env: pinnedEnv(),
      stdout: 'ignore',
      stderr: 'ignore',
    });
    await waitForHealthy(`${base}/v1/health`, 20_000);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // No --user-data-dir: playwright refuses it and gives every launch a fresh empty one.
      ],
    });
    console.log(`console screenshots: ${shots}`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill('SIGTERM');
    await server?.exited;
    dir[Symbol.dispose]();
  });

  test('sign in; project, vault, secret; reveal (audited); versions and restore; conflict; keys; sign out', async () => {
    const { context, page } = await open();
    const started = performance.now();
    await page.goto('/');
    await page.getByLabel('API key').waitFor();
    console.log(`sign-in page interactive after ${(performance.now() - started).toFixed(0)} ms`);
    await check(page, '01-sign-in');
    await signIn(page, adminToken);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByText('Server:').waitFor();
    await check(page, '02-overview');
    // The session token is in no storage the page can read.
    expect(
      await page.evaluate(() => [
        (globalThis as any).localStorage.length,
        (globalThis as any).sessionStorage.length,
        (globalThis as any).document.cookie,
      ]),
    ).toEqual([0, 0, '']);

    await page.getByRole('link', { name: 'Projects and vaults' }).click();
    await page.getByLabel('New project name').fill('web');
    await page.getByRole('button', { name: 'Create project' }).click();
    await page.getByRole('heading', { name: 'web' }).waitFor();
    await page.getByLabel('New vault name').fill('prod');
    await page.getByRole('button', { name: 'Create vault' }).click();
    await page.getByRole('link', { name: 'prod' }).waitFor();
    await check(page, '03-projects');

    await page.getByRole('link', { name: 'prod' }).click();
    await page.getByLabel('Name', { exact: true }).fill('DB_PASSWORD');
    await page.getByLabel('Value').fill('hunter2-v1');
    await page.getByRole('button', { name: 'Create secret' }).click();
    await page.getByRole('link', { name: 'DB_PASSWORD' }).waitFor();
    expect(await page.content()).not.toContain('hunter2-v1');
    await page.getByRole('button', { name: 'Reveal DB_PASSWORD' }).click();
    await page.getByText('hunter2-v1').waitFor();
    await check(page, '04-vault-revealed');
    await page.getByRole('button', { name: 'Hide DB_PASSWORD' }).click();
    expect(await page.content()).not.toContain('hunter2-v1');
    const reveals = await api('GET', '/v1/audit-logs?action=resource.reveal', adminToken);
    expect(reveals.body.data[0].details).toMatchObject({ via: 'console' });

    await page.getByRole('link', { name: 'DB_PASSWORD' }).click();
    for (const value of ['hunter2-v2', 'hunter2-v3']) {
      await page.getByRole('button', { name: 'Edit value' }).click();
      await page.getByLabel(/New value/).fill(value);
      await page.getByRole('button', { name: 'Save new version' }).click();
      await page.getByText('Saved as a new version.').waitFor();
    }
    await page.getByRole('button', { name: 'Restore version 1' }).click();
    await page.getByText('Version 1 restored').waitFor();
    expect(await page.getByTestId('current-version').textContent()).toBe('4');
    const resourceId = page.url().split('/').pop()!;
    expect((await api('GET', `/v1/resources/${resourceId}`, adminToken)).body.value).toBe(
      'hunter2-v1',
    );
    await check(page, '05-secret');

    // A second tab saves first; this tab's edit (based on version 4) is refused and says why.
    await page.getByRole('button', { name: 'Edit value' }).click();
    const second = await context.newPage();
    await second.goto(page.url());
    await second.getByRole('button', { name: 'Edit value' }).click();
    await second.getByLabel(/New value/).fill('from-the-other-tab');
    await second.getByRole('button', { name: 'Save new version' }).click();
    await second.getByText('Saved as a new version.').waitFor();
    await second.close();
    await page.getByLabel(/New value/).fill('mine');
    await page.getByRole('button', { name: 'Save new version' }).click();
    await page.getByRole('heading', { name: 'Not saved: conflict' }).waitFor();
    await check(page, '06-conflict');

    // API keys: the token is shown once; revoking it ends that key's console session.
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByLabel('Name', { exact: true }).fill('ci-reader');
    await page.getByRole('button', { name: 'Create key' }).click();
    const token = (await page.getByTestId('new-token').textContent())!;
    expect(token).toMatch(/^scr_/);
    await check(page, '07-api-key-created');
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await page.content()).not.toContain(token);

    const reader = await open();
    await signIn(reader.page, token);
    await reader.page.getByRole('link', { name: 'Projects and vaults' }).click();
    await reader.page.getByRole('link', { name: 'prod' }).click();
    await reader.page.getByRole('link', { name: 'DB_PASSWORD' }).waitFor();
    expect(await reader.page.getByRole('button', { name: /Reveal|Copy/ }).count()).toBe(0);
    expect(await reader.page.getByRole('button', { name: 'Create secret' }).count()).toBe(0);
    await check(reader.page, '08-reader-vault');
    expect((await api('GET', `/v1/resources/${resourceId}`, token)).body.value).toBeUndefined();
    expect((await api('PUT', `/v1/resources/${resourceId}`, token, { value: 'x' })).status).toBe(
      403,
    );

    await page.getByRole('button', { name: 'Revoke ci-reader' }).click({ trial: true });
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Revoke ci-reader' }).click();
    await page.getByText('Key ci-reader revoked.').waitFor();
    await reader.page.reload();
    await reader.page.getByLabel('API key').waitFor(); // back at sign-in: its session ended
    await reader.context.close();

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByLabel('Action').fill('resource.reveal');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('cell', { name: 'resource.reveal' }).first().waitFor();
    await check(page, '09-audit');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    await context.close();
  }, 120_000);
});
