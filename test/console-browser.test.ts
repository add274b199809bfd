/**
 * The web console in a real browser: Debian's chromium driven by playwright-core against
 * `secryn serve` (the compiled binary when SECRYN_BINARY is set, else the source). Every page
 * must load with no console error, no CSP violation, no request to another host, and no
 * serious or critical axe-core violation. Screenshots go to a temp dir (printed).
 * Skipped when /usr/bin/chromium is missing outside CI; under CI=true (where .ci/run installs it)
 * a missing chromium fails instead of skipping.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { makeTestPki } from './pki.ts';
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

if (process.env.CI === 'true' && !existsSync(CHROMIUM)) {
  test('chromium is installed for the browser tests (CI)', () => {
    throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
  });
}

describe.skipIf(!existsSync(CHROMIUM))('console in chromium', () => {
  const dir = tempDir();
  const shots = mkdtempSync(join(tmpdir(), 'secryn-console-shots-'));
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  let server: ReturnType<typeof Bun.spawn>;
  let browser: Browser;
  let adminToken: string;
  let receiver: ReturnType<typeof Bun.serve>;
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
  const open = async (
    options: { viewport?: { width: number; height: number }; deviceScaleFactor?: number } = {},
  ): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext({ baseURL: base, ...options });
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
    receiver = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('ok') });
    const config = writeConfig(
      dir.path,
      `[server]\nport = ${port}\n[webhooks]\nallowed_cidrs = ["127.0.0.0/8"]\n`,
    );
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
    receiver?.stop(true);
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
    await page.getByTestId('current-version').getByText('4', { exact: true }).waitFor();
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
    const readerStreams: string[] = [];
    reader.page.on(
      'request',
      (r) => r.url().includes('/events/stream') && readerStreams.push(r.url()),
    );
    await signIn(reader.page, token);
    await reader.page.getByRole('link', { name: 'Projects and vaults' }).click();
    await reader.page.getByRole('link', { name: 'prod' }).click();
    await reader.page.getByRole('link', { name: 'DB_PASSWORD' }).waitFor();
    expect(await reader.page.getByRole('button', { name: /Reveal|Copy/ }).count()).toBe(0);
    expect(await reader.page.getByRole('button', { name: 'Create secret' }).count()).toBe(0);
    await check(reader.page, '08-reader-vault');
    // Without events:read the page does not open the event stream (it refreshes on focus).
    expect(readerStreams).toEqual([]);
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

  /** Presses Tab until the focused element's accessible text matches; fails after 60 presses. */
  const tabTo = async (page: Page, name: RegExp) => {
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = (globalThis as any).document.activeElement;
        return `${el?.getAttribute('aria-label') ?? ''} ${el?.labels?.[0]?.textContent ?? ''} ${el?.textContent ?? ''}`;
      });
      if (name.test(focused)) return;
    }
    throw new Error(`Tab never reached ${name}`);
  };

  /** No horizontal scrolling of the page itself (wide tables scroll inside their own box). */
  const noOverflow = async (page: Page, name: string) => {
    const [scroll, client] = await page.evaluate(() => {
      const root = (globalThis as any).document.documentElement;
      return [root.scrollWidth, root.clientWidth];
    });
    expect(scroll, `${name} overflows at 200 %`).toBeLessThanOrEqual(client);
  };

  test('keyboard-only project and vault; keys and certificates; details; restrict; scoped keys; webhooks; events; audit entry; overview; 200 % zoom', async () => {
    const pki = makeTestPki(['app.example.test']);
    const { context, page } = await open();
    const streams: string[] = [];
    page.on('request', (r) => r.url().includes('/v1/events/stream') && streams.push(r.url()));
    await signIn(page, adminToken);

    // Keyboard only: Tab and Enter to a new project, a vault in it, and into that vault.
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await tabTo(page, /Projects and vaults/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Projects and vaults' }).waitFor();
    await tabTo(page, /New project name/);
    await page.keyboard.type('ops');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'ops' }).waitFor();
    const opsVault = page
      .getByRole('form', { name: 'New vault in ops' })
      .getByLabel('New vault name');
    for (
      let i = 0;
      i < 60 &&
      !(await opsVault.evaluate((el) => el === (globalThis as any).document.activeElement));
      i++
    )
      await page.keyboard.press('Tab');
    await page.keyboard.type('pki');
    await page.keyboard.press('Enter');
    await page.getByRole('link', { name: 'pki' }).waitFor();
    await tabTo(page, /^\s*pki\s*$/);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Vault pki' }).waitFor();
    const vaultUrl = page.url();
    const vaultId = vaultUrl.split('/').pop()!;
    // The admin page follows the event stream (live updates).
    expect(streams.length).toBeGreaterThan(0);

    // Keys: each algorithm generated by the server, one uploaded; a certificate with its key.
    const add = async (kind: string, name: string, fill: () => Promise<void>, button: string) => {
      await page.getByLabel('What').selectOption({ label: kind });
      await page.getByLabel('Name', { exact: true }).fill(name);
      await fill();
      await page.getByRole('button', { name: button }).click();
      await page.getByText(`${name} added.`).waitFor();
    };
    for (const algorithm of ['ed25519', 'ec-p256', 'ec-p384', 'rsa-2048', 'rsa-4096', 'aes-256'])
      await add(
        'a key generated by the server',
        `key-${algorithm}`,
        () =>
          page
            .getByLabel('Algorithm')
            .selectOption(algorithm)
            .then(() => {}),
        'Generate key',
      );
    await add(
      'a key (upload PEM)',
      'uploaded-key',
      () => page.getByLabel('Private key PEM').fill(pki.caKey),
      'Upload key',
    );
    await add(
      'a certificate (upload PEM chain and key)',
      'app-cert',
      async () => {
        await page.getByLabel('Certificate chain PEM').fill(pki.leafCert + pki.caCert);
        await page.getByLabel('Private key PEM (optional)').fill(pki.leafKey);
      },
      'Upload certificate',
    );
    await add(
      'a secret',
      'API_TOKEN',
      () => page.getByLabel('Value').fill('tok-123'),
      'Create secret',
    );
    await page.getByRole('link', { name: 'API_TOKEN', exact: true }).waitFor();
    expect(await page.getByRole('row').count()).toBe(1 + 9);
    await check(page, '10-vault-keys-certs');
    await page.getByRole('combobox', { name: /^Type/ }).selectOption('certificate');
    await page
      .getByRole('link', { name: 'key-ed25519', exact: true })
      .waitFor({ state: 'detached' });
    expect(await page.getByRole('row').count()).toBe(2);
    await page.getByRole('combobox', { name: /^Type/ }).selectOption('');
    await page.getByLabel('Search by name or tag').fill('ec-p');
    await page.getByRole('link', { name: 'key-ec-p384', exact: true }).waitFor();
    expect(await page.getByRole('row').count()).toBe(3);
    await page.getByLabel('Search by name or tag').fill('');
    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Download key-ec-p256' }).click();
    const pem = readFileSync(await (await download).path(), 'utf8');
    expect(pem).toContain('-----BEGIN PRIVATE KEY-----');

    // A certificate: parsed subject, issuer, validity, fingerprint; expiring in a day: flagged.
    await page.getByRole('link', { name: 'app-cert', exact: true }).click();
    await page.getByTestId('subject').waitFor();
    expect(await page.getByTestId('subject').textContent()).toContain('app.example.test');
    expect(await page.getByTestId('not-after').textContent()).toContain('expires soon');
    expect(await page.getByTestId('not-after').getAttribute('class')).toBe('warn');
    await check(page, '11-certificate');

    // A secret's details: tags, expiry, content type.
    await page.goto(vaultUrl);
    await page.getByRole('link', { name: 'API_TOKEN', exact: true }).click();
    await page.getByRole('button', { name: 'Edit details' }).click();
    await page.getByLabel('Tags').fill('ci, prod');
    await page.getByLabel('Content type').fill('application/json');
    const inTenDays = new Date(
      Date.now() + 10 * 86_400_000 - new Date().getTimezoneOffset() * 60_000,
    );
    await page.getByLabel('Expires (empty: never)').fill(inTenDays.toISOString().slice(0, 16));
    await page.getByRole('button', { name: 'Save details' }).click();
    await page.getByText('Details saved.').waitFor();
    expect(await page.getByTestId('tags').textContent()).toBe('ci, prod');
    expect(await page.getByTestId('content-type').textContent()).toBe('application/json');
    expect(await page.getByTestId('expires').textContent()).toContain('expires soon');
    await check(page, '12-secret-details');

    // Restrict the vault; a vault that is not empty is not deleted, and the page says why.
    await page.getByRole('link', { name: 'Projects and vaults' }).click();
    await page.getByRole('button', { name: 'Restrict vault pki' }).click();
    await page.getByRole('button', { name: 'Unrestrict vault pki' }).waitFor();
    expect((await api('GET', `/v1/vaults/${vaultId}`, adminToken)).body.restricted).toBe(true);
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Delete vault pki' }).click();
    await page.getByText(/Vault pki was not deleted: The vault still holds 9 resources/).waitFor();
    await check(page, '13-projects-restricted');

    // API keys with scopes and limits; a manager's console is refused an admin key, with why.
    const projects = (await api('GET', '/v1/projects', adminToken)).body.data as {
      id: string;
      name: string;
    }[];
    const ops = projects.find((p) => p.name === 'ops')!;
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByLabel('Name', { exact: true }).fill('deployer');
    await page.getByLabel('Role').selectOption('contributor');
    await page.getByLabel('resources:read', { exact: true }).check();
    await page.getByLabel('resources:reveal', { exact: true }).check();
    await page.getByLabel('Limit to projects (optional)').selectOption(ops.id);
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByTestId('new-token').waitFor();
    await check(page, '14-api-key-scoped');
    await page.getByRole('button', { name: 'Done' }).click();
    const deployer = ((await api('GET', '/v1/api-keys', adminToken)).body.data as any[]).find(
      (k) => k.name === 'deployer',
    );
    expect(deployer).toMatchObject({
      role: 'contributor',
      scopes: ['resources:read', 'resources:reveal'],
      project_ids: [ops.id],
    });
    const manager = await api('POST', '/v1/api-keys', adminToken, { name: 'mgr', role: 'manager' });
    const managerSession = await open();
    await signIn(managerSession.page, manager.body.token);
    await managerSession.page.getByRole('link', { name: 'API keys' }).click();
    await managerSession.page.getByLabel('Name', { exact: true }).fill('too-strong');
    await managerSession.page.getByLabel('Role').selectOption('admin');
    await managerSession.page.getByRole('button', { name: 'Create key' }).click();
    await managerSession.page
      .getByText('Refused (role): Only an admin key can grant admin.')
      .waitFor();
    await check(managerSession.page, '15-api-key-refused');
    await managerSession.context.close();

    // Webhooks: the secret once; a test event delivered (live, no reload); a failing one retried.
    await page.getByRole('link', { name: 'Webhooks' }).click();
    const good = `http://127.0.0.1:${receiver.port}/hook`;
    const bad = `http://127.0.0.1:${freePort()}/nobody-listens`;
    for (const url of [good, bad]) {
      await page.getByLabel(/^URL/).fill(url);
      await page.getByRole('button', { name: 'Create webhook' }).click();
      expect(await page.getByTestId('new-secret').textContent()).toMatch(/^whsec_/);
      if (url === good) await check(page, '16-webhook-created');
      await page.getByRole('button', { name: 'Done' }).click();
      await page.getByRole('button', { name: `Send test event to ${url}` }).click();
      await page.getByText('Test event queued.').waitFor();
    }
    await page.getByRole('link', { name: good }).click();
    await page.getByRole('cell', { name: 'succeeded' }).waitFor();
    await page.getByRole('cell', { name: '200', exact: true }).waitFor();
    await check(page, '17-webhook-deliveries');
    await page.goto('/#/webhooks');
    await page.getByRole('link', { name: bad }).click();
    await page.getByRole('button', { name: 'Retry' }).first().waitFor();
    await page.getByRole('button', { name: 'Retry' }).first().click();
    await page.getByText('Delivery queued again.').waitFor();
    await page.getByRole('button', { name: `Disable ${bad}` }).click();
    await page.getByRole('button', { name: `Enable ${bad}` }).waitFor();
    await check(page, '18-webhook-failing');

    await page.getByRole('link', { name: 'Events' }).click();
    await page.getByRole('cell', { name: 'resource.created' }).first().waitFor();
    await check(page, '19-events');

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page
      .getByRole('link', { name: /^Entry / })
      .first()
      .click();
    await page.getByRole('heading', { name: 'Audit entry' }).waitFor();
    await page.getByText('Previous hash').waitFor();
    await check(page, '20-audit-entry');

    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByTestId('chain-status').getByText('Intact').waitFor();
    await page
      .getByTestId('expiring')
      .getByRole('link', { name: 'app-cert', exact: true })
      .waitFor();
    await page
      .getByTestId('expiring')
      .getByRole('link', { name: 'API_TOKEN', exact: true })
      .waitFor();
    await page.getByTestId('failing-webhooks').getByRole('link', { name: bad }).waitFor();
    await check(page, '21-overview-full');
    await context.close();

    // 200 % zoom: a 1280-pixel window at 200 % is a 640-CSS-pixel viewport at scale 2.
    const zoomed = await open({ viewport: { width: 640, height: 900 }, deviceScaleFactor: 2 });
    await signIn(zoomed.page, adminToken);
    for (const [hash, heading] of [
      ['#/', 'Overview'],
      ['#/projects', 'Projects and vaults'],
      [`#/vaults/${vaultId}`, 'Vault pki'],
      ['#/api-keys', 'API keys'],
      ['#/webhooks', 'Webhooks'],
      ['#/events', 'Events'],
      ['#/audit', 'Audit log'],
    ] as const) {
      await zoomed.page.goto(`/${hash}`);
      await zoomed.page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await noOverflow(zoomed.page, heading);
    }
    await check(zoomed.page, '22-zoom-200-audit');
    await zoomed.context.close();
  }, 120_000);
});
